"""River gauge: an ultrasonic sensor looks down at the water; the agent reports the water level.

``measurement`` turns a burst of samples into a level or an honest 欠測 (missing) with its reason,
``reporting`` decides what to send and when (Japan's crisis-management gauge practice: a daily
heartbeat in dry weather, every 10, 5 or 2 minutes in a flood, an event at each warning level),
``agent`` runs them on the clock. The link (MQTT or LoRaWAN) is the host's business.
"""

from edge.agents.river.agent import RiverAgent
from edge.agents.river.config import RiverConfig

__all__ = ["RiverAgent", "RiverConfig"]
