"""City bus: card taps paired into journeys, the bus matched against its GTFS-JP timetable, the
driver's tablet on the bus LAN.

``matching`` finds the trip and stop from a GNSS fix, ``journeys`` keeps who is on board and the
tablet's entries on disk, ``tablet`` serves the driver's page, ``agent`` runs them together. Card
ids are hashed with the city's secret the moment they are read (``edge.protocol.bus``).
"""

from edge.agents.bus.agent import BusAgent
from edge.agents.bus.config import BusConfig

__all__ = ["BusAgent", "BusConfig"]
