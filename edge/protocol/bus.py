"""City bus vocabulary shared by the bus agent, the city's card registry and its ridership.

A card's id never leaves the bus in the clear: the bus sends ``card_hash(secret, tech, uid)``, a
keyed hash (HMAC-SHA256, RFC 2104) with a secret the city gives each of its buses. The city's
card registry stores the same hash, made at the counter where the pass is issued, so the two
meet without anyone outside holding a table from hashes back to cards (a plain hash of a 4-byte
125 kHz id could be reversed by trying all 2^32 ids; a keyed one cannot without the secret).
"""

from __future__ import annotations

import hashlib
import hmac

# Card technologies, as the hash input names them. ``em4100`` is the 125 kHz read-only tag an
# RDM6300 reads; ``felica`` is Sony's 212 kbit/s card (its IDm); ``iso14443a`` covers MIFARE.
TECHS = ("em4100", "felica", "iso14443a")
# Fare categories on the driver's tablet and in the card registry (Japanese label first).
FARES = {
    "adult": "大人",
    "child": "小児",
    "senior": "高齢者",
    "disability": "障がい者",
    "ticket": "回数券",
    "cash": "現金",
}
RIDER_CATEGORIES = ("adult", "child", "senior", "disability")
TABLET_ACTIONS = ("board", "alight", "undo")
# GTFS-Realtime VehiclePosition.VehicleStopStatus names, sent as text in ``position``.
STOP_STATUSES = ("INCOMING_AT", "STOPPED_AT", "IN_TRANSIT_TO")
HASH_HEX = 32  # 128 bits of the HMAC: ample against collisions among a city's cards
MIN_SECRET_BYTES = 16


def card_hash(secret: bytes, tech: str, uid: bytes) -> str:
    """The keyed hash that stands for a card everywhere past the reader."""
    if tech not in TECHS:
        raise ValueError(f"card technology {tech!r}: expected one of {', '.join(TECHS)}")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the card secret must be at least {MIN_SECRET_BYTES} bytes")
    mac = hmac.new(secret, f"{tech}:{uid.hex()}".encode("ascii"), hashlib.sha256)
    return mac.hexdigest()[:HASH_HEX]
