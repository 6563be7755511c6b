"""Telling guardians: e-mail over SMTP and a signed webhook, from a queue that survives restarts.

An alert is queued per linked guardian and channel in the same transaction that records it
(``TrackerDb.raise_alert``), so a crash can lose neither. ``Notifier`` delivers what is due,
marks each delivered one done, and retries a failure with exponential backoff up to
``retry_max_s`` — forever, because a guardian's notice is not something to give up on; the
pending count is in the service's health. (The MQTT alert topic, for a city app, is not per
guardian: the service publishes each alert once through its durable outbox.)

A notice could go out twice only if the process dies between the channel accepting it and the
database marking it done; receivers can tell: an e-mail's Message-ID and a webhook's
``X-Machimori-Delivery`` are the same on every attempt.

Webhook requests carry ``X-Machimori-Timestamp`` (Unix seconds) and
``X-Machimori-Signature: sha256=<hex HMAC-SHA256 of "timestamp.body" with the shared secret>``;
a receiver recomputes it and rejects old timestamps (replay). Nothing here logs an address, a
name or a position: a log line names the notification id and the channel.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from gateway.services.tracker_config import EmailConfig, NotifyConfig, WebhookConfig
from gateway.services.tracker_db import AlertRow, Pending, TrackerDb

log = logging.getLogger(__name__)
CHANNELS = ("email", "webhook")

TEXTS = {
    "ja": {
        "school_arrival": ("登校しました", "{child} さんが {school} に到着しました（{time}）。"),
        "school_departure": ("下校しました", "{child} さんが {school} を出ました（{time}）。"),
        "not_at_school": (
            "まだ登校していません",
            "{child} さんは {by} の時点で {school} に到着していません。",
        ),
        "sos": ("SOS", "{child} さんの端末で SOS ボタンが押されました（{time}）。"),
        "routine_hour": ("いつもと違う時間の外出", "{child} さん: {reason}"),
        "routine_place": ("いつもと違う場所", "{child} さん: {reason}"),
        "routine_late": ("いつもの場所にいません", "{child} さん: {reason}"),
        "routine_route": ("いつもの道から外れています", "{child} さん: {reason}"),
        "routine_clear": ("いつもどおりに戻りました", "{child} さん: {reason}"),
    },
    "en": {
        "school_arrival": ("Arrived at school", "{child} arrived at {school} at {time}."),
        "school_departure": ("Left school", "{child} left {school} at {time}."),
        "not_at_school": ("Not at school yet", "{child} has not arrived at {school} by {by}."),
        "sos": ("SOS", "The SOS button on {child}'s tracker was pressed at {time}."),
        "routine_hour": ("Out at an unusual hour", "{child}: {reason}"),
        "routine_place": ("At an unusual place", "{child}: {reason}"),
        "routine_late": ("Not where usual by now", "{child}: {reason}"),
        "routine_route": ("Off the usual way", "{child}: {reason}"),
        "routine_clear": ("Back to the usual", "{child}: {reason}"),
    },
}


def render(
    alert: AlertRow, lang: str, zone: ZoneInfo, school_names: dict[str, str]
) -> tuple[str, str]:
    """Subject and body of a notice, in the guardian's language (Japanese by default)."""
    texts = TEXTS.get(lang, TEXTS["ja"])
    subject, body = texts.get(alert.kind, (alert.kind, alert.kind))
    moment = datetime.fromtimestamp(alert.ts_ms / 1000, zone)
    school = alert.data.get("school", "")
    values = {
        "child": alert.child,
        "school": school_names.get(school, school),
        "time": f"{moment:%H:%M}",
        "by": alert.data.get("by", ""),
        "reason": (alert.data.get("reason") or {}).get(lang if lang in TEXTS else "ja", ""),
    }
    return f"[machimori] {subject}", body.format(**values)


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return (
        "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )


class Notifier:
    def __init__(
        self,
        db: TrackerDb,
        config: NotifyConfig,
        zone: ZoneInfo,
        school_names: dict[str, str],
        now_ms: Callable[[], int],
    ) -> None:
        self.db = db
        self.config = config
        self.zone = zone
        self.school_names = school_names
        self.now_ms = now_ms
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self.counters = {"delivered": 0, "failed": 0}

    @property
    def channels(self) -> list[str]:
        return [c for c in CHANNELS if getattr(self.config, c) is not None]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread.is_alive():
            self._thread.join(15)

    def deliver_due(self) -> int:
        """Try everything due now; how many went out."""
        sent = 0
        for pending in self.db.due(self.now_ms()):
            try:
                self._send(pending)
            except (OSError, smtplib.SMTPException, urllib.error.URLError, ValueError) as exc:
                delay = min(self.config.retry_max_s, self.config.retry_min_s * 2**pending.attempts)
                self.db.failed(pending.id, self.now_ms() + int(delay * 1000), str(exc))
                self.counters["failed"] += 1
                log.warning(
                    "notification failed, will retry",
                    extra={
                        "fields": {
                            "id": pending.id,
                            "channel": pending.channel,
                            "attempt": pending.attempts + 1,
                            "retry_s": delay,
                            "error": type(exc).__name__,
                        }
                    },
                )
                continue
            self.db.delivered(pending.id, self.now_ms())
            self.counters["delivered"] += 1
            sent += 1
        return sent

    def _send(self, pending: Pending) -> None:
        subject, body = render(pending.alert, pending.lang, self.zone, self.school_names)
        if pending.channel == "email":
            if self.config.email is None or not pending.email:
                raise ValueError("no e-mail channel or no address for this guardian")
            send_email(self.config.email, pending, subject, body)
        elif pending.channel == "webhook":
            if self.config.webhook is None:
                raise ValueError("no webhook configured")
            send_webhook(self.config.webhook, pending, subject, body)
        else:
            raise ValueError(f"unknown channel {pending.channel!r}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:  # the database is busy or gone: try again shortly
                log.exception("notification round failed")
            self.wake.wait(min(1.0, self.config.retry_min_s))
            self.wake.clear()


def send_email(config: EmailConfig, pending: Pending, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = pending.email
    message["Subject"] = subject
    # the same id on every attempt: a mail client shows a resent notice once
    message["Message-ID"] = f"<alert-{pending.alert.id}-{pending.id}@machimori>"
    message.set_content(body)
    with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
        if config.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if config.username is not None and config.password_file is not None:
            smtp.login(config.username, config.password_file.read_text().strip())
        smtp.send_message(message)


def send_webhook(config: WebhookConfig, pending: Pending, subject: str, body: str) -> None:
    alert = pending.alert
    payload = json.dumps(
        {
            "alert": alert.id,
            "kind": alert.kind,
            "child": alert.child,
            "guardian": pending.guardian,
            "ts": alert.ts_ms,
            "data": alert.data,
            "lang": pending.lang,
            "title": subject,
            "text": body,
        },
        ensure_ascii=False,
    ).encode()
    stamp = str(int(time.time()))
    secret = config.secret_file.read_bytes().strip()
    request = urllib.request.Request(
        config.url,
        data=payload,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "X-Machimori-Timestamp": stamp,
            "X-Machimori-Signature": signature(secret, stamp, payload),
            "X-Machimori-Delivery": str(pending.id),
        },
    )
    with urllib.request.urlopen(request, timeout=config.timeout_s) as response:
        if not 200 <= response.status < 300:
            raise ValueError(f"webhook answered {response.status}")
