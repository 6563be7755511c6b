"""Build the camera's evaluation set of real photographs from two Debian packages.

    python models/eval_photos.py            # apt-get download both packages, extract, write
    python models/eval_photos.py --deb gcompris-qt-data_3.1-2_all.deb \
        --stamps-deb tuxpaint-stamps-default_2022.06.04-1_all.deb

GCompris (``gcompris-qt-data``, Debian main) ships Wikimedia Commons photographs of animals and
people inside Qt resource bundles (``.rcc``), each listed with its author, licence and source in
a README next to it. This script takes the photos named in ``PHOTOS`` below, checks that the
README gives each a licence that allows redistribution (public domain, CC0, CC-BY, CC-BY-SA), and
writes them to ``models/eval/photos/`` as JPEG at most 640 pixels wide (resized: a derivative,
so CC-BY-SA photos stay under CC-BY-SA 4.0 with their attribution), with ``photos.csv`` naming
for each file what is in it, its author, licence, source page and the package path it came from.

Tux Paint's stamps (``tuxpaint-stamps-default``, Debian main, GPL-2 as its copyright file says
for every stamp) include photographs of animals cut out from their background: a wild boar, a
brown and a black bear, four deer, a chamois (a goat-antelope, the serow's tribe), apes, a
badger, a fox. Those named in ``STAMPS`` are laid on a plain grey ground (what a cut-out
cannot give back is the real scene around the animal: say so with any figure from them) and
written the same way, their credit taken from the package's changelog.

The set is for evaluation only: the detector was trained on COCO by its authors, and no photo
here is used to train anything in this project.
"""

from __future__ import annotations

import argparse
import csv
import re
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
PACKAGE = "gcompris-qt-data"
STAMPS_PACKAGE = "tuxpaint-stamps-default"
STAMPS_DIR = "usr/share/tuxpaint/stamps/animals/mammals"
GROUND = 128  # grey level of the plain ground a cut-out stamp is laid on
ACTIVITIES = "usr/share/gcompris-qt/rcc"
FREE = re.compile(r"public domain|cc0|cc-by(-sa)?[ -][0-9]", re.IGNORECASE)
MAX_WIDTH = 640

# file in the package's bundles -> (what is in it for COCO, the city's species it stands in for)
# The city label is what an ideal detector + species step would say; "" where no city species
# applies. COCO has no monkey, deer, boar or goat-antelope class: those rows measure what the
# COCO detector does with the nearest real animals it has never been taught.
PHOTOS = {
    "explore_world_animals/resource/animals/polar_bear.webp": ("bear", "bear"),
    "explore_world_animals/resource/animals/panda.webp": ("bear", "bear"),
    "erase/resource/red_panda.webp": ("", ""),
    "erase/resource/macaque.webp": ("", "macaque"),
    "erase/resource/gibbon.webp": ("", "macaque"),
    "erase/resource/gorilla.webp": ("", "macaque"),
    "erase/resource/long_nosed_monkey.webp": ("", "macaque"),
    "explore_world_animals/resource/animals/lemur.webp": ("", "macaque"),
    "explore_world_animals/resource/animals/moose.webp": ("", "deer"),
    "erase/resource/nubian_ibex.webp": ("", "serow"),
    "erase/resource/goat.webp": ("", "serow"),
    "explore_farm_animals/resource/animals/pig.webp": ("", "boar"),
    "explore_world_music/resource/music/africa.webp": ("person", "person"),
    "explore_world_music/resource/music/america.webp": ("person", "person"),
    "explore_world_music/resource/music/australia.webp": ("person", "person"),
    "explore_world_music/resource/music/ireland.webp": ("person", "person"),
    "explore_world_music/resource/music/japan.webp": ("person", "person"),
    "explore_world_music/resource/music/mexico.webp": ("person", "person"),
    "explore_world_music/resource/music/orchestra.webp": ("person", "person"),
    "explore_farm_animals/resource/animals/cow.webp": ("cow", ""),
    "explore_farm_animals/resource/animals/horse.webp": ("horse", ""),
    "explore_farm_animals/resource/animals/sheep.webp": ("sheep", ""),
    "explore_farm_animals/resource/animals/dog.webp": ("dog", ""),
    "explore_farm_animals/resource/animals/cat.webp": ("cat", ""),
    "explore_world_animals/resource/animals/giraffe.webp": ("giraffe", ""),
    "erase/resource/horse.webp": ("horse", ""),
    "erase/resource/calf.webp": ("cow", ""),
    "erase/resource/squirrel.webp": ("", ""),
}

# Tux Paint stamp (under STAMPS_DIR) -> (COCO class, city species it stands for), as above
STAMPS = {
    "bears/european-bear.png": ("bear", "bear"),
    "bears/bear.png": ("bear", "bear"),
    "wildboar.png": ("", "boar"),
    "pig_golden.png": ("", "boar"),
    "deer/doe.png": ("", "deer"),
    "deer/deer.png": ("", "deer"),
    "deer/wapiti.png": ("", "deer"),
    "deer/caribou.png": ("", "deer"),
    "bovines/mountaingoat.png": ("", "serow"),
    "apes/chimp.png": ("", "macaque"),
    "apes/gorilla.png": ("", "macaque"),
    "apes/tamarin_emperor.png": ("", "macaque"),
    "badger.png": ("", ""),
    "dogs/fox.png": ("", ""),
    "rodents/squirrel.png": ("", ""),
    "rodents/rabbit.png": ("", ""),
    "dogs/dog.png": ("dog", ""),
    "equines/horse.png": ("horse", ""),
    "bovines/cow.png": ("cow", ""),
    "bovines/ram.png": ("sheep", ""),
}
# who made them, from the package's changelog (its copyright file: GPL-2 for every stamp)
STAMP_CREDITS = {
    "bears/european-bear.png": "Pere Pujal i Carabantes",
    "wildboar.png": "Childsplay (Stas Zytkiewicz), adapted by Pere Pujal i Carabantes",
    "deer/wapiti.png": "Childsplay (Stas Zytkiewicz), adapted by Pere Pujal i Carabantes",
    "pig_golden.png": "Bill Kendrick",
    "apes/tamarin_emperor.png": "Bill Kendrick (San Francisco Zoo)",
}
CHILDSPLAY = "Childsplay (Stas Zytkiewicz), updated by Pere Pujal i Carabantes"


def rcc_files(data: bytes) -> dict[str, bytes]:
    """The files of a Qt resource bundle (format versions 1-3), by path. Layout: a ``qres``
    header with the offsets of the node tree, the data and the names; each node is a directory
    (child count, first child) or a file (data offset), zlib-compressed when its flag says so."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource bundle")
    version, tree, blobs, names = struct.unpack(">IIII", data[4:20])
    node_size = 14 if version < 2 else 22
    out: dict[str, bytes] = {}

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        start = names + offset + 6  # length, then a 4-byte hash, then UTF-16 characters
        return data[start : start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[at : at + 6])
        path = f"{prefix}/{name(name_offset)}" if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", data[at + 6 : at + 14])
            for child in range(first, first + count):
                walk(child, path)
            return
        (offset,) = struct.unpack(">I", data[at + 10 : at + 14])
        (size,) = struct.unpack(">I", data[blobs + offset : blobs + offset + 4])
        blob = data[blobs + offset + 4 : blobs + offset + 4 + size]
        if flags & 1:  # zlib, after Qt's 4-byte uncompressed length
            blob = zlib.decompress(blob[4:])
        elif flags & 4:
            raise ValueError(f"{path}: zstd-compressed resources are not supported")
        out[path.lstrip("/")] = blob

    walk(0, "")
    return out


def credits(readme: str) -> dict[str, dict[str, str]]:
    """GCompris README stanzas (Copyright, License, Source, Files) by file name."""
    found = {}
    for stanza in re.split(r"\n\s*\n", readme):
        fields: dict[str, str] = {}
        files: list[str] = []
        in_files = False
        for line in stanza.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in ("Copyright", "License", "Source", "Comments", "Files"):
                in_files = key.strip() == "Files"
                if in_files:
                    files += value.split()
                else:
                    fields[key.strip().lower()] = value.strip()
            elif in_files and line.strip():
                files.append(line.strip())
        for f in files:
            found[f] = fields
    return found


def download(package: str, deb: Path | None, work: Path) -> tuple[Path, str]:
    """The package unpacked under ``work``, and its version."""
    if deb is None:
        subprocess.run(["apt-get", "download", package], cwd=work, check=True)
        deb = next(work.glob(f"{package}_*.deb"))
    root = work / package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root, deb.name.split("_")[1]


def save(image: np.ndarray, path: Path) -> None:
    h, w = image.shape[:2]
    if w > MAX_WIDTH:
        image = cv2.resize(image, (MAX_WIDTH, round(h * MAX_WIDTH / w)), cv2.INTER_AREA)
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 88])


def gcompris(root: Path, version: str, photos: Path) -> list[dict[str, str]]:
    files: dict[str, bytes] = {}
    for bundle in sorted((root / ACTIVITIES).glob("*.rcc")):
        if bundle.stem in {p.split("/")[0] for p in PHOTOS}:
            files |= rcc_files(bundle.read_bytes())
    prefix = "gcompris/src/activities/"
    rows = []
    for inside, (coco, city) in PHOTOS.items():
        readme = files[f"{prefix}{inside.rsplit('/', 1)[0]}/README"].decode("utf-8")
        name = inside.rsplit("/", 1)[1]
        credit = credits(readme).get(name)
        if not credit or not FREE.search(credit.get("license", "")):
            raise SystemExit(f"{inside}: no free licence in its README ({credit})")
        image = cv2.imdecode(np.frombuffer(files[prefix + inside], np.uint8), cv2.IMREAD_COLOR)
        out_name = f"{inside.split('/')[0]}-{Path(name).stem}.jpg"
        save(image, photos / out_name)
        rows.append(
            {
                "file": out_name,
                "coco": coco,
                "city": city,
                "author": credit.get("copyright", ""),
                "licence": credit["license"],
                "source": credit.get("source", ""),
                "package": f"{PACKAGE} {version} (Debian), {ACTIVITIES}/{inside.split('/')[0]}"
                f".rcc:{inside}",
            }
        )
    return rows


def on_ground(stamp: np.ndarray) -> np.ndarray:
    """A cut-out stamp (BGRA) laid on a plain grey 4:3 ground, the animal about 60 % of its
    width, as a trail camera frames a passing animal."""
    h, w = stamp.shape[:2]
    width = max(round(w / 0.6), round(h / 0.8 * 4 / 3))
    height = round(width * 3 / 4)
    ground = np.full((height, width, 3), GROUND, np.float32)
    y, x = (height - h) // 2, (width - w) // 2
    alpha = stamp[:, :, 3:4].astype(np.float32) / 255
    patch = ground[y : y + h, x : x + w]
    ground[y : y + h, x : x + w] = stamp[:, :, :3] * alpha + patch * (1 - alpha)
    return cv2.resize(ground.astype(np.uint8), (MAX_WIDTH, MAX_WIDTH * 3 // 4), cv2.INTER_CUBIC)


def stamps(root: Path, version: str, photos: Path) -> list[dict[str, str]]:
    copyright_file = root / "usr/share/doc" / STAMPS_PACKAGE / "copyright"
    if "License: GPL-2" not in copyright_file.read_text(encoding="utf-8"):
        raise SystemExit(f"{copyright_file}: the stamps are no longer GPL-2; check the licence")
    rows = []
    for inside, (coco, city) in STAMPS.items():
        stamp = cv2.imread(str(root / STAMPS_DIR / inside), cv2.IMREAD_UNCHANGED)
        if stamp is None or stamp.ndim != 3 or stamp.shape[2] != 4:
            raise SystemExit(f"{STAMPS_DIR}/{inside}: not a cut-out (BGRA) stamp")
        out_name = f"tuxpaint-{Path(inside).stem}.jpg"
        save(on_ground(stamp), photos / out_name)
        rows.append(
            {
                "file": out_name,
                "coco": coco,
                "city": city,
                "author": STAMP_CREDITS.get(inside, CHILDSPLAY),
                "licence": "GPL-2.0",
                "source": "https://tuxpaint.org/ (Tux Paint stamps, cut-out photograph)",
                "package": f"{STAMPS_PACKAGE} {version} (Debian), {STAMPS_DIR}/{inside}",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deb", type=Path, help=f"a downloaded {PACKAGE} .deb (else apt-get)")
    parser.add_argument(
        "--stamps-deb", type=Path, help=f"a downloaded {STAMPS_PACKAGE} .deb (else apt-get)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "eval")
    args = parser.parse_args()
    photos = args.out / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="eval-photos-") as tmp:
        work = Path(tmp)
        rows = gcompris(*download(PACKAGE, args.deb, work), photos)
        rows += stamps(*download(STAMPS_PACKAGE, args.stamps_deb, work), photos)
    with (args.out / "photos.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} photos to {photos} and {args.out / 'photos.csv'}")


if __name__ == "__main__":
    main()
