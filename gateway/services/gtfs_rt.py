"""The buses' GTFS-Realtime feed: VehiclePositions and TripUpdates, as protobuf for journey
planners and the city's own map (gtfs.org/realtime/reference, version 2.0, FULL_DATASET).

Built from each bus's latest ``position`` message and the city's static GTFS-JP feed:

* VehiclePosition — the trip (only a trip_id and route_id the static feed has; a bus off its
  timetable gets the vehicle and position alone), the stop it is at or heading to with its
  sequence and VehicleStopStatus, the position and its time, and the occupancy: the number on
  board (card riders on board plus the driver's tablet count) against the bus's seats and
  capacity, as an OccupancyStatus and a percentage. The count itself is not published.
* TripUpdate — the delay the bus measured at its last stop, given at the next stop; by the spec
  it propagates to the stops after it.

A bus whose last position is older than ``stale_after_s`` is left out: a feed that shows a bus
which stopped reporting is worse than one that shows none. Entity ids are the device ids,
unique in the feed by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.transit import gtfs_realtime_pb2 as rt

from edge.protocol.bus import STOP_STATUSES
from edge.protocol.gtfs import Feed

VERSION = "2.0"
Occupancy = rt.VehiclePosition.OccupancyStatus


@dataclass(frozen=True)
class BusPosition:
    """One bus's latest position message: who, when (ms since 1970), its data."""

    device: str
    ts_ms: int
    data: dict[str, Any]


def occupancy(on_board: int, seats: int, capacity: int) -> int:
    """GTFS-RT OccupancyStatus from a head count (the spec's bands, for a bus)."""
    if on_board <= 0:
        return Occupancy.EMPTY
    if on_board < seats / 2:
        return Occupancy.MANY_SEATS_AVAILABLE
    if on_board < seats:
        return Occupancy.FEW_SEATS_AVAILABLE
    if on_board < capacity * 0.8:
        return Occupancy.STANDING_ROOM_ONLY
    if on_board < capacity:
        return Occupancy.CRUSHED_STANDING_ROOM_ONLY
    return Occupancy.FULL


class RealtimeFeed:
    def __init__(self, feed: Feed, stale_after_s: float = 300.0) -> None:
        self.feed = feed
        self.stale_after_ms = int(stale_after_s * 1000)

    def _message(self, now_ms: int) -> rt.FeedMessage:
        message = rt.FeedMessage()
        message.header.gtfs_realtime_version = VERSION
        message.header.incrementality = rt.FeedHeader.FULL_DATASET
        message.header.timestamp = now_ms // 1000
        return message

    def _fresh(self, buses: Iterable[BusPosition], now_ms: int) -> list[BusPosition]:
        return sorted(
            (b for b in buses if now_ms - b.ts_ms <= self.stale_after_ms), key=lambda b: b.device
        )

    def _trip(self, descriptor: rt.TripDescriptor, data: dict[str, Any]) -> bool:
        """Fill ``descriptor`` if the bus is on a trip the static feed has."""
        trip = self.feed.trips.get(data.get("trip_id") or "")
        if trip is None:
            return False
        descriptor.trip_id = trip.id
        descriptor.route_id = trip.route_id
        if trip.direction_id is not None:
            descriptor.direction_id = trip.direction_id
        if isinstance(data.get("start_date"), str):
            descriptor.start_date = data["start_date"]
        descriptor.schedule_relationship = rt.TripDescriptor.SCHEDULED
        return True

    def vehicle_positions(self, buses: Iterable[BusPosition], now_ms: int) -> rt.FeedMessage:
        message = self._message(now_ms)
        for bus in self._fresh(buses, now_ms):
            d = bus.data
            if not isinstance(d.get("lat"), int | float) or not isinstance(
                d.get("lon"), int | float
            ):
                continue
            entity = message.entity.add()
            entity.id = bus.device
            vp = entity.vehicle
            on_trip = self._trip(vp.trip, d)
            vp.vehicle.id = bus.device
            vp.position.latitude = d["lat"]
            vp.position.longitude = d["lon"]
            if isinstance(d.get("bearing_deg"), int | float):
                vp.position.bearing = d["bearing_deg"]
            if isinstance(d.get("speed_mps"), int | float):
                vp.position.speed = d["speed_mps"]
            vp.timestamp = bus.ts_ms // 1000
            if on_trip and d.get("stop_id") in self.feed.stops:
                vp.stop_id = d["stop_id"]
                if isinstance(d.get("stop_sequence"), int):
                    vp.current_stop_sequence = d["stop_sequence"]
                if d.get("status") in STOP_STATUSES:
                    vp.current_status = rt.VehiclePosition.VehicleStopStatus.Value(d["status"])
            on_board, seats, capacity = d.get("on_board"), d.get("seats"), d.get("capacity")
            if all(isinstance(v, int) for v in (on_board, seats, capacity)) and capacity > 0:
                vp.occupancy_status = occupancy(on_board, seats, capacity)
                vp.occupancy_percentage = min(100 * on_board // capacity, 200)
        return message

    def trip_updates(self, buses: Iterable[BusPosition], now_ms: int) -> rt.FeedMessage:
        message = self._message(now_ms)
        for bus in self._fresh(buses, now_ms):
            d = bus.data
            if not isinstance(d.get("delay_s"), int) or d.get("stop_id") not in self.feed.stops:
                continue
            entity = message.entity.add()
            entity.id = bus.device
            tu = entity.trip_update
            if not self._trip(tu.trip, d):
                del message.entity[-1]
                continue
            tu.vehicle.id = bus.device
            tu.timestamp = bus.ts_ms // 1000
            tu.delay = d["delay_s"]
            update = tu.stop_time_update.add()
            update.stop_id = d["stop_id"]
            if isinstance(d.get("stop_sequence"), int):
                update.stop_sequence = d["stop_sequence"]
            update.arrival.delay = d["delay_s"]
            update.departure.delay = d["delay_s"]
            update.schedule_relationship = rt.TripUpdate.StopTimeUpdate.SCHEDULED
        return message
