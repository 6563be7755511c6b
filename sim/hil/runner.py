"""Runs one scenario, step by step, and says for each step what happened.

The runner owns what every kind shares: the city side, the agent (its config file, its process,
or a thread when its pins are mock pins), the clock, faults of the city's parts, and expectations
on what the city receives. What drives a device's inputs is its kind's bench.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from edge.runtime.clock import Clock
from sim.hil.city import Arrival, CitySide
from sim.hil.kinds import Bench, Kind, Prompt, Setup, Skip, Target
from sim.hil.scenario import Scenario, Step
from sim.processes import Processes

RUNNER_ACTIONS = frozenset(
    {"start", "stop", "wait", "expect", "expect_none", "fault", "delivered", "prompt"}
)
GRACE_S = 5.0  # real seconds added to every simulated deadline: process start-up, scheduling
Result = Literal["passed", "failed", "skipped"]


class StepFailed(AssertionError):
    """The step ran and the device did not do what the scenario expects."""


@dataclass(frozen=True)
class StepResult:
    index: int
    title: str
    result: Result
    detail: str
    real_s: float


class Asker:
    """How a prompt reaches the person at the bench: the terminal, or nobody (skipped)."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive

    def ask(self, text: str) -> str | None:
        """None when done; otherwise why it was skipped."""
        if not self.interactive:
            return f"needs a person at the bench (no terminal): {text}"
        answer = input(f"    >>> {text}\n    press Enter when done, or type s to skip: ")
        return "skipped at the bench" if answer.strip().lower() == "s" else None


class AgentRun:
    """The device's agent: ``machimori agent run`` in its own process, or, for a bench whose
    pins are gpiozero mock pins, the same host and agent on a thread of this process."""

    def __init__(self, config: Path, processes: Processes, in_process: bool) -> None:
        self.config, self.processes, self.in_process = config, processes, in_process
        self.name = "agent"
        self._thread: threading.Thread | None = None
        self._host: Any = None
        self.errors: list[BaseException] = []

    def start(self) -> None:
        if not self.in_process:
            if self.name in self.processes.running:
                self.processes.restart(self.name)
            else:
                self.processes.spawn(self.name, "agent", "run", "--config", str(self.config))
            return
        from edge.agents import AGENTS
        from edge.cli import load
        from edge.runtime.host import AgentHost

        file, agent_cls, section = load(self.config)
        self._host = AgentHost(file.host)
        agent = agent_cls(self._host, section)

        def run() -> None:
            try:
                self._host.run(agent)
            except BaseException as exc:  # reported as the stop step's failure
                self.errors.append(exc)

        assert AGENTS  # the registry load() used
        self._thread = threading.Thread(target=run, name="hil-agent", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        if self.in_process:
            return self._thread is not None and self._thread.is_alive()
        managed = self.processes.running.get(self.name)
        return managed is not None and managed.proc.poll() is None

    def stop(self) -> int:
        """Stop cleanly; the exit status (0: it flushed and closed its outbox)."""
        if not self.in_process:
            return self.processes.stop(self.name) if self.name in self.processes.running else 0
        if self._thread is None:
            return 0
        self._host.stop.set()
        self._thread.join(30)
        return 1 if self.errors or self._thread.is_alive() else 0

    def kill(self) -> str | None:
        """SIGKILL; None, or why this agent cannot be killed (one running in this process)."""
        if self.in_process:
            return "the agent runs in the harness's process (mock pins): it cannot be killed alone"
        self.processes.kill(self.name)
        return None


def matches(spec: Any, value: Any) -> bool:
    """``spec``: a value to equal, ``{near: x, tol: t}``, ``{min: a, max: b}``, ``{present: true}``
    (any value), or a mapping of such specs for a mapping."""
    if isinstance(spec, dict) and set(spec) == {"present"}:
        return bool(spec["present"])  # the key is there, whatever its value
    if isinstance(spec, dict) and ({"near", "min", "max"} & set(spec)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if "near" in spec and abs(value - spec["near"]) > spec.get("tol", 0.0):
            return False
        return spec.get("min", -math.inf) <= value <= spec.get("max", math.inf)
    if isinstance(spec, dict):
        return isinstance(value, dict) and all(
            k in value and matches(v, value[k]) for k, v in spec.items()
        )
    return spec == value


class ScenarioRun:
    def __init__(
        self,
        scenario: Scenario,
        kind: Kind,
        target: Target,
        seed: int,
        workdir: Path,
        ports: dict[str, str],
        asker: Asker,
        progress: Callable[[StepResult], None],
    ) -> None:
        self.scenario, self.kind, self.target = scenario, kind, target
        self.seed, self.workdir, self.asker, self.progress = seed, workdir, asker, progress
        self.speed = scenario.clock_speed if target == "sim" else 1.0
        self.clock = Clock(self.speed)
        self.device = scenario.device
        self.processes = Processes(workdir / "logs")
        lorawan = scenario.bench.get("link") == "lorawan"
        self.city = CitySide(
            workdir / "city",
            [self.device, *kind.users],
            self.speed,
            [self.device] if lorawan else [],
        )
        self.bench: Bench = kind.open(
            Setup(
                target,
                self.device,
                workdir,
                self.clock,
                seed,
                ports,
                scenario.bench,
                self.city,
                self.processes,
            )
        )
        self.outbox = workdir / "outbox" / f"{self.device}.db"
        self.agent = AgentRun(workdir / "agent.yaml", self.processes, self.bench.in_process)
        self.mark = 0  # arrivals before this were caused by earlier stimuli
        self.claimed: set[tuple[str, int]] = set()
        self.stimulus_skipped = ""  # expectations of a skipped stimulus are skipped too

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> list[StepResult]:
        results = []
        try:
            for index, step in enumerate(self.scenario.steps, 1):
                started = time.monotonic()
                try:
                    result, detail = self._step(step)
                except StepFailed as exc:
                    result, detail = "failed", str(exc)
                except Exception as exc:  # a broken bench is this step's failure, not a crash
                    result, detail = "failed", f"{type(exc).__name__}: {exc}"
                outcome = StepResult(index, step.title, result, detail, time.monotonic() - started)
                results.append(outcome)
                self.progress(outcome)
        finally:
            self.close()
        return results

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.agent.stop()
        self.bench.close()
        for name in list(self.processes.running):
            self.processes.stop(name)
        self.city.close()

    def _step(self, step: Step) -> tuple[Result, str]:
        action = step.action
        if action in ("expect", "expect_none", "delivered") and self.stimulus_skipped:
            return "skipped", f"its stimulus was skipped: {self.stimulus_skipped}"
        handler = getattr(self, f"_do_{action}", None)
        if handler is not None:
            return handler(step.value)
        self.mark = self.city.mark()  # before acting: what it causes may arrive at once
        return self._outcome(self.bench.act(action, step.value))

    def _outcome(self, outcome: Prompt | Skip | None) -> tuple[Result, str]:
        if outcome is None:
            self.stimulus_skipped = ""
            return "passed", ""
        reason = outcome.reason if isinstance(outcome, Skip) else self.asker.ask(outcome.text)
        if reason is None:
            self.stimulus_skipped = ""
            return "passed", "done at the bench"
        self.stimulus_skipped = reason
        return "skipped", reason

    def deadline(self, scenario_s: float) -> float:
        """Real monotonic time by which ``scenario_s`` of scenario time will have passed."""
        grace = GRACE_S if self.target == "sim" else 0.0
        return time.monotonic() + self.clock.real_seconds(scenario_s) + grace

    # -- the runner's actions ------------------------------------------------------------------
    def _do_start(self, _value: Any) -> tuple[Result, str]:
        config = {
            "device": {"id": self.device, "kind": self.kind.name},
            "mqtt": self.city.mqtt_section(self.device),
            "outbox": {"path": str(self.outbox), "sync": "normal"},
            "clock_speed": self.speed,
            "log_level": "info",
            **self.bench.agent_config(),
        }
        self.agent.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.agent.start()
        # up once its outbox is open (its imports done, its signal handlers next): a stop sent
        # before that would kill it half-started
        deadline = time.monotonic() + 30
        while not self.outbox.exists() and self.agent.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        if not self.agent.alive():
            raise StepFailed(f"the agent exited at once:\n{self.processes.tail('agent')}")
        return "passed", f"config {self.agent.config}"

    def _do_stop(self, _value: Any) -> tuple[Result, str]:
        code = self.agent.stop()
        if code != 0:
            raise StepFailed(f"the agent exited with {code} (expected a clean stop, 0)")
        return "passed", "clean stop"

    def _do_wait(self, value: Any) -> tuple[Result, str]:
        self.clock.wait(float(value))
        return "passed", ""

    def _do_prompt(self, value: Any) -> tuple[Result, str]:
        if self.target == "sim":
            return "passed", "a prompt for a real bench; nothing to do in simulation"
        return self._outcome(Prompt(str(value)))

    def _do_fault(self, value: Any) -> tuple[Result, str]:
        part, what = next(iter(value.items())) if isinstance(value, dict) else (value, "")
        broker = self.city.broker
        self.mark = self.city.mark()
        if part == "broker" and what in ("restart", "crash"):
            if what == "crash":
                broker.kill()
                broker.forget()
            else:
                broker.stop()
            time.sleep(self.clock.real_seconds(float(value.get("down_s", 0))) or 0.5)
            broker.start()
        elif part == "store" and what == "kill":
            assert self.city.store is not None
            self.city.store.process.kill()
            self.city.store.process.wait()
            self.city.start_store()
        elif part == "agent" and what == "kill":
            why = self.agent.kill()
            if why is not None:
                return "skipped", why
            self.agent.start()
        else:
            return self._outcome(self.bench.act("fault", value))
        return "passed", ""

    def _matching(self, spec: dict[str, Any]) -> Callable[[Arrival], bool]:
        channel, type_ = spec.get("channel"), spec.get("type")
        data = spec.get("data", {})

        def check(a: Arrival) -> bool:
            e = a.envelope
            return (
                e.device == self.device
                and (e.device, e.seq) not in self.claimed
                and (channel is None or a.topic.channel == channel)
                and (type_ is None or e.type == type_)
                and matches(data, e.data)
            )

        return check

    def _do_expect(self, spec: dict[str, Any]) -> tuple[Result, str]:
        check, count = self._matching(spec), int(spec.get("count", 1))
        deadline = self.deadline(float(spec.get("within_s", 60)))
        start = time.monotonic()
        while True:
            found = [a for a in self.city.since(self.mark) if check(a)][:count]
            if len(found) == count:
                for a in found:
                    self.claimed.add((a.envelope.device, a.envelope.seq))
                last = found[-1]
                waited = self.clock.speed * (last.at - start)
                summary = ", ".join(f"seq {a.envelope.seq} {a.envelope.data}" for a in found)
                return "passed", f"after {max(waited, 0):.0f} s scenario time: {summary[:300]}"
            if time.monotonic() > deadline:
                seen = [f"{a.envelope.type} {a.envelope.data}" for a in self.city.since(self.mark)]
                raise StepFailed(
                    f"{len(found)} of {count} within {spec.get('within_s', 60)} s; "
                    f"received meanwhile: {seen[-5:] or 'nothing'}"
                )
            time.sleep(0.05)

    def _do_expect_none(self, spec: dict[str, Any]) -> tuple[Result, str]:
        check = self._matching(spec)  # for a span of scenario time: no grace added to it
        deadline = time.monotonic() + self.clock.real_seconds(float(spec.get("for_s", 60)))
        while time.monotonic() < deadline:
            bad = [a for a in self.city.since(self.mark) if check(a)]
            if bad:
                raise StepFailed(f"unexpected: seq {bad[0].envelope.seq} {bad[0].envelope.data}")
            time.sleep(0.1)
        return "passed", ""

    def issued(self) -> int:
        """How many seqs the device has issued: its outbox's counter, on its own disk."""
        with contextlib.closing(sqlite3.connect(self.outbox, timeout=5)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        return int(row[0]) if row else 0

    def _do_delivered(self, spec: Any) -> tuple[Result, str]:
        """Every seq the device issued is in the store once, none missing."""
        within = float(spec.get("within_s", 60)) if isinstance(spec, dict) else 60.0
        deadline = time.monotonic() + within  # real seconds: resends are network timing
        while True:
            issued, stored = self.issued(), self.city.stored_seqs(self.device)
            if stored == list(range(issued)) and issued > 0:
                return "passed", f"all {issued} messages in the store once, in seq order"
            if time.monotonic() > deadline:
                missing = sorted(set(range(issued)) - set(stored))
                repeats = len(stored) - len(set(stored))
                raise StepFailed(
                    f"issued {issued}, stored {len(set(stored))}; missing {missing[:20]}, "
                    f"stored twice {repeats}"
                )
            time.sleep(0.2)


def log_line(result: StepResult, total: int, out: Any = sys.stdout) -> None:
    mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[result.result]
    detail = f" — {result.detail}" if result.detail else ""
    print(
        f"  [{result.index:>2}/{total}] {mark} {result.title} ({result.real_s:.1f} s){detail}",
        file=out,
        flush=True,
    )
