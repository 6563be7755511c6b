"""The tracker service process (``machimori tracker run``): the school service, notifications,
phones' intake and the guardians' pages, on one database.

* **in**: MQTT ``machimori/v1/tracker/+/telemetry`` and ``.../event`` (our trackers) and
  ``owntracks/+/+`` (phones), through the store's MQTT 5 subscriber: a message is acknowledged
  only after the transaction holding it committed, so a crash or restart loses none (the broker
  keeps the session); HTTP ``/pub`` (OwnTracks Recorder) and ``/osmand`` (Traccar Client);
* **out**: each alert once as an envelope on ``machimori/v1/alert/{service_id}/event`` through a
  durable outbox (the store keeps it; a city app reads it), and per guardian by e-mail and webhook
  from the notification queue;
* **every minute**: the absence check; **every hour**: retention.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from edge.protocol import Envelope, EnvelopeError, Topic, utc_timestamp
from edge.protocol.envelope import parse_timestamp
from edge.protocol.topics import TopicError
from edge.runtime.clock import Clock
from edge.runtime.health import Health
from edge.runtime.outbox import Outbox
from edge.runtime.uplink import MqttUplink
from gateway.services.notify import Notifier
from gateway.services.phones import from_owntracks
from gateway.services.routine_service import RoutineService
from gateway.services.school import Pipeline
from gateway.services.tracker_config import TrackerServiceConfig
from gateway.services.tracker_db import AlertRow, TrackerDb
from gateway.store import mqtt5
from gateway.store.subscriber import Subscriber

log = logging.getLogger(__name__)
FILTERS = ("machimori/v1/tracker/+/telemetry", "machimori/v1/tracker/+/event")
OWNTRACKS = "owntracks/+/+"
TICK_S = 30.0  # how often the absence check runs (it acts once per school and day)


class TrackerService:
    def __init__(self, config: TrackerServiceConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock(
            config.clock_speed,
            parse_timestamp(config.clock_start) if config.clock_start else None,
            epoch=parse_timestamp(config.clock_epoch) if config.clock_epoch else None,
        )
        self.zone = ZoneInfo(config.timezone)
        self.db = TrackerDb(config.database)
        self.health = Health(self.clock)
        self.outbox = Outbox(config.outbox, config.service_id, sync="normal")
        self.uplink = MqttUplink(
            config.mqtt, "alert", config.service_id, self.outbox, self.health, self.clock
        )
        self.notifier = Notifier(
            self.db,
            config.notify,
            self.zone,
            {s.id: s.name for s in config.schools},
            self.now_ms,
        )
        self.pipeline = Pipeline(
            self.db,
            config.schools,
            config.fence,
            self.zone,
            self.notifier.channels,
            self.now_ms,
            self._publish,
        )
        self.routines: RoutineService | None = None
        if config.routine.enabled:
            self.routines = RoutineService(
                config.routine,
                self.pipeline,
                self.db,
                self.clock,
                config.retention.positions_days,
            )
        filters = [*FILTERS, OWNTRACKS] if config.owntracks else list(FILTERS)
        self.subscriber = Subscriber(
            config.mqtt,
            config.client_id,
            filters,
            self._on_messages,
            session_expiry_s=7 * 86400,
            receive_max=2000,
        )
        self.http = None
        if config.web.enabled:
            from gateway.services.guardian_web import build_app
            from gateway.web.server import HttpServer

            self.http = HttpServer(build_app(self), config.web.host, config.web.port)
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="tracker-tick", daemon=True)

    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    # -- in -------------------------------------------------------------------------------------
    def _on_messages(self, publishes: list[mqtt5.Publish], generation: int) -> None:
        envelopes = []
        for publish in publishes:
            try:
                env = self.envelope(publish.topic, publish.payload)
            except (EnvelopeError, TopicError, ValueError) as exc:
                self.pipeline.count("rejected")
                log.warning(
                    "message rejected",
                    # the topic names a device, never a child; the error names the field, never
                    # its value (it may be a coordinate)
                    extra={"fields": {"topic": publish.topic, "field": _field_of(exc)}},
                )
                continue
            if env is not None:
                envelopes.append(env)
        try:
            self.pipeline.handle(envelopes)
        except Exception:  # the database failed: no ack, the broker sends them again
            log.exception("could not store a batch; it will be re-delivered")
            return
        self.subscriber.ack([p.packet_id for p in publishes if p.qos], generation)

    def envelope(self, topic: str, payload: bytes) -> Envelope | None:
        """The tracker envelope a message carries (None: a message without a position)."""
        if topic.startswith("owntracks/"):
            _, user, _device = topic.split("/")
            return from_owntracks(user, payload)
        parsed = Topic.parse(topic)
        env = Envelope.from_json(payload)
        if env.device != parsed.device:
            raise EnvelopeError("device", "does not match the topic")
        return env

    # -- out ------------------------------------------------------------------------------------
    def _publish(self, alert: AlertRow) -> None:
        data = {"child": alert.child, "kind": alert.kind, "alert": alert.id, **alert.data}
        at = datetime.fromtimestamp(alert.ts_ms / 1000, UTC)
        self.outbox.add(
            Topic("alert", self.config.service_id, "event"), alert.kind, data, utc_timestamp(at)
        )
        self.uplink.wake.set()
        self.notifier.wake.set()

    # -- schedule -------------------------------------------------------------------------------
    def _tick_loop(self) -> None:
        next_purge = 0.0
        while not self._stop.is_set():
            try:
                self.pipeline.absence_check(self.now_ms())
                if self.clock.monotonic() >= next_purge:
                    removed = self.purge()
                    if any(removed.values()):
                        log.info("retention purge", extra={"fields": removed})
                    next_purge = self.clock.monotonic() + self.config.retention.interval_s
            except Exception:
                log.exception("scheduled check failed; it runs again shortly")
            self._stop.wait(self.clock.real_seconds(TICK_S))

    def purge(self) -> dict[str, int]:
        return self.db.purge(self.config.retention, self.now_ms())

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.uplink.start()
        self.notifier.start()
        if self.routines is not None:
            self.routines.start()
        self.subscriber.start()
        self._ticker.start()
        if self.http is not None:
            self.http.start()

    @property
    def url(self) -> str | None:
        return self.http.url if self.http is not None else None

    def stop(self) -> None:
        self._stop.set()
        if self.http is not None:
            self.http.stop()
        self.subscriber.stop()
        if self.routines is not None:
            self.routines.stop()
        self.notifier.stop()
        self.uplink.stop(5.0)
        self._ticker.join(10)
        self.outbox.close()
        self.db.close()

    def run(self) -> None:
        """Until SIGTERM/SIGINT."""
        import signal

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()


def _field_of(exc: Exception) -> str:
    return exc.field if isinstance(exc, EnvelopeError) else type(exc).__name__
