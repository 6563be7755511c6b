"""River gauge vocabulary shared by the agent, the codec, the store and the pages.

The four levels of Japan's water-level gauge practice, lowest first (the levels a site's config
gives in metres above its gauge datum).
"""

from __future__ import annotations

# (key used in messages and config, Japanese name on pages and in alerts)
WARNING_LEVELS = (
    ("standby", "水防団待機"),  # flood-fighting teams stand by
    ("caution", "氾濫注意"),  # flood caution
    ("evacuation", "避難判断"),  # evacuation decision
    ("danger", "氾濫危険"),  # flood danger
)
WARNING_KEYS = tuple(key for key, _ in WARNING_LEVELS)

# Why a reading is missing (欠測); the codec sends the index, so only append.
MISSING_REASONS = (
    "no_echo",
    "checksum",
    "malformed",
    "partial",
    "timeout",
    "port",
    "no_samples",
    "out_of_range",
    "unstable",
    "stuck",  # one exact value for many cycles: a fouled or iced transducer
)
