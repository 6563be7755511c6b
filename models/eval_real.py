"""The shipped models on every real photograph of the evaluation set, without retraining.

    python models/eval_real.py [--markdown]

For each photo of ``eval/photos.csv`` (see eval/README.md): the COCO detector's best detection
and the city label it maps to (``detector.groups``' defaults: bear, person, vehicle, other
animal), and on that box both species steps, the species head and the rendered-crop classifier
``wildlife-v1`` (as ``train_species_head.py`` measures them when it trains). Then per city
species: how often the detector saw an animal (or a person) at all, how often its own label is
right where COCO has the class, and how often each species step names the species; and for
other animals, how often a species step would raise a false harmful alarm. The two sources are
kept apart: GCompris's photographs keep their scene, Tux Paint's are cut-outs on a grey ground.
Needs only the camera extra (LiteRT), not TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import cv2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from train_species_head import Features, real_photos  # noqa: E402

from edge.agents.camera.config import COCO_GROUPS  # noqa: E402

HARMFUL = {"bear", "boar", "macaque", "deer", "serow"}
CITY = {coco: city for city, names in COCO_GROUPS.items() for coco in names}
MIN_SCORE = 0.3  # the detector's score for a finding here (the agent's detector.min_score)


def source(row: dict) -> str:
    return "tuxpaint" if row["file"].startswith("tuxpaint-") else "gcompris"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="also print the per-photo table")
    args = parser.parse_args()
    features = Features()
    rows = real_photos(HERE / "species-head.tflite", HERE / "species-head.labels", features)
    for row in rows:
        bgr = cv2.imread(str(HERE / "eval" / "photos" / row["file"]), cv2.IMREAD_COLOR)
        found = features.model.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), MIN_SCORE)
        top = found[0] if found else None
        row["detected"] = (top.label, top.score) if top else ("nothing", 0.0)
        row["group"] = CITY.get(top.label, "nothing") if top else "nothing"
    if args.markdown:
        print("| photo | what it is | detector | city label | head | crop classifier |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            what = r["city"] or r["coco"] or "-"
            d, h, c = r["detected"], r["head"], r["crop"]
            print(
                f"| {r['file']} | {what} | {d[0]} {d[1]:.2f} | {r['group']} | "
                f"{h[0]} {h[1]:.2f} | {c[0]} {c[1]:.2f} |"
            )
    for src in ("gcompris", "tuxpaint"):
        part = [r for r in rows if source(r) == src]
        print(f"\n{src}: {len(part)} photos")
        by_species: dict[str, list[dict]] = defaultdict(list)
        for r in part:
            by_species[r["city"] or "other animal"].append(r)
        for species, group in sorted(by_species.items()):
            seen = sum(r["group"] != "nothing" for r in group)
            line = f"  {species:<13} {len(group):>2}: detector found something {seen}"
            if species in ("bear", "person"):
                line += f", said {species} {sum(r['group'] == species for r in group)}"
            if species == "other animal":
                for step in ("head", "crop"):
                    alarms = sum(r[step][0] in HARMFUL for r in group)
                    line += f"; {step} false harmful alarms {alarms}"
            else:
                for step in ("head", "crop"):
                    line += f"; {step} right {sum(r[step][0] == species for r in group)}"
            print(line)


if __name__ == "__main__":
    main()
