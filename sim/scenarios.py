"""Water-level scenarios for simulated river gauges: what the river does over (simulated) time,
and a sensor that watches it.

A river is anything with ``level_at(t)``: metres above the gauge datum at ``t`` seconds of
simulated time. ``BaseFlow`` is dry weather; ``FlashFlood`` a storm's rise and slower recession,
and ``flood_through_all_levels`` one that passes every warning level of a site and falls back
below them. ``crossings`` says when the true water crossed the levels, the reference the agent's
events are checked against. ``ScenarioSensor`` is an ultrasonic sensor on a pty whose echo follows
a river on a clock, through the air's temperature, with scheduled faults.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from edge.agents.river.measurement import speed_of_sound
from edge.runtime.clock import Clock
from sim.devices.ultrasonic import UltrasonicSim


class River(Protocol):
    def level_at(self, t: float) -> float: ...


@dataclass(frozen=True)
class BaseFlow:
    """Dry weather: a level that drifts by ``daily_m`` over the day, with wind ripple."""

    base_m: float = 0.6
    daily_m: float = 0.04
    ripple_m: float = 0.02

    def level_at(self, t: float) -> float:
        drift = self.daily_m / 2 * math.sin(2 * math.pi * t / 86400)
        return self.base_m + drift + self.ripple_m * math.sin(t / 37.0)


@dataclass(frozen=True)
class FlashFlood:
    """Base flow, then a rise to ``peak_m`` over ``rise_s`` and a slower recession.

    Levels are metres above the gauge datum; times are seconds of simulated time.
    """

    base_m: float = 0.6
    peak_m: float = 3.4
    start_s: float = 3600.0
    rise_s: float = 3 * 3600.0
    fall_s: float = 9 * 3600.0
    ripple_m: float = 0.02  # wind and surface waves

    def level_at(self, t: float) -> float:
        ripple = self.ripple_m * math.sin(t / 37.0)
        if t < self.start_s:
            return self.base_m + ripple
        into = t - self.start_s
        height = self.peak_m - self.base_m
        if into < self.rise_s:
            shape = 0.5 - 0.5 * math.cos(math.pi * into / self.rise_s)
        else:
            shape = math.exp(-3.0 * (into - self.rise_s) / self.fall_s)
        return self.base_m + height * shape + ripple

    @property
    def end_s(self) -> float:
        """When the recession is down to 5 % of the flood's height above base flow."""
        return self.start_s + self.rise_s + self.fall_s


def flood_through_all_levels(
    levels: Sequence[float],
    *,
    base_m: float,
    start_s: float,
    rise_s: float,
    fall_s: float,
    ripple_m: float = 0.02,
) -> FlashFlood:
    """A flood whose peak clears the highest level by a fifth of the gap to the one below it,
    and whose recession falls back below the lowest: every level is crossed up and down."""
    peak = levels[-1] + (levels[-1] - levels[-2]) / 5
    return FlashFlood(base_m, peak, start_s, rise_s, fall_s, ripple_m)


@dataclass(frozen=True)
class Crossing:
    t: float
    index: int  # 0 standby ... 3 danger
    direction: Literal["rising", "falling"]


def crossings(
    river: River,
    thresholds: Sequence[float],
    hysteresis_m: float,
    until_s: float,
    *,
    step_s: float = 1.0,
) -> list[Crossing]:
    """When the true level crossed each threshold: upward at the level, downward
    ``hysteresis_m`` below it, as the agent counts them."""
    found: list[Crossing] = []
    above = 0
    t = 0.0
    while t <= until_s:
        level = river.level_at(t)
        while above < len(thresholds) and level >= thresholds[above]:
            found.append(Crossing(t, above, "rising"))
            above += 1
        while above > 0 and level < thresholds[above - 1] - hysteresis_m:
            above -= 1
            found.append(Crossing(t, above, "falling"))
        t += step_s
    return found


@dataclass(frozen=True)
class Fault:
    """A sensor fault between two scenario times: ``no_echo`` (nothing reflects: foam, a sensor
    knocked askew), ``spikes`` (echoes off a branch or a pier, ``spike_probability`` of frames),
    ``stuck`` (a fouled transducer repeating one value)."""

    kind: Literal["no_echo", "spikes", "stuck"]
    start_s: float
    end_s: float

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


class ScenarioSensor(UltrasonicSim):
    """An ultrasonic sensor on a pty watching ``river`` from ``mount_height_m`` above the datum.

    Scenario time is ``clock.monotonic()``: give it the agent's clock (or one of the same speed
    started together) and both see the same river. The sensor converts time of flight to distance
    at ``reference_c``; when the air is at ``air_c(t)`` instead, it reports the distance scaled by
    c(reference)/c(air), which is what an agent's temperature correction must undo.
    ``frame_period_s`` (real seconds) replaces the part's frame rate, so that at a high clock
    speed a burst still takes a small part of a reporting cycle.
    """

    def __init__(
        self,
        river: River,
        mount_height_m: float,
        clock: Clock,
        *,
        model: str = "a02yyuw",
        faults: Sequence[Fault] = (),
        noise_mm: float = 3.0,
        spike_probability: float = 0.3,
        spike_offset_mm: float = -900.0,
        air_c: Callable[[float], float] | None = None,
        reference_c: float = 20.0,
        frame_period_s: float | None = None,
        seed: int | None = 0,
        name: str = "ttyUSB0",
        link_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.river = river
        self.mount_height_m = mount_height_m
        self.clock = clock
        self.faults = tuple(faults)
        self.spike_probability = spike_probability
        self.spike_offset_mm = spike_offset_mm
        self.air_c = air_c
        self.reference_c = reference_c
        super().__init__(
            model, self._echo_mm, noise_mm=noise_mm, seed=seed, name=name, link_dir=link_dir
        )
        if frame_period_s is not None:  # faster than the part: a burst fits an accelerated cycle
            self.stream(frame_period_s, self._emit)

    def fault_at(self, t: float) -> str | None:
        return next((f.kind for f in self.faults if f.active(t)), None)

    def true_distance_mm(self, t: float) -> float:
        return (self.mount_height_m - self.river.level_at(t)) * 1000

    def _measure(self) -> int:
        fault = self.fault_at(self.clock.monotonic())
        self.stuck(fault == "stuck")
        self.spikes(self.spike_probability if fault == "spikes" else 0.0, self.spike_offset_mm)
        return super()._measure()

    def _echo_mm(self) -> float | None:
        t = self.clock.monotonic()
        if self.fault_at(t) == "no_echo":
            return None
        distance = self.true_distance_mm(t)
        if self.air_c is not None:
            distance *= speed_of_sound(self.reference_c) / speed_of_sound(self.air_c(t))
        return distance
