"""The battery, read from the kernel's ``power_supply`` class: how long the tracker has left.

A fuel gauge (MAX17048, BQ27441 ...) or a PMIC with a kernel driver shows up as
``/sys/class/power_supply/<name>/`` with ``capacity`` (percent), ``voltage_now`` (microvolts) and
``status`` (``Charging``, ``Discharging``, ``Full``, ``Not charging``, ``Unknown``); that is the
whole interface this driver needs, so any gauge with a kernel driver works without code here.
A file that is missing or unreadable gives None for that value and is counted, never an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatteryReading:
    percent: int | None
    volts: float | None
    charging: bool | None

    def data(self) -> dict[str, object]:
        return {"pct": self.percent, "v": self.volts, "chg": self.charging}


class SysfsBattery:
    def __init__(self, path: str | Path = "/sys/class/power_supply/battery") -> None:
        self.path = Path(path)
        self.errors = 0

    def read(self) -> BatteryReading:
        capacity = self._read("capacity")
        microvolts = self._read("voltage_now")
        status = self._read("status")
        percent = int(capacity) if capacity and capacity.isdigit() else None
        volts = round(int(microvolts) / 1e6, 2) if microvolts and microvolts.isdigit() else None
        charging = None if status in (None, "Unknown") else status in ("Charging", "Full")
        return BatteryReading(None if percent is None else min(percent, 100), volts, charging)

    def _read(self, name: str) -> str | None:
        try:
            return (self.path / name).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            self.errors += 1
            log.debug("battery: %s: %s", name, exc)
            return None
