"""The one shape of a refusal that is counted: a stable ``reason`` for the counter's key, and a
detail for the log."""

from __future__ import annotations


class ReasonedError(ValueError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
