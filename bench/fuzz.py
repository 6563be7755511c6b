"""Coverage-guided fuzzing of every parser a stranger can reach (sim/fuzz_targets.py) with
atheris, each for --seconds; prints inputs tried, rejections and crashes per parser. A crash
stops the run with atheris's report and the input that caused it. ``make fuzz`` runs it."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

# bench/gateway.py would shadow the gateway package: the repository root comes first
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def fuzz_one(name: str, seconds: float, out: multiprocessing.Queue) -> None:
    import atheris

    with atheris.instrument_imports():
        from sim.fuzz_targets import run_one
    counts = {"inputs": 0, "rejected": 0}
    deadline = time.monotonic() + seconds

    def target(data: bytes) -> None:
        counts["inputs"] += 1
        if not run_one(name, data):
            counts["rejected"] += 1
        if time.monotonic() > deadline:
            out.put((name, counts["inputs"], counts["rejected"]))
            raise SystemExit(0)

    atheris.Setup([sys.argv[0], "-rss_limit_mb=1024"], target)
    atheris.Fuzz()


def main() -> int:
    from sim.fuzz_targets import TARGETS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30, help="per parser (default 30)")
    parser.add_argument(
        "--only", action="append", choices=sorted(TARGETS), help="these parsers (default: all)"
    )
    args = parser.parse_args()
    print(f"{'parser':<20} {'inputs':>10} {'rejected':>10} {'per s':>8} crashes")
    failed = False
    for name in args.only or sorted(TARGETS):
        out: multiprocessing.Queue = multiprocessing.Queue()
        proc = multiprocessing.Process(target=fuzz_one, args=(name, args.seconds, out))
        proc.start()
        proc.join(args.seconds + 60)
        if out.empty():
            print(f"{name:<20} crashed or hung (exit {proc.exitcode}); see atheris's report above")
            failed = True
            continue
        _, inputs, rejected = out.get()
        rate = inputs / args.seconds
        print(f"{name:<20} {inputs:>10} {rejected:>10} {rate:>8.0f} 0", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
