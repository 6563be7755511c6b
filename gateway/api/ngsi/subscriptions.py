"""NGSI v2 subscriptions (specification section "Subscriptions", with Orion 3's additions): a
platform asks to be told, by an HTTP POST or an MQTT publish in NGSI's notification format,
when entities it names are created, updated, changed or deleted.

- ``POST /ngsi/v2/subscriptions`` creates one (201, ``Location: /v2/subscriptions/{id}``);
  ``GET`` lists them or shows one with its delivery counters (``timesSent``,
  ``lastNotification``, ``lastSuccess``/``lastSuccessCode``, ``lastFailure``/
  ``lastFailureReason``, ``failsCounter``); ``PATCH`` changes the fields it is given (``status``
  active/inactive/oneshot, ``expires``, ``throttling``, ``subject``, ``notification``, ...) and
  keeps the counters; ``DELETE`` removes one.
- A notifier thread compares the entities every ``ngsi.poll_s`` seconds. Devices rewrite their
  entities whole, so each new reading is an update of every attribute: ``entityCreate`` (an
  entity appeared), ``entityUpdate`` (a new reading), ``entityChange`` (a watched attribute,
  ``subject.condition.attrs``, or any if none, changed value) and ``entityDelete`` (an entity
  left: a bus gone silent, a sighting past its publication window; sent as it last was) are
  told to the subscriptions whose ``condition.alterationTypes`` name them (default create and
  change, as Orion) and whose ``condition.expression`` (q, mq, georel) holds, as
  ``{"subscriptionId", "data": [entity]}`` in the subscription's ``attrsFormat`` with its
  ``attrs``/``exceptAttrs`` (``alterationType`` among ``attrs`` adds that builtin attribute).
  ``throttling`` drops a notification due sooner than that many seconds after the last one.
  The first comparison after a start only takes stock, so a restart does not repeat old news.
- Sending happens on a thread of its own with a bounded queue: a slow or dead endpoint delays
  nobody else, and ingest (another thread or process, which only writes the database) never
  waits for it. A failed delivery is retried with doubling delays up to
  ``ngsi.notify_attempts`` times, then counted as failed (status ``failed`` until the next
  success). MQTT delivery and its least-privilege rules: mqtt_notify.py.
- Subscriptions, with their tenant and service path, live in ``ngsi.subscriptions_file``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response

from gateway.api.context import Context, Ctx
from gateway.api.ngsi.access import TokenFile, caller
from gateway.api.ngsi.entities import Entity, attr_names, key_values, values_row
from gateway.api.ngsi.errors import ERROR_SCHEMA, NgsiError, bad, not_found
from gateway.api.ngsi.expression import Expression, check_pattern, expression, fits
from gateway.api.ngsi.mqtt_notify import (
    HIDDEN,
    MqttSender,
    NotifyFailed,
    own_broker,
    parse_target,
    shown,
)
from gateway.api.ngsi.scope import update_path
from gateway.store.config import NgsiConfig
from gateway.store.intake import iso_ms

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ngsi/v2/subscriptions", tags=["ngsi-v2"])
FORMATS = ("normalized", "keyValues", "values")
ALTERATIONS = ("entityCreate", "entityUpdate", "entityChange", "entityDelete")
DEFAULT_ALTERATIONS = ("entityCreate", "entityChange")  # Orion's, when none are given
STATUSES = ("active", "inactive", "oneshot")
CHANNELS = ("http", "httpCustom", "mqtt")
MAX_BODY_BYTES = 64 * 1024
MAX_QUEUE = 10_000
FIRST_RETRY_S = 1.0
USER_AGENT = "machimori-ngsi-notifier"
SUB_ID = re.compile(r"^[0-9a-f]{24}$")
SubId = Annotated[str, Path(pattern=SUB_ID.pattern, description="the subscription's id")]
ERRORS = {400: ERROR_SCHEMA, 401: ERROR_SCHEMA, 404: ERROR_SCHEMA}


def _text_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise bad(f"{where}: a list of names")
    return list(value)


def _subject_entity(item: Any, n: int) -> dict[str, str]:
    where = f"subject.entities[{n}]"
    pattern = check_pattern(item, where)
    if "id" not in pattern and "idPattern" not in pattern:
        raise bad(f"{where}: exactly one of id and idPattern")
    return pattern


def _expires(value: Any) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise bad("expires: an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso_ms(int(moment.timestamp() * 1000))


def _alterations(value: Any) -> list[str]:
    names = _text_list(value, "subject.condition.alterationTypes")
    unknown = [n for n in names if n not in ALTERATIONS]
    if unknown:
        raise bad(
            f"subject.condition.alterationTypes: {unknown[0]!r} is none of {', '.join(ALTERATIONS)}"
        )
    return names


def _http_target(notification: dict[str, Any]) -> dict[str, Any]:
    target = notification.get("http") or notification.get("httpCustom")
    if not isinstance(target, dict) or not isinstance(target.get("url"), str):
        raise bad("notification.http.url (or httpCustom.url, or notification.mqtt) is required")
    url = target["url"]
    if not re.match(r"^https?://[^\s/]+(/\S*)?$", url) or len(url) > 2048:
        raise bad("notification url: an http:// or https:// URL")
    headers = target.get("headers") or {}
    if "httpCustom" not in notification and headers:
        raise bad("notification.http takes only url; use httpCustom for headers")
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "\n" not in k + v for k, v in headers.items()
    ):
        raise bad("notification.httpCustom.headers: an object of strings")
    return {"url": url, **({"headers": headers} if headers else {})}


def parse(body: Any, config: NgsiConfig) -> dict[str, Any]:
    """A subscription as stored, from a request body, or a BadRequest naming what is wrong."""
    if not isinstance(body, dict):
        raise bad("a subscription is a JSON object")
    unknown = set(body) - {
        "description",
        "subject",
        "notification",
        "expires",
        "status",
        "throttling",
    }
    if unknown:
        raise bad(f"unknown field {sorted(unknown)[0]!r}")
    subject, notification = body.get("subject"), body.get("notification")
    if not isinstance(subject, dict) or not isinstance(subject.get("entities"), list):
        raise bad("subject.entities: a list of {id|idPattern, type|typePattern}")
    if not subject["entities"]:
        raise bad("subject.entities: at least one")
    entities = [_subject_entity(item, n) for n, item in enumerate(subject["entities"])]
    condition = subject.get("condition") or {}
    if not isinstance(condition, dict):
        raise bad("subject.condition: an object")
    given = condition.get("expression") or {}
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise bad("subject.condition.expression: an object of strings")
    unknown_cond = set(condition) - {"attrs", "expression", "alterationTypes"}
    if unknown_cond:
        raise bad(f"subject.condition: unsupported {sorted(unknown_cond)[0]!r}")
    alterations = _alterations(condition.get("alterationTypes"))
    unknown_expr = set(given) - {"q", "mq", "georel", "geometry", "coords"}
    if unknown_expr:
        raise bad(f"subject.condition.expression: unsupported {sorted(unknown_expr)[0]!r}")
    expression(**given)  # a bad q fails now, not at the first notification
    if not isinstance(notification, dict):
        raise bad("notification: an object")
    channels = [c for c in CHANNELS if c in notification]
    if len(channels) > 1:
        raise bad(f"notification: {' and '.join(channels)} exclude each other")
    channel = channels[0] if channels else "http"
    if channel == "mqtt":
        own = own_broker(config.notifier_mqtt)
        target = parse_target(notification["mqtt"], own, config.mqtt_topic_prefix)
    else:
        target = _http_target(notification)
    attrs = _text_list(notification.get("attrs"), "notification.attrs")
    except_attrs = _text_list(notification.get("exceptAttrs"), "notification.exceptAttrs")
    if attrs and except_attrs:
        raise bad("notification: attrs and exceptAttrs exclude each other")
    attrs_format = notification.get("attrsFormat", "normalized")
    if attrs_format not in FORMATS:
        raise bad(f"notification.attrsFormat: one of {', '.join(FORMATS)}")
    throttling = body.get("throttling", 0)
    if not isinstance(throttling, int) or isinstance(throttling, bool) or throttling < 0:
        raise bad("throttling: whole seconds, 0 or more")
    status = body.get("status", "active")
    if status not in STATUSES:
        raise bad(f"status: {', '.join(STATUSES)}")
    description = body.get("description", "")
    if not isinstance(description, str) or len(description) > 1024:
        raise bad("description: text up to 1024 characters")
    return {
        "description": description,
        "subject": {
            "entities": entities,
            "condition": {
                "attrs": _text_list(condition.get("attrs"), "subject.condition.attrs"),
                **({"expression": given} if given else {}),
                **({"alterationTypes": alterations} if alterations else {}),
            },
        },
        "notification": {
            channel: target,
            "attrs": attrs,
            **({"exceptAttrs": except_attrs} if except_attrs else {}),
            "attrsFormat": attrs_format,
            "onlyChangedAttrs": bool(notification.get("onlyChangedAttrs", False)),
        },
        "expires": _expires(body.get("expires")),
        "status": status,
        "throttling": throttling,
    }


def _expression(sub: dict[str, Any]) -> Expression:
    return expression(**sub["subject"]["condition"].get("expression", {}))


def notification_data(
    sub: dict[str, Any], entity: Entity, changed: set[str], alteration: str
) -> Any:
    """The entity as this subscription wants it: its attrs (or all but exceptAttrs), only the
    changed ones with onlyChangedAttrs, in its attrsFormat; the builtin ``alterationType`` only
    when ``attrs`` names it."""
    note = sub["notification"]
    names = note["attrs"] or [n for n in attr_names(entity) if n not in note.get("exceptAttrs", [])]
    if note["onlyChangedAttrs"]:
        names = [n for n in names if n in changed or n == "alterationType"]
    builtin = {"alterationType": {"type": "Text", "value": alteration, "metadata": {}}}
    data = {"id": entity["id"], "type": entity["type"]} | {
        n: entity[n] if n in entity else builtin[n] for n in names if n in entity or n in builtin
    }
    if note["attrsFormat"] == "keyValues":
        return key_values(data)
    if note["attrsFormat"] == "values":
        return values_row(data, names)
    return data


class SubscriptionBook:
    """The subscriptions, kept in a JSON file (mode 0600: it holds endpoints and headers)."""

    def __init__(self, path: FilePath, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.lock = threading.Lock()
        self.subs: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                self.subs = {s["id"]: s for s in json.loads(path.read_text(encoding="utf-8"))}
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}: not a subscriptions file: {exc}") from exc

    def save(self) -> None:
        """Write the file whole, atomically; the caller holds the lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(list(self.subs.values()), file, ensure_ascii=False, indent=1)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)

    def add(self, sub: dict[str, Any]) -> str:
        with self.lock:
            if len(self.subs) >= self.limit:
                raise NgsiError("RequestEntityTooLarge", f"at most {self.limit} subscriptions")
            sub_id = secrets.token_hex(12)
            self.subs[sub_id] = {"id": sub_id, **sub, "counters": {"timesSent": 0}}
            self.save()
            return sub_id

    def remove(self, sub_id: str) -> bool:
        with self.lock:
            if self.subs.pop(sub_id, None) is None:
                return False
            self.save()
            return True

    def replace(self, sub_id: str, fields: dict[str, Any]) -> None:
        """New fields for a subscription (a PATCH, a oneshot spent); id, scope, counters stay."""
        with self.lock:
            sub = self.subs.get(sub_id)
            if sub is not None:
                sub.update(fields)
                self.save()

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(json.dumps(s)) for s in self.subs.values()]

    def record(self, sub_id: str, **counters: Any) -> None:
        with self.lock:
            sub = self.subs.get(sub_id)
            if sub is not None:
                sub["counters"].update(counters)
                self.save()


def rendered(sub: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """A subscription as GET shows it, with its delivery counters under ``notification``."""
    counters = sub["counters"]
    status = sub["status"]
    if sub["expires"] and iso_ms(now_ms) >= sub["expires"]:
        status = "expired"
    elif status == "active" and counters.get("failsCounter"):
        status = "failed"
    notification = {**sub["notification"]}
    if "mqtt" in notification:
        notification["mqtt"] = shown(notification["mqtt"])
    notification |= {k: v for k, v in counters.items() if k != "failing" and v != 0}
    notification["timesSent"] = counters.get("timesSent", 0)
    out = {
        "id": sub["id"],
        "description": sub["description"],
        "subject": sub["subject"],
        "notification": notification,
        "status": status,
        "throttling": sub["throttling"],
    }
    if sub["expires"]:
        out["expires"] = sub["expires"]
    if not out["description"]:
        del out["description"]
    return out


@dataclass(order=True)
class Delivery:
    due: float
    order: int
    sub_id: str = field(compare=False)
    channel: str = field(compare=False)  # http, httpCustom or mqtt
    target: dict[str, Any] = field(compare=False)
    headers: dict[str, str] = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(compare=False, default=1)


def _values(entity: Entity) -> dict[str, Any]:
    return {n: (entity[n]["type"], entity[n]["value"]) for n in attr_names(entity)}


def alteration(sub: dict[str, Any], kind: str, changed: set[str], entity: Entity) -> str | None:
    """How ``sub`` sees what happened to ``entity`` (``kind``: entityCreate, entityChange or
    entityDelete, as the comparison found it), or None if it does not want to be told.

    A device rewrites its entity whole, so a change is also an update of every attribute the
    entity has: ``entityUpdate`` fires on any new reading that has a watched attribute, while
    ``entityChange`` needs a watched attribute's value to differ."""
    condition = sub["subject"]["condition"]
    wanted = condition.get("alterationTypes") or DEFAULT_ALTERATIONS
    watched = set(condition["attrs"])
    present = set(attr_names(entity))
    if kind == "entityDelete":
        return kind if kind in wanted else None
    if kind == "entityCreate":
        return kind if kind in wanted and (not watched or watched & present) else None
    if "entityChange" in wanted and (not watched or watched & changed):
        return "entityChange"
    if "entityUpdate" in wanted and (not watched or watched & present):
        return "entityUpdate"
    return None


class Notifier:
    """Watches the entities for changes and sends notifications, each on a thread of its own."""

    def __init__(self, ctx: Context, book: SubscriptionBook, entities: Any) -> None:
        self.ctx = ctx
        self.config: NgsiConfig = ctx.config.ngsi
        self.book = book
        self.entities = entities  # () -> list[Entity], everything the city publishes
        self.mqtt = MqttSender(self.config.notifier_mqtt, self.config.notify_timeout_s)
        self._seen: dict[str, Entity] | None = None
        self._last_sent: dict[str, float] = {}
        self._queue: list[Delivery] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stats = {"sent": 0, "failed": 0, "retried": 0, "dropped_full": 0}
        self.started = time.monotonic()

    def start(self) -> None:
        for name, target in (("ngsi-watch", self._watch), ("ngsi-send", self._send_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(10)
        self.mqtt.close()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # a database hiccup must not end notifications for good
                log.exception("NGSI change check failed; trying again")
            self._stop.wait(self.config.poll_s)

    def check(self) -> None:
        """Compare the entities with the last look and queue what was created, updated,
        changed or deleted."""
        current = {e["id"]: e for e in self.entities()}
        previous, self._seen = self._seen, current
        if previous is None:
            return
        subs = [s for s in self.book.snapshot() if self._live(s)]
        gone = [i for i in previous if i not in current]
        for entity_id in [*current, *gone]:
            before, after = previous.get(entity_id), current.get(entity_id)
            if after is None:
                kind, entity, changed = "entityDelete", before, set(attr_names(before))
            elif before is None:
                kind, entity, changed = "entityCreate", after, set(attr_names(after))
            else:
                old, new = _values(before), _values(after)
                changed = {n for n in old.keys() | new.keys() if old.get(n) != new.get(n)}
                if not changed:
                    continue
                kind, entity = "entityChange", after
            assert entity is not None
            for sub in subs:
                told = alteration(sub, kind, changed, entity)
                named = any(fits(p, entity) for p in sub["subject"]["entities"])
                if told and named and _expression(sub).holds(entity):
                    self._notify(sub, entity, changed, told)

    def _live(self, sub: dict[str, Any]) -> bool:
        expired = sub["expires"] is not None and iso_ms(self.ctx.now_ms()) >= sub["expires"]
        in_scope = sub["service"].lower() == self.config.service.lower() and (
            sub["servicePath"] == self.config.service_path
        )
        return sub["status"] in ("active", "oneshot") and not expired and in_scope

    def _notify(self, sub: dict[str, Any], entity: Entity, changed: set[str], told: str) -> None:
        now = time.monotonic()
        last = self._last_sent.get(sub["id"])
        if sub["throttling"] and last is not None and now - last < sub["throttling"]:
            return
        if sub["status"] == "oneshot":
            if sub.get("spent"):
                return  # one notification already in this round
            sub["spent"] = True
            self.book.replace(sub["id"], {"status": "inactive"})
        self._last_sent[sub["id"]] = now
        data = notification_data(sub, entity, changed, told)
        body = {"subscriptionId": sub["id"], "data": [data]}
        channel = next(c for c in CHANNELS if c in sub["notification"])
        target = sub["notification"][channel]
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Fiware-Service": sub["service"],
            "Fiware-ServicePath": sub["servicePath"],
            "Ngsiv2-AttrsFormat": sub["notification"]["attrsFormat"],
            "Fiware-Correlator": secrets.token_hex(16),
            **target.get("headers", {}),
        }
        if not sub["service"]:
            del headers["Fiware-Service"]
        raw = json.dumps(body, ensure_ascii=False).encode()
        order = next(self._order)
        self._enqueue(Delivery(now, order, sub["id"], channel, target, headers, raw))

    def _enqueue(self, delivery: Delivery) -> None:
        with self._wake:
            if len(self._queue) >= MAX_QUEUE:
                heapq.heappop(self._queue)  # the soonest-due, i.e. oldest, news goes first
                self.stats["dropped_full"] += 1
            heapq.heappush(self._queue, delivery)
            self._wake.notify()

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                while not self._stop.is_set() and (
                    not self._queue or self._queue[0].due > time.monotonic()
                ):
                    timeout = self._queue[0].due - time.monotonic() if self._queue else None
                    self._wake.wait(timeout)
                if self._stop.is_set():
                    return
                delivery = heapq.heappop(self._queue)
            self._send(delivery)

    def _post(self, delivery: Delivery) -> int:
        """POST the notification; its HTTP status, or NotifyFailed with the reason."""
        request = urllib.request.Request(
            delivery.target["url"], data=delivery.body, headers=delivery.headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.notify_timeout_s) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            raise NotifyFailed(f"HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            reason = type(exc).__name__ + (f": {exc.reason}" if hasattr(exc, "reason") else "")
            raise NotifyFailed(reason) from None

    def _send(self, delivery: Delivery) -> None:
        stamp = iso_ms(self.ctx.now_ms())
        try:
            if delivery.channel == "mqtt":
                self.mqtt.send(delivery.target, delivery.body)
                outcome: dict[str, Any] = {}
            else:
                outcome = {"lastSuccessCode": self._post(delivery)}
            self.stats["sent"] += 1
            self._count(delivery.sub_id, stamp, lastSuccess=stamp, failsCounter=0, **outcome)
            return
        except NotifyFailed as exc:
            reason = str(exc)
        if delivery.attempt < self.config.notify_attempts:
            self.stats["retried"] += 1
            delivery.attempt += 1
            delivery.due = time.monotonic() + FIRST_RETRY_S * 2 ** (delivery.attempt - 2)
            self._enqueue(delivery)
            return
        self.stats["failed"] += 1
        log.warning(
            "NGSI notification failed",
            extra={"fields": {"subscription": delivery.sub_id, "reason": reason}},
        )
        self._count(delivery.sub_id, stamp, lastFailure=stamp, lastFailureReason=reason, fail=1)

    def _count(self, sub_id: str, stamp: str, fail: int = 0, **outcome: Any) -> None:
        counters = {s["id"]: s["counters"] for s in self.book.snapshot()}.get(sub_id)
        if counters is None:
            return  # deleted meanwhile
        if fail:
            outcome["failsCounter"] = counters.get("failsCounter", 0) + fail
        self.book.record(
            sub_id, timesSent=counters.get("timesSent", 0) + 1, lastNotification=stamp, **outcome
        )


def _book(request: Request) -> SubscriptionBook:
    return request.app.state.ngsi_book


def _tokens(request: Request) -> TokenFile:
    return request.app.state.ngsi_tokens


def _mine(request: Request, ctx: Context, sub: dict[str, Any]) -> bool:
    """Subscriptions belong to the tenant and service path they were made in."""
    tenant = request.headers.get("fiware-service", "")
    path = request.headers.get("fiware-servicepath", "/#")
    return sub["service"].lower() == tenant.lower() and (
        path in ("/#", sub["servicePath"])
        or (path.endswith("/#") and sub["servicePath"].startswith(path[:-2] + "/"))
    )


async def _json_body(request: Request) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/json":
        raise NgsiError("UnsupportedMediaType", "send the subscription as application/json")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise NgsiError(
            "RequestEntityTooLarge", f"a subscription is at most {MAX_BODY_BYTES} bytes"
        )
    try:
        return json.loads(raw)
    except ValueError:
        raise bad("the body is not JSON") from None


@router.post("", status_code=201, responses={201: {"description": "created"}} | ERRORS)
async def create(ctx: Ctx, request: Request) -> Response:
    """Create a subscription (a token or staff login needed). The answer's ``Location`` names
    it."""
    who = caller(request, ctx, _tokens(request))
    body = await _json_body(request)
    tenant = request.headers.get("fiware-service", "")
    if tenant and not re.match(r"^[A-Za-z0-9_]{1,50}$", tenant):
        raise bad("Fiware-Service: 1-50 of A-Z a-z 0-9 _")
    sub = parse(body, ctx.config.ngsi) | {"service": tenant, "servicePath": update_path(request)}
    sub_id = _book(request).add(sub)
    log.info("NGSI subscription created", extra={"fields": {"id": sub_id, "by": who}})
    return Response(status_code=201, headers={"Location": f"/v2/subscriptions/{sub_id}"})


@router.get("", responses={200: {"content": {"application/json": {}}}} | ERRORS)
def list_subscriptions(
    ctx: Ctx,
    request: Request,
    limit: int = 20,
    offset: int = 0,
    options: str | None = None,
) -> JSONResponse:
    """This tenant's subscriptions with their delivery counters (a token or staff login
    needed); ``options=count`` adds ``Fiware-Total-Count``."""
    caller(request, ctx, _tokens(request))
    if not 1 <= limit <= 1000 or offset < 0:
        raise bad("Bad pagination data: limit 1..1000, offset 0 or more")
    now_ms = ctx.now_ms()
    subs = [rendered(s, now_ms) for s in _book(request).snapshot() if _mine(request, ctx, s)]
    headers = {"Fiware-Total-Count": str(len(subs))} if options == "count" else None
    return JSONResponse(subs[offset : offset + limit], headers=headers)


def _find(request: Request, ctx: Context, sub_id: str) -> dict[str, Any]:
    for sub in _book(request).snapshot():
        if sub["id"] == sub_id and _mine(request, ctx, sub):
            return sub
    raise not_found("The requested subscription has not been found. Check id")


@router.get("/{sub_id}", responses={200: {"content": {"application/json": {}}}} | ERRORS)
def get_subscription(ctx: Ctx, request: Request, sub_id: SubId) -> JSONResponse:
    caller(request, ctx, _tokens(request))
    return JSONResponse(rendered(_find(request, ctx, sub_id), ctx.now_ms()))


EDITABLE = ("description", "subject", "notification", "expires", "status", "throttling")


@router.patch("/{sub_id}", status_code=204, responses={204: {"description": "changed"}} | ERRORS)
async def update_subscription(ctx: Ctx, request: Request, sub_id: SubId) -> Response:
    """Change a subscription: the fields given replace its own (``status`` active, inactive or
    oneshot; ``expires``, null for never; ``throttling``; ``subject``; ``notification``;
    ``description``), checked as at creation; its id, scope and counters stay."""
    who = caller(request, ctx, _tokens(request))
    body = await _json_body(request)
    if not isinstance(body, dict) or not body:
        raise bad("an object with the fields to change")
    sub = _find(request, ctx, sub_id)
    fresh = parse({k: sub[k] for k in EDITABLE} | body, ctx.config.ngsi)
    kept = sub["notification"].get("mqtt", {})
    given = fresh["notification"].get("mqtt", {})
    if given.get("passwd") == HIDDEN and given.get("user") == kept.get("user"):
        given["passwd"] = kept["passwd"]  # a subscription sent back as read: the same password
    _book(request).replace(sub_id, fresh)
    changed = sorted(body)
    log.info(
        "NGSI subscription changed", extra={"fields": {"id": sub_id, "by": who, "set": changed}}
    )
    return Response(status_code=204)


@router.delete("/{sub_id}", status_code=204, responses={204: {"description": "gone"}} | ERRORS)
def delete_subscription(ctx: Ctx, request: Request, sub_id: SubId) -> Response:
    who = caller(request, ctx, _tokens(request))
    _find(request, ctx, sub_id)
    _book(request).remove(sub_id)
    log.info("NGSI subscription deleted", extra={"fields": {"id": sub_id, "by": who}})
    return Response(status_code=204)
