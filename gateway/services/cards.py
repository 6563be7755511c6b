"""The city's card registry: who a pass belongs to, in categories only, keyed by the card's hash.

The counter that issues a commuter pass reads the card, hashes its id with the city's secret
(``edge.protocol.bus.card_hash``, the same the buses use) and records the hash with the rider's
category (child, adult, senior, disability), the pass type and its validity. Neither the card id
nor the rider's name is stored here. A lost card is revoked: its later taps still count as rides,
under ``revoked``, and the staff see them.

The table lives in the store's database (SQLite or PostgreSQL), created on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from edge.protocol.bus import HASH_HEX, RIDER_CATEGORIES
from gateway.store.db import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (
    card TEXT PRIMARY KEY,
    category TEXT NOT NULL,
    pass_type TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    issued_ms BIGINT NOT NULL,
    revoked_ms BIGINT
)
"""
UPSERT = """
INSERT INTO cards (card, category, pass_type, valid_from, valid_to, issued_ms, revoked_ms)
VALUES (?, ?, ?, ?, ?, ?, NULL)
ON CONFLICT (card) DO UPDATE SET category = excluded.category, pass_type = excluded.pass_type,
    valid_from = excluded.valid_from, valid_to = excluded.valid_to,
    issued_ms = excluded.issued_ms, revoked_ms = NULL
"""
# what a ride's card turns out to be, beside its category
UNKNOWN, REVOKED, EXPIRED = "unknown", "revoked", "expired"


@dataclass(frozen=True)
class CardRecord:
    card: str
    category: str
    pass_type: str
    valid_from: date
    valid_to: date
    revoked_ms: int | None

    def rider(self, day: date) -> str:
        """The category a ride on ``day`` counts under."""
        if self.revoked_ms is not None:
            return REVOKED
        if not self.valid_from <= day <= self.valid_to:
            return EXPIRED
        return self.category


def check_hash(card: str) -> str:
    if len(card) != HASH_HEX or any(c not in "0123456789abcdef" for c in card):
        raise ValueError(f"a card hash is {HASH_HEX} lowercase hex digits")
    return card


class CardRegistry:
    def __init__(self, store: Store) -> None:
        self.store = store
        with store.dialect.writing() as cur:
            cur.execute(SCHEMA)

    def issue(
        self, card: str, category: str, pass_type: str, valid: tuple[date, date], now_ms: int
    ) -> None:
        """Record a pass (again: re-issuing a card clears a revocation)."""
        if category not in RIDER_CATEGORIES:
            raise ValueError(f"category: expected one of {', '.join(RIDER_CATEGORIES)}")
        if not pass_type or len(pass_type) > 40:
            raise ValueError("pass_type: 1..40 characters")
        if valid[0] > valid[1]:
            raise ValueError("the pass must be valid from a day before it is valid to")
        with self.store.dialect.writing() as cur:
            cur.execute(
                self.store.sql(UPSERT),
                (
                    check_hash(card),
                    category,
                    pass_type,
                    valid[0].isoformat(),
                    valid[1].isoformat(),
                    now_ms,
                ),
            )

    def revoke(self, card: str, now_ms: int) -> bool:
        """Mark a lost card; False if the registry does not know it."""
        with self.store.dialect.writing() as cur:
            cur.execute(
                self.store.sql("UPDATE cards SET revoked_ms = ? WHERE card = ?"),
                (now_ms, check_hash(card)),
            )
            return cur.rowcount > 0

    def all(self) -> dict[str, CardRecord]:
        with self.store.dialect.reading() as cur:
            cur.execute(
                "SELECT card, category, pass_type, valid_from, valid_to, revoked_ms FROM cards"
            )
            rows = cur.fetchall()
        return {
            r[0]: CardRecord(
                r[0], r[1], r[2], date.fromisoformat(r[3]), date.fromisoformat(r[4]), r[5]
            )
            for r in rows
        }
