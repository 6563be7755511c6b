"""Child tracker: a GNSS receiver and an LTE modem; the agent reports the child's position.

``reporting`` decides when to look and when to send (school windows, moving or still, night),
``agent`` runs it on the clock with the SOS button, the battery and the modem's link health.
The city decides what a position means (school arrival, a guardian's map): gateway/services/.
"""

from edge.agents.tracker.agent import TrackerAgent
from edge.agents.tracker.config import TrackerConfig

__all__ = ["TrackerAgent", "TrackerConfig"]
