"""Results as JUnit XML, the format CI servers (Jenkins, GitLab, GitHub's test reporters) read:
one test suite per scenario run (scenario and seed), one test case per step."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from sim.hil.runner import StepResult


def junit(runs: list[tuple[str, str, list[StepResult]]], path: Path) -> None:
    """``runs``: (suite name, scenario file, its step results)."""
    suites = ET.Element("testsuites")
    for name, source, results in runs:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=name,
            tests=str(len(results)),
            failures=str(sum(r.result == "failed" for r in results)),
            skipped=str(sum(r.result == "skipped" for r in results)),
            errors="0",
            time=f"{sum(r.real_s for r in results):.3f}",
            file=source,
        )
        for r in results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=name,
                name=f"{r.index:02d} {r.title}",
                time=f"{r.real_s:.3f}",
            )
            if r.result == "failed":
                ET.SubElement(case, "failure", message=r.detail[:200]).text = r.detail
            elif r.result == "skipped":
                ET.SubElement(case, "skipped", message=r.detail)
            elif r.detail:
                ET.SubElement(case, "system-out").text = r.detail
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
