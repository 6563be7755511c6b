"""A scenario file: what device, on what clock, and its steps in order.

```yaml
name: storm at a gauge through all four levels
kind: river                # a plug-in of sim/hil/kinds/
device: river-hil-01
clock_speed: 60            # --target sim only: scenario seconds per real second
seeds: [1, 2]              # the simulators' seeds; the scenario runs once per seed
bench: {...}               # the kind's own settings (levels, mount height, scenes...)
steps:
  - start: agent
  - level: {to_m: 3.2, over_s: 1800}
  - expect: {channel: event, type: level_crossing, data: {threshold: standby}, within_s: 900}
```

A step is a mapping with one action key (its value is the action's argument) and optionally
``name`` (the progress line's title). Actions every kind has are run by the runner (start, stop,
wait, expect, expect_none, fault, delivered, prompt); the others belong to the kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.protocol.topics import check_device_id
from edge.runtime.config import ConfigError, build, load_yaml

STEP_KEYS = {"name"}


@dataclass(frozen=True)
class Step:
    action: str
    value: Any
    name: str

    @property
    def title(self) -> str:
        if self.name:
            return self.name
        if isinstance(self.value, dict):
            inner = ", ".join(f"{k}={v}" for k, v in self.value.items())
            return f"{self.action} {inner}"
        return f"{self.action} {self.value}" if self.value is not None else self.action


@dataclass
class ScenarioFile:
    """The file's top level, before its steps are read."""

    name: str
    kind: str
    device: str
    steps: list[dict[str, Any]]
    description: str = ""
    clock_speed: float = 1.0
    seeds: list[int] = field(default_factory=lambda: [0])
    bench: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_device_id(self.device)
        if self.clock_speed <= 0:
            raise ValueError("clock_speed must be > 0")
        if not self.seeds:
            raise ValueError("seeds: at least one")


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    kind: str
    device: str
    description: str
    clock_speed: float
    seeds: list[int]
    bench: dict[str, Any]
    steps: list[Step]


def load_scenario(path: str | Path, known_actions: set[str]) -> Scenario:
    """Read ``path``; ``known_actions`` are the runner's and the kind's. A wrong file raises
    ConfigError naming the file, the step and what was expected."""
    path = Path(path)
    raw = build(ScenarioFile, load_yaml(path), file=path)
    steps = []
    for i, item in enumerate(raw.steps):
        key = f"steps[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(path, key, "a mapping with one action", item)
        actions = [k for k in item if k not in STEP_KEYS]
        if len(actions) != 1 or actions[0] not in known_actions:
            expected = "exactly one action of: " + ", ".join(sorted(known_actions))
            raise ConfigError(path, key, expected, actions)
        name = item.get("name", "")
        if not isinstance(name, str):
            raise ConfigError(path, f"{key}.name", "a string", name)
        steps.append(Step(actions[0], item[actions[0]], name))
    return Scenario(
        path,
        raw.name,
        raw.kind,
        raw.device,
        raw.description,
        raw.clock_speed,
        raw.seeds,
        raw.bench,
        steps,
    )
