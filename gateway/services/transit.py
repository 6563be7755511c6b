"""The city's buses on the city side: the static feed, the realtime feed and the card registry,
opened once per process from the store config's ``transit`` section."""

from __future__ import annotations

from dataclasses import dataclass

from edge.protocol.gtfs import Feed
from gateway.services.cards import CardRegistry
from gateway.services.gtfs_rt import BusPosition, RealtimeFeed
from gateway.store.config import TransitConfig
from gateway.store.db import Filter, Store


@dataclass
class Transit:
    feed: Feed
    realtime: RealtimeFeed
    cards: CardRegistry

    @classmethod
    def open(cls, config: TransitConfig, store: Store) -> Transit:
        feed = Feed.load(config.gtfs)
        return cls(feed, RealtimeFeed(feed, config.stale_after_s), CardRegistry(store))

    @staticmethod
    def positions(store: Store) -> list[BusPosition]:
        """Each bus's latest position message."""
        rows = store.latest(Filter(kinds=["bus"], type="position"))
        return [BusPosition(r.device, r.ts_ms, r.data) for r in rows]
