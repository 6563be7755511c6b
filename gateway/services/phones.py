"""Phones and off-the-shelf trackers as devices: OwnTracks JSON and Traccar Client's OsmAnd query,
mapped onto the tracker envelope so the rest of the city cannot tell them from our hardware.

* OwnTracks (``_type: location`` and ``transition``; the app's JSON format, booklet "JSON"):
  ``lat``, ``lon``, ``tst`` (Unix seconds, the fix time), ``acc`` (metres), ``vel`` (km/h).
  Over MQTT on ``owntracks/{user}/{device}`` — the broker user is the registered device id and
  its ACL (``pattern write owntracks/%u/#``) lets a phone write only there — or over the
  Recorder's HTTP ``/pub`` with Basic auth (user = device id, password = its token).
* OsmAnd (Traccar Client): ``id``, ``lat``, ``lon``, ``timestamp`` (Unix seconds or ISO 8601),
  ``speed`` in knots, ``accuracy`` (metres), ``hdop``, by GET or form POST, authenticated by the
  device's token in ``key`` (Traccar Client's server URL may carry it) or Basic auth.

A phone has no seq counter, so its seq is the fix time in milliseconds: it rises, a repeat of the
same fix is dropped as a duplicate, and (unlike our trackers) a gap in it means nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from edge.protocol import Envelope, EnvelopeError, utc_timestamp
from edge.protocol.topics import check_device_id
from edge.protocol.tracker import POSITION, Position

KNOT_MPS = 1852 / 3600
OWNTRACKS_TYPES = ("location", "transition")


def new_token() -> tuple[str, str]:
    """A device token (shown once to whoever sets up the phone) and the hash the city keeps."""
    token = secrets.token_urlsafe(24)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    # 192 random bits need no slow hash: SHA-256 is enough and cheap at 1,200 phones' pace.
    return hashlib.sha256(token.encode()).hexdigest()


def token_ok(token: str | None, stored_hash: str | None) -> bool:
    if not token or not stored_hash:
        return False
    return hmac.compare_digest(token_hash(token), stored_hash)


def basic_auth(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic ``Authorization`` header."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, sep, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _envelope(device: str, moment: datetime, position: Position) -> Envelope:
    seq = int(moment.timestamp() * 1000)
    return Envelope(device, seq, utc_timestamp(moment), POSITION, position.data())


def from_owntracks(device: str, payload: bytes | str) -> Envelope | None:
    """The envelope of an OwnTracks ``location`` or ``transition``; None for the other message
    types the app sends (``lwt``, ``card``, ``waypoint``...), which carry no position."""
    check_device_id(device)
    try:
        obj = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError("payload", f"not JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise EnvelopeError("payload", "expected a JSON object")
    if obj.get("_type") not in OWNTRACKS_TYPES:
        return None
    tst = obj.get("tst")
    if isinstance(tst, bool) or not isinstance(tst, int | float) or tst <= 0:
        raise EnvelopeError("tst", f"expected Unix seconds, got {tst!r}")
    vel = obj.get("vel")
    data: dict[str, Any] = {"lat": obj.get("lat"), "lon": obj.get("lon"), "src": "owntracks"}
    data["why"] = "phone"
    if obj.get("acc") is not None:
        data["acc"] = obj["acc"]
    if isinstance(vel, int | float) and not isinstance(vel, bool) and vel >= 0:
        data["spd"] = round(vel / 3.6, 1)
    position = Position.from_data(data)
    return _envelope(device, datetime.fromtimestamp(tst, UTC), position)


def from_osmand(params: dict[str, str]) -> Envelope:
    """The envelope of one OsmAnd report (query or form fields)."""
    device = params.get("id") or params.get("deviceid") or ""
    check_device_id(device)
    stamp = params.get("timestamp", "")
    try:
        if stamp.replace(".", "", 1).isdigit():
            seconds = float(stamp)
            moment = datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, UTC)
        else:
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise EnvelopeError(
            "timestamp", f"expected Unix seconds or ISO 8601, got {stamp!r}"
        ) from exc
    data: dict[str, Any] = {"src": "osmand", "why": "phone"}
    for key, name, scale in (
        ("lat", "lat", 1.0),
        ("lon", "lon", 1.0),
        ("accuracy", "acc", 1.0),
        ("speed", "spd", KNOT_MPS),
        ("hdop", "hdop", 1.0),
    ):
        if params.get(key) not in (None, ""):
            try:
                data[name] = round(float(params[key]) * scale, 6)
            except ValueError as exc:
                raise EnvelopeError(key, f"expected a number, got {params[key]!r}") from exc
    return _envelope(device, moment, Position.from_data(data))
