"""The broker's files, generated from the catalogue: Mosquitto's password file and its ACL.

The password file uses Mosquitto 2's own format, the one ``mosquitto_passwd`` writes:
``user:$7$ITERATIONS$SALT$HASH`` with PBKDF2-HMAC-SHA512, a 12-byte salt and a 64-byte hash, both
standard base64. Device passwords are 24 random bytes, so the iteration count does not protect
them (nothing can guess 192 bits); Mosquitto's default of 101 keeps a reconnecting fleet of 1,200
trackers cheap for the broker.

The ACL names every user and every topic it may use; there are no ``pattern`` lines, so a device
that is not in the catalogue (or is revoked) has no rule at all, and Mosquitto denies by default.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from edge.protocol.topics import PREFIX

ITERATIONS = 101  # mosquitto_passwd's default (see the module docstring for why it is enough)
SALT_BYTES = 12
# What a field device publishes about itself; ``ack`` and ``cmd`` it only reads.
DEVICE_WRITES = ("telemetry", "event", "status", "image/+")
DEVICE_READS = ("cmd", "ack")
# What a gateway publishes for each LoRaWAN device it speaks for (status is its own).
GATEWAY_WRITES_FOR = ("telemetry", "event")


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The ``$7$`` hash Mosquitto 2 checks a CONNECT's password against."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` (PBKDF2) or ``$6$`` (salted SHA-512) hash, as
    Mosquitto would decide; used to check that a password file still holds a device's secret."""
    parts = hashed.split("$")
    try:
        if parts[1] == "7" and len(parts) == 5:
            salt, expected = base64.b64decode(parts[3]), base64.b64decode(parts[4])
            got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
        elif parts[1] == "6" and len(parts) == 4:
            salt, expected = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            got = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except (IndexError, ValueError):
        return False
    return hmac.compare_digest(got, expected)


def password_file(users: Iterable[tuple[str, str]]) -> str:
    """The password file's text for (username, password) pairs, hashed, sorted by name."""
    return "".join(f"{user}:{hash_password(pw)}\n" for user, pw in sorted(users))


@dataclass(frozen=True)
class Grant:
    """One user's ACL block: the topics it may read and write."""

    user: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    comment: str = ""

    def render(self) -> str:
        lines = [f"# {self.comment}"] if self.comment else []
        lines.append(f"user {self.user}")
        lines += [f"topic read {t}" for t in self.reads]
        lines += [f"topic write {t}" for t in self.writes]
        return "\n".join(lines) + "\n"


def device_grant(kind: str, device: str, comment: str = "") -> Grant:
    """A field device on MQTT: writes its own readings, events, status and images; reads its own
    commands and the store's acknowledgement of what it holds."""
    base = f"{PREFIX}/{kind}/{device}"
    return Grant(
        device,
        reads=tuple(f"{base}/{c}" for c in DEVICE_READS),
        writes=tuple(f"{base}/{c}" for c in DEVICE_WRITES),
        comment=comment,
    )


def gateway_grant(gateway: str, devices: Iterable[tuple[str, str]]) -> Grant:
    """A LoRaWAN gateway: its own status and events (and the store's ack of them: its outbox
    keeps them until then), and for each (kind, id) it speaks for the readings and events it
    forwards, the commands it sends down and the acks it watches."""
    own = f"{PREFIX}/gateway/{gateway}"
    reads: list[str] = [f"{own}/ack"]
    writes = [f"{own}/status", f"{own}/event"]
    for kind, device in sorted(devices):
        base = f"{PREFIX}/{kind}/{device}"
        writes += [f"{base}/{c}" for c in GATEWAY_WRITES_FOR]
        reads += [f"{base}/{c}" for c in DEVICE_READS]
    return Grant(gateway, tuple(reads), tuple(writes), "LoRaWAN gateway: its devices only")


def store_grant(user: str) -> Grant:
    """The city store reads everything, and writes acks (after its commit) and commands."""
    return Grant(
        user,
        reads=(f"{PREFIX}/#",),
        writes=(f"{PREFIX}/+/+/ack", f"{PREFIX}/+/+/cmd"),
        comment="city store: reads all; writes acks and the staff's commands",
    )


def service_grant(user: str) -> Grant:
    """A city service (school arrival, routines, notifications) reads, and writes only alerts."""
    return Grant(
        user,
        reads=(f"{PREFIX}/#",),
        writes=(f"{PREFIX}/alert/#",),
        comment="city service: writes only alert/...",
    )


def notifier_grant(user: str, prefix: str = "ngsi/") -> Grant:
    """The store's NGSI notifier: publishes subscriptions' MQTT notifications under ``prefix``
    (the store config's ``ngsi.mqtt_topic_prefix``), reads nothing, and cannot touch the
    devices' topics."""
    return Grant(user, writes=(f"{prefix}#",), comment="NGSI notifier: writes only " + prefix)


ACL_HEADER = """\
# Mosquitto acl_file written by `machimori provision sync` from the catalogue. Do not edit:
# the next sync replaces it. Every user has its own block; there are no patterns, so a user
# with no block (unknown, or revoked) may neither read nor write anything.
"""


def acl_file(grants: Iterable[Grant]) -> str:
    return ACL_HEADER + "".join("\n" + g.render() for g in grants)
