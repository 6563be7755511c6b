"""Shared fixtures: a real Mosquitto per test session, and helpers to watch MQTT as a city would.

A missing mosquitto fails the run (MissingDependency is raised, not skipped)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest

from sim.broker import Mosquitto


@pytest.fixture(scope="session")
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as running:
        yield running


@pytest.fixture
def own_broker() -> Iterator[Mosquitto]:
    """A broker this test may stop and restart without disturbing others."""
    with Mosquitto() as running:
        yield running


class Watcher:
    """Subscribes like a city server and keeps every message it receives, in order."""

    def __init__(self, broker: Mosquitto, topic: str = "machimori/v1/#") -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.seen: list[mqtt.MQTTMessage] = []
        self._subscribed = threading.Event()
        # A persistent session: the broker keeps what arrives while this watcher reconnects.
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"watcher-{id(self)}", clean_session=False
        )
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "watcher could not subscribe"

    def collect(
        self, until: Callable[[list[mqtt.MQTTMessage]], bool], timeout_s: float = 20.0
    ) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout_s
        while not until(self.seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self.seen.append(self.messages.get(timeout=min(remaining, 0.2)))
            except queue.Empty:
                pass
        return self.seen

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def watch() -> Iterator[Callable[..., Watcher]]:
    watchers: list[Watcher] = []

    def make(broker: Mosquitto, topic: str = "machimori/v1/#") -> Watcher:
        watchers.append(Watcher(broker, topic))
        return watchers[-1]

    yield make
    for w in watchers:
        w.close()
