"""``machimori hil``: run a device's scenario against the simulators or a device on the bench."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from edge.runtime.config import ConfigError
from sim.hil.kinds import KINDS, load_kind
from sim.hil.report import junit
from sim.hil.runner import RUNNER_ACTIONS, Asker, ScenarioRun, StepResult, log_line
from sim.hil.scenario import Scenario, load_scenario

EPILOG = """examples:
  machimori hil run scenarios/river-storm.yaml --target sim
  machimori hil run scenarios/*.yaml --target sim --junit results/hil.xml
  machimori hil run scenarios/river-storm.yaml --target real \\
      --port sensor=/dev/ttyUSB0 --junit results/river-07.xml

--target sim starts the simulators at the far end of the agent's ports (ptys, gpiozero mock pins,
rendered video) on the scenario's accelerated clock. --target real runs the same agent and the
same expectations against the device wired to this machine, in real time: name each port with
--port NAME=PATH (a river gauge: sensor, and modem for LoRaWAN; a camera: camera, pir). A step
only a person can do (set a water level, walk past the camera) is printed as a prompt; press
Enter when done, or s to skip it. Without a terminal such steps are skipped with the reason, and
so are the expectations that follow them. Exit status 0: no step failed; 1: a step failed;
2: a scenario file or an option is wrong."""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Hardware-in-the-loop: run scenario files against the simulators or a bench.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="{run}")
    run = sub.add_parser("run", help="run scenarios", description="Run scenario files.")
    run.add_argument("scenarios", nargs="+", type=Path, help="scenario files (YAML)")
    run.add_argument("--target", choices=("sim", "real"), default="sim", help="default: sim")
    run.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a real port of the device (repeatable), e.g. sensor=/dev/ttyUSB0",
    )
    run.add_argument("--seed", type=int, action="append", help="run only these seeds")
    run.add_argument("--junit", type=Path, help="also write the results as JUnit XML here")
    run.add_argument("--workdir", type=Path, help="keep configs, logs and databases here")
    run.add_argument(
        "--no-prompt", action="store_true", help="skip steps that need a person (as without a tty)"
    )
    return parser


def parse_ports(items: list[str]) -> dict[str, str]:
    ports = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--port {item!r}: expected NAME=PATH, e.g. sensor=/dev/ttyUSB0")
        ports[name] = path
    return ports


def load_all(paths: list[Path]) -> list[Scenario]:
    scenarios = []
    for path in paths:
        scenarios.append(load_scenario(path, RUNNER_ACTIONS | _all_kind_actions(path)))
    return scenarios


def _all_kind_actions(path: Path) -> set[str]:
    from edge.runtime.config import load_yaml

    kind = load_yaml(path).get("kind")
    try:
        return set(load_kind(kind).actions)
    except (KeyError, TypeError):
        raise ConfigError(path, "kind", "one of " + ", ".join(KINDS), kind) from None


def main(argv: list[str], prog: str = "machimori hil") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        ports = parse_ports(args.port)
        scenarios = load_all(args.scenarios)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for scenario in scenarios:
        unknown = set(ports) - set(load_kind(scenario.kind).port_names)
        if args.target == "real" and unknown:
            names = ", ".join(load_kind(scenario.kind).port_names)
            print(f"error: {scenario.path}: no port {sorted(unknown)}; known: {names}")
            return 2
    asker = Asker(interactive=sys.stdin.isatty() and not args.no_prompt)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="machimori-hil-"))
    runs: list[tuple[str, str, list[StepResult]]] = []
    for scenario in scenarios:
        kind = load_kind(scenario.kind)
        seeds = [s for s in scenario.seeds if not args.seed or s in args.seed] or args.seed
        for seed in seeds:
            title = f"{scenario.path.stem}[{args.target}, seed {seed}]"
            print(f"{title}: {scenario.name} — {len(scenario.steps)} steps", flush=True)
            total = len(scenario.steps)
            run = ScenarioRun(
                scenario,
                kind,
                args.target,
                seed,
                root / f"{scenario.path.stem}-{args.target}-{seed}",
                ports,
                asker,
                lambda result, total=total: log_line(result, total),
            )
            results = run.run()
            counts = {k: sum(r.result == k for r in results) for k in ("passed", "failed")}
            skipped = len(results) - sum(counts.values())
            print(
                f"  {title}: {counts['passed']} passed, {counts['failed']} failed, "
                f"{skipped} skipped",
                flush=True,
            )
            runs.append((title, str(scenario.path), results))
    if args.junit:
        junit(runs, args.junit)
        print(f"JUnit XML: {args.junit}")
    if args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if any(r.result == "failed" for _, _, rs in runs for r in rs) else 0
