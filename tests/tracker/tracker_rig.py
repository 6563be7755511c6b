"""What the tracker service's tests run against: a real SMTP server (aiosmtpd), a webhook
receiver that checks signatures, and a tracker service configured for them."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller

from edge.agents.tracker import TrackerAgent, TrackerConfig
from edge.agents.tracker.config import GnssConfig
from edge.runtime.clock import Clock
from edge.runtime.host import AgentHost, DeviceConfig, HostConfig, OutboxConfig
from edge.runtime.uplink import MqttConfig
from gateway.services.tracker_config import (
    CircleConfig,
    EmailConfig,
    NotifyConfig,
    SchoolConfig,
    TrackerServiceConfig,
    WebConfig,
    WebhookConfig,
)
from gateway.services.tracker_service import TrackerService
from sim.child_day import SCHOOL
from sim.city.school import Guardians

SECRET = b"webhook-secret-for-tests-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """A real SMTP server on a loopback port; ``messages`` are what it accepted."""

    def __init__(self, port: int | None = None) -> None:
        self.messages: list[Message] = []
        self.port = port or free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"

    def start(self) -> Mailbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class Webhook(Guardians):
    """The guardians' signed webhook of ``sim city`` (each request whose signature checks out is
    kept in ``told``, the others counted in ``bad``), with the tests' secret."""

    def __init__(self) -> None:
        super().__init__(SECRET)


def service_config(
    tmp_path: Path, broker, smtp_port: int, webhook_url: str, name: str = "svc"
) -> TrackerServiceConfig:
    secret = tmp_path / "webhook.secret"
    secret.write_bytes(SECRET)
    session = tmp_path / "session.secret"
    session.write_bytes(b"s" * 40)
    return TrackerServiceConfig(
        database=tmp_path / "tracker.db",
        outbox=tmp_path / "tracker-outbox.db",
        # no store runs in these tests: alerts leave the outbox on the broker's PUBACK
        mqtt=MqttConfig(host=broker.host, port=broker.port, reconnect_min_s=0.1, confirm="broker"),
        client_id=f"tracker-{name}-{tmp_path.name}"[:60],
        schools=[
            SchoolConfig("nagai-chuo", "長井市立中央小学校", circle=CircleConfig(*SCHOOL, 60.0))
        ],
        notify=NotifyConfig(
            email=EmailConfig(host="127.0.0.1", port=smtp_port, sender="mimamori@city.example"),
            webhook=WebhookConfig(url=webhook_url, secret_file=secret),
            retry_min_s=0.2,
            retry_max_s=1.0,
        ),
        web=WebConfig(
            port=0,
            secure_cookie=False,
            session_secret_file=session,
            tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png",
        ),
    )


def register(service: TrackerService, device: str = "tracker-1") -> None:
    """One child at the school, its tracker, and a guardian with e-mail linked to it."""
    from gateway.api.auth import hash_password

    db = service.db
    db.add_child("hana", "nagai-chuo", 0)
    db.add_device(device, "hana", "tracker", None)
    db.add_guardian("sato", "sato@example.jp", "ja", hash_password("sato-password-1"))
    db.link("sato", "hana", 0)


def start_tracker(
    tmp_path: Path,
    broker,
    clock: Clock,
    gnss_port: str,
    device: str = "tracker-1",
    confirm: str = "store",
):
    """A tracker agent on ``gnss_port`` publishing to ``broker``, running on a thread; returns
    (host, thread): set ``host.stop`` and join the thread to end it. ``confirm="broker"`` where
    no store runs to acknowledge its messages."""
    host = AgentHost(
        HostConfig(
            device=DeviceConfig(device, "tracker"),
            agent="tracker",
            mqtt=MqttConfig(
                host=broker.host, port=broker.port, reconnect_min_s=0.1, confirm=confirm
            ),
            outbox=OutboxConfig(path=tmp_path / f"{device}-outbox.db", sync="normal"),
        ),
        clock,
    )
    config = TrackerConfig(
        gnss=GnssConfig(port=gnss_port, fix_timeout_s=1.0), modem=None, battery=None
    )
    runner = threading.Thread(target=host.run, args=(TrackerAgent(host, config),), daemon=True)
    runner.start()
    return host, runner


def start_service(config: TrackerServiceConfig, clock: Clock | None = None) -> TrackerService:
    service = TrackerService(config, clock)
    service.start()
    assert service.subscriber.subscribed.wait(10), "tracker service could not subscribe"
    return service
