"""LoRaWAN uplink: drains the outbox through an AT modem, one message per uplink, oldest first,
within the airtime Japan allows.

The outbox is the same durable outbox as over MQTT and a message leaves it only when the network
took it: a confirmed uplink when the modem reports the acknowledgement, an unconfirmed one when
the modem reports it sent. An unconfirmed uplink is lost without trace if no gateway hears it (a
gateway or backhaul outage), so ``confirmed: all`` (the default) sends every message confirmed:
nothing is lost, at the price of one downlink acknowledgement per uplink from the gateway.
``confirmed: events`` sends only events (level crossings) confirmed; a reading sent during an
outage is then a visible gap in ``seq``. A message that was not acknowledged stays at the head of
the outbox and is retried with exponential backoff; everything behind it waits, so order holds.
A retried uplink may reach the network twice (its acknowledgement was lost): the gateway drops
the copy by ``(device, seq)``.

Each message is encoded by the device's binary codec (``edge.protocol.codecs``), which carries
the low 16 bits of ``seq`` and the measurement time, so late delivery keeps both. A message with
no binary form (an image) is dropped and counted: it cannot travel over LoRaWAN.

Airtime: Japan's 920 MHz rule (ARIB STD-T108) allows at most 360 s of transmission in any hour.
The link keeps a sliding hour of its own time on air (Join-Requests and every attempt included,
computed for the modem's data rate) and holds the outbox when the next uplink would exceed
``max_airtime_s_per_hour``. Every spend is also written to the outbox's file, in wall-clock time,
and a new link starts with the last hour of it: a gauge restarted by a crash or a brown-out holds
as the old process would have (``LoraLink._restore_airtime`` says what a clock that moved does).

Downlinks are city commands (``set_interval``): decoded by the codec and handed to the host as a
``cmd`` envelope (seq 0: LoRaWAN does not carry the sender's counter), so they are validated,
applied and counted exactly like commands over MQTT.

Time: backoff, airtime and holds run on the injectable clock, so a simulation at ``clock_speed``
keeps its radio rules in simulated time; serial timeouts are real time.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from edge.drivers.lorawan import Modem, ModemConfig, ModemError, open_modem
from edge.protocol import Envelope, Topic, utc_timestamp
from edge.protocol.airtime import dr_time_on_air, max_payload
from edge.protocol.codecs import Codec, CodecError, codec
from edge.runtime.clock import Clock
from edge.runtime.health import Health
from edge.runtime.outbox import Outbox, Pending
from edge.runtime.uplink import backoff_delay

log = logging.getLogger(__name__)

# MHDR 1 + DevAddr 4 + FCtrl 1 + FCnt 2 + FPort 1 + MIC 4 (LoRaWAN 1.0.4 §4); FOpts not counted.
DATA_OVERHEAD = 13
JOIN_REQUEST_SIZE = 23
ARIB_LIMIT_S_PER_HOUR = 360.0
HOUR_S = 3600.0
FAULT_PAUSE_S = 5.0  # real seconds between attempts to revive a modem that fails outright


def _ms(seconds: float) -> int:
    """Wall-clock seconds as the whole milliseconds the outbox stores, rounded down."""
    return math.floor(seconds * 1000)


@dataclass
class LorawanConfig:
    modem: ModemConfig = field(default_factory=ModemConfig)
    codec: str = "river-v1"  # the binary payload codec the gateway's registry names too
    confirmed: Literal["all", "events"] = "all"
    max_airtime_s_per_hour: float = ARIB_LIMIT_S_PER_HOUR
    join_retry_min_s: float = 60.0
    join_retry_max_s: float = 3600.0
    retry_min_s: float = 30.0  # a confirmed uplink that was not acknowledged
    retry_max_s: float = 600.0

    def __post_init__(self) -> None:
        try:
            codec(self.codec)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        if not 0 < self.max_airtime_s_per_hour <= ARIB_LIMIT_S_PER_HOUR:
            raise ValueError(f"max_airtime_s_per_hour must be 0..{ARIB_LIMIT_S_PER_HOUR:g}")
        for low, high in (("join_retry_min_s", "join_retry_max_s"), ("retry_min_s", "retry_max_s")):
            if not 0 < getattr(self, low) <= getattr(self, high):
                raise ValueError(f"need 0 < {low} <= {high}")


class AirtimeBudget:
    """Time on air in a sliding window (clock seconds), and when more fits."""

    def __init__(self, limit_s: float, window_s: float = HOUR_S) -> None:
        self.limit_s = limit_s
        self.window_s = window_s
        self._spent: deque[tuple[float, float]] = deque()  # (when, seconds on air)
        self.total_s = 0.0

    def used(self, now: float) -> float:
        while self._spent and self._spent[0][0] <= now - self.window_s:
            self._spent.popleft()
        return sum(airtime for _, airtime in self._spent)

    def wait_s(self, now: float, airtime_s: float) -> float:
        """How long until ``airtime_s`` more fits the window; 0 if it fits now."""
        excess = self.used(now) + airtime_s - self.limit_s
        if excess <= 0:
            return 0.0
        freed = 0.0
        for when, airtime in self._spent:
            freed += airtime
            if freed >= excess:
                return max(0.0, when + self.window_s - now)
        return self.window_s  # more than the whole limit: no LoRa frame is that long

    def spend(self, now: float, airtime_s: float) -> None:
        self._spent.append((now, airtime_s))
        self.total_s += airtime_s

    def restore(self, spent: Iterable[tuple[float, float]]) -> None:
        """Count ``(when, seconds)`` spent before this run, oldest first and before any
        :meth:`spend`; ``total_s`` stays this run's own."""
        self._spent.extend(spent)


class LoraLink:
    """The host's link when ``link: lorawan``: same ``wake``, ``start`` and ``stop`` as MQTT."""

    def __init__(
        self,
        config: LorawanConfig,
        device: str,
        outbox: Outbox,
        health: Health,
        clock: Clock,
        on_command: Callable[[bytes], None],
        modem: Modem | None = None,
    ) -> None:
        self.config = config
        self.device = device
        self.outbox = outbox
        self.health = health
        self.clock = clock
        self.on_command = on_command
        self.modem = modem or open_modem(config.modem)
        self.codec: Codec = codec(config.codec)
        self.budget = AirtimeBudget(config.max_airtime_s_per_hour)
        self.wake = threading.Event()
        self.joined = threading.Event()
        self._stop = threading.Event()
        self._configured = False
        self._join_attempt = 0
        self._send_attempt = 0
        self._rng = random.Random()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._restore_airtime()
        self._thread = threading.Thread(target=self._run, name=f"lora-{self.device}", daemon=True)
        self._thread.start()

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Give queued messages ``flush_timeout_s`` to go, then stop. What is not acknowledged by
        then stays in the outbox for the next start."""
        deadline = time.monotonic() + flush_timeout_s
        while time.monotonic() < deadline and self.joined.is_set() and self.outbox.depth:
            self.wake.set()
            self._stop.wait(0.05)
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=flush_timeout_s + 1)
            if self._thread.is_alive():
                log.warning("modem still busy at shutdown; its port is left to the process exit")
                return
        self.modem.close()

    # -- the worker ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.joined.is_set():
                    self._connect()
                elif not self._send_next():
                    self.wake.wait(1.0)
                    self.wake.clear()
            except ModemError as exc:
                self._modem_failed(exc)
            except Exception as exc:  # a bug must not end the link: it is the gauge's only voice
                log.exception("lora link failed")
                self.health.error(f"lora link failed: {exc}")
                self._stop.wait(FAULT_PAUSE_S)

    def _connect(self) -> None:
        if not self._configured:
            self.modem.configure()
            self._configured = True
        airtime = dr_time_on_air(self.modem.data_rate(), JOIN_REQUEST_SIZE)
        if self._hold_for_airtime(airtime):
            return
        self._spend(airtime)
        if self.modem.join():
            self._join_attempt = 0
            self.health.count("lora_joins")
            log.info("joined", extra={"fields": {"device": self.device}})
            self.joined.set()
            return
        self.health.count("lora_join_failed")
        delay = backoff_delay(
            self._join_attempt,
            self.config.join_retry_min_s,
            self.config.join_retry_max_s,
            self._rng,
        )
        self._join_attempt += 1
        self.health.error(f"join failed; next attempt in {delay:.0f} s")
        log.warning("join failed", extra={"fields": {"retry_in_s": round(delay)}})
        self._sleep(delay)

    def _send_next(self) -> bool:
        """Send the oldest message; False when there is none."""
        pending = self.outbox.pending(limit=1)
        if not pending:
            return False
        message = pending[0]
        encoded = self._encode(message)
        if encoded is None:
            self.outbox.ack([message.id])
            return True
        port, payload, confirmed = encoded
        airtime = dr_time_on_air(self.modem.data_rate(), DATA_OVERHEAD + len(payload))
        if self._hold_for_airtime(airtime):
            return True
        try:
            self.modem.send(port, payload, confirmed=confirmed)
        except ModemError as exc:
            if exc.reason in ("no_ack", "timeout"):  # it went on air, or may have
                self._spend(airtime)
            if exc.reason == "no_ack":
                self._retry_later(message, str(exc))
                return True
            raise
        finally:
            self._apply_downlinks()
        self._spend(airtime)
        self.outbox.ack([message.id])
        self.health.count("sent")
        self._send_attempt = 0
        return True

    def _encode(self, message: Pending) -> tuple[int, bytes, bool] | None:
        """(fPort, payload, confirmed), or None for a message that cannot go over LoRaWAN."""
        try:
            channel = Topic.parse(message.topic).channel
            envelope = Envelope.from_json(message.payload)
            port, payload = self.codec.encode(
                channel, envelope.type, envelope.seq, envelope.timestamp, envelope.data
            )
        except (CodecError, ValueError) as exc:
            self._drop(message, f"no LoRaWAN form: {exc}")
            return None
        limit = max_payload(self.modem.data_rate())
        if limit is None or len(payload) > limit.n:
            self._drop(message, f"{len(payload)} bytes do not fit DR{self.modem.data_rate()}")
            return None
        return port, payload, self.config.confirmed == "all" or channel == "event"

    def _drop(self, message: Pending, why: str) -> None:
        self.health.count("lora_unsendable")
        self.health.error(f"seq {message.seq} dropped: {why}")
        log.warning("message dropped", extra={"fields": {"seq": message.seq, "why": why}})

    def _retry_later(self, message: Pending, why: str) -> None:
        self.health.count("lora_no_ack")
        cfg = self.config
        delay = backoff_delay(self._send_attempt, cfg.retry_min_s, cfg.retry_max_s, self._rng)
        self._send_attempt += 1
        self.health.error(f"seq {message.seq} not acknowledged; retry in {delay:.0f} s")
        log.info("not acknowledged", extra={"fields": {"seq": message.seq, "retry_in_s": delay}})
        self._sleep(delay)

    def _hold_for_airtime(self, airtime_s: float) -> bool:
        """Wait while ``airtime_s`` more would break the hourly limit; True if it waited."""
        wait = self.budget.wait_s(self._now_s(), airtime_s)
        if wait <= 0:
            return False
        self.health.count("lora_airtime_held")
        log.info("holding for airtime", extra={"fields": {"wait_s": round(wait, 1)}})
        self._sleep(wait)
        return True

    def _spend(self, airtime_s: float) -> None:
        now = self._now_s()
        self.budget.spend(now, airtime_s)
        self.outbox.log_airtime(_ms(now), airtime_s, keep_after_ms=_ms(now - self.budget.window_s))

    def _restore_airtime(self) -> None:
        """Count what earlier runs spent in the last hour: a restart must not buy a fresh hour.

        Spends are kept in wall-clock time, the only time that outlives a reboot. A spend later
        than now means the clock went back between runs (RTC not set yet at boot, an NTP step): how
        long ago it really was is unknown, so it counts as spent now. That never allows more than
        the limit, and it blocks one window at most instead of until the old time comes round
        again; it is moved to now on disk too, so the next restart does not count it afresh.
        A clock that went forward ages spends early, which nothing on the device can detect.
        """
        now = self._now_s()
        spent = self.outbox.airtime_log(
            keep_after_ms=_ms(now - self.budget.window_s), latest_ms=_ms(now)
        )
        if not spent:
            return
        self.budget.restore((at_ms / 1000, seconds) for at_ms, seconds in spent)
        used = self.budget.used(now)
        log.info(
            "airtime restored", extra={"fields": {"used_s": round(used, 1), "spends": len(spent)}}
        )

    def _now_s(self) -> float:
        """Wall-clock seconds. ``Clock.now`` reads the system clock once per run and then runs on
        monotonic time, so the window cannot jump within a run, only between runs."""
        return self.clock.now().timestamp()

    def _modem_failed(self, exc: ModemError) -> None:
        self.health.count(f"lora_{exc.reason}")
        self.health.error(f"modem: {exc}")
        log.warning("modem error", extra={"fields": {"reason": exc.reason, "error": str(exc)}})
        if exc.reason == "busy":
            self._sleep(self.config.retry_min_s / 10)
            return
        self.joined.clear()
        if exc.reason == "not_joined":
            return
        self._configured = False
        if exc.reason == "timeout":
            try:
                self.modem.reset()
            except ModemError as again:
                log.warning("modem reset failed", extra={"fields": {"error": str(again)}})
        self._stop.wait(FAULT_PAUSE_S)

    def _apply_downlinks(self) -> None:
        downlinks, self.modem.downlinks = self.modem.downlinks, []
        for downlink in downlinks:
            try:
                type, data = self.codec.decode_command(downlink.port, downlink.payload)
                command = Envelope(self.device, 0, utc_timestamp(self.clock.now()), type, data)
            except (CodecError, ValueError) as exc:
                self.health.count("cmd_rejected")
                self.health.error(f"downlink rejected: {exc}")
                log.warning("downlink rejected", extra={"fields": {"error": str(exc)}})
                continue
            self.on_command(command.to_json())

    def _sleep(self, clock_s: float) -> None:
        self._stop.wait(self.clock.real_seconds(clock_s))
