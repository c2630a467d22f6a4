"""Measure YuNet quantised to int8 and int16x8 against the bundled float32 TFLite (issue #26).

Three steps, each its own subcommand so a slow one can be re-run alone:

- ``convert``: rebuild YuNet from the bundled ONNX file (:mod:`fer_edge.convert.yunet`) and
  export it fully quantised, int8 and int16x8 (activations int16, weights int8), with float32
  input and outputs (a quantize op at the input, dequantize ops at the outputs), so
  :class:`~fer_edge.yunetlite.LiteYuNet` runs the files unchanged. Calibration sees real faces
  only: the frames ``python -m fer_edge.convert.yunet --int8`` makes from FER2013 *training*
  faces (:func:`~fer_edge.convert.yunet.calibration_frames`: 640x480, 320x320 and 128x128,
  the planned ROI pass), plus the astronaut test photo at those sizes.
- ``latency``: the network's invoke time (input quantize and output dequantize included) per
  variant, input size (padded to a multiple of 32 as LiteYuNet does) and thread count: one
  call of every case per round, after warm-up; the median of each run's median.
- ``agree``: FER2013 *val* faces composed into scenes, every variant through the product's
  detector (:func:`fer_edge.detect.make_detector`): found rate and false boxes against the
  pasted rectangles; and against the float model's own rows (:class:`~fer_edge.yunetlite.
  LiteYuNet`): box IoU, landmark distance and score difference of matched faces.

Usage (from the repository root; results under ``runs/yunet8``)::

    python tools/measure_yunet_int8.py convert
    nice -n 10 python tools/measure_yunet_int8.py latency  # float32,int8; 5 runs x 200 rounds
    nice -n 10 python tools/measure_yunet_int8.py latency --variants float32,int16x8 --runs 1 \\
        --rounds 50 --warmup 3
    nice -n 10 python tools/measure_yunet_int8.py agree --limit 300

``agree`` leaves int16x8 out: LiteYuNet cannot load it (the interpreter cannot allocate it at
the 1x1 input it is saved with), and at about 40x float's time it is no candidate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_edge.bench.facevideo import compose_frames, match_faces, sample_faces
from fer_edge.convert.yunet import CALIBRATION_SIZES, calibration_frames, yunet_tflite
from fer_edge.detect import default_yunet_model, default_yunet_onnx, make_detector
from fer_edge.runtime import load_runtime
from fer_edge.yunetlite import LiteYuNet, padded_size

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fer2013"
OUT = REPO / "runs" / "yunet8"
#: Quantised variants and the TFLite op set each is converted for.
VARIANTS = ("int8", "int16x8")
#: The input sizes timed: the full frame, the quarter-size pass and the ROI pass.
LATENCY_SIZES = ((640, 480), (320, 240), (128, 128))
#: A matched face's box IoU with the float box must be at least this to count as the same.
SAME_FACE_IOU = 0.3


def calibration(count: int) -> list[np.ndarray]:
    """Return the calibration frames: ``--int8``'s from FER2013 train, plus the astronaut photo.

    The photo is added at every calibration size, as the one real scene (not a pasted face).
    """
    astronaut = cv2.imread(str(REPO / "tests" / "data" / "astronaut.jpg"))
    if astronaut is None:
        raise SystemExit("tests/data/astronaut.jpg: cannot read it")
    photo = [
        cv2.resize(astronaut, size, interpolation=cv2.INTER_AREA) for size in CALIBRATION_SIZES
    ]
    return calibration_frames(DATA / "train", count) + photo


def model_paths() -> dict[str, Path]:
    """Return the float model (the bundled file) and the converted variants, by name."""
    return {"float32": default_yunet_model()} | {v: OUT / f"yunet_{v}.tflite" for v in VARIANTS}


def convert(count: int) -> None:
    """Write ``runs/yunet8/yunet_<variant>.tflite`` for every quantised variant."""
    frames = calibration(count)
    OUT.mkdir(parents=True, exist_ok=True)
    for variant in VARIANTS:
        start = time.perf_counter()
        data = yunet_tflite(default_yunet_onnx(), variant, frames)
        path = model_paths()[variant]
        path.write_bytes(data)
        took = time.perf_counter() - start
        print(f"{path}: {len(data) / 1024:.0f} KiB, {len(frames)} frames, {took:.0f} s")
        interp = sized_interpreter(load_runtime(), path, 1, (1, 320, 320, 3))
        for detail in interp.get_input_details() + interp.get_output_details()[:2]:
            print(f"  {detail['name']}: {detail['dtype'].__name__} {detail['quantization']}")


def sized_interpreter(runtime: Any, path: Path, threads: int, shape: tuple[int, ...]) -> Any:
    """Return an interpreter for ``path`` with its input resized to ``shape``, then allocated.

    The int16x8 file cannot allocate at the 1x1 input it is saved with (a convolution's output
    would be empty), so the size is set before the first allocation.
    """
    interp = runtime.interpreter_class(model_path=str(path), num_threads=threads)
    interp.resize_tensor_input(interp.get_input_details()[0]["index"], shape)
    interp.allocate_tensors()
    return interp


def latency(
    rounds: int, runs: int, warmup: int, variants: list[str], threads: list[int]
) -> dict[str, Any]:
    """Time every (variant, threads, size), interleaved; return per-run medians (ms).

    Each run is ``rounds`` rounds of one invoke per case; a case's number is the median of its
    run medians, with their range (the load on a shared machine drifts between runs).
    """
    runtime = load_runtime()
    frame = next(compose_frames(sample_faces(DATA / "val", 1)[0], (640, 480), 144)).image
    cases = []
    for size in LATENCY_SIZES:
        # The network takes multiples of 32: LiteYuNet pads 320x240 to 320x256 with zeros.
        width, height = padded_size(*size)
        image = np.zeros((1, height, width, 3), np.float32)
        image[0, : size[1], : size[0]] = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        for variant in variants:
            for count in threads:
                interp = sized_interpreter(runtime, model_paths()[variant], count, image.shape)
                interp.set_tensor(interp.get_input_details()[0]["index"], image)
                for _ in range(warmup):
                    interp.invoke()
                cases.append(((variant, count, f"{size[0]}x{size[1]}"), interp))
    medians: dict[tuple[str, int, str], list[float]] = {key: [] for key, _ in cases}
    load = [os.getloadavg()[0]]
    for _ in range(runs):
        times: dict[tuple[str, int, str], list[float]] = {key: [] for key, _ in cases}
        for _ in range(rounds):
            for key, interp in cases:
                start = time.perf_counter()
                interp.invoke()
                times[key].append(1000 * (time.perf_counter() - start))
        for key, samples in times.items():
            medians[key].append(statistics.median(samples))
        load.append(os.getloadavg()[0])
    rows = []
    for (variant, count, name), per_run in medians.items():
        median = statistics.median(per_run)
        rows.append(
            {
                "variant": variant,
                "threads": count,
                "size": name,
                "median_ms": median,
                "run_medians_ms": per_run,
            }
        )
        spread = f"{min(per_run):.2f}-{max(per_run):.2f}"
        print(f"{name:>8} {count} thr {variant:>8}: {median:7.2f} ms (runs {spread})")
    print(f"load average (1 min) before and after each run: {load}")
    return {
        "rounds": rounds,
        "runs": runs,
        "warmup": warmup,
        "runtime": f"{runtime.name} {runtime.version}",
        "load": load,
        "rows": rows,
    }


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def agree(limit: int, variants: list[str]) -> dict[str, Any]:
    """Score every variant on val-face scenes against the truth and the float model's rows."""
    faces, _ = sample_faces(DATA / "val", limit, seed=1)
    paths = model_paths()
    scenes = {
        "640x480 x1": compose_frames(faces, (640, 480), 144, 1, seed=1),
        "640x480 x3": compose_frames(faces, (640, 480), 120, 3, seed=2, clutter=True),
        "1280x720 x1": compose_frames(faces, (1280, 720), 144, 1, seed=3),
        "320x320 x1": compose_frames(faces, (320, 320), 112, 1, seed=4),
        "128x128 x1": compose_frames(faces, (128, 128), 80, 1, seed=5),
    }
    results: dict[str, Any] = {}
    for scene, frames in scenes.items():
        detectors = {v: make_detector("yunet", model_path=paths[v], threads=2) for v in variants}
        raw = {v: LiteYuNet(paths[v], 0.6, threads=2) for v in variants}
        stats: dict[str, dict[str, Any]] = {
            v: {"shown": 0, "found": 0, "false": 0, "iou": [], "kps_px": [], "score": []}
            for v in variants
        }
        unmatched = dict.fromkeys(variants, 0)
        for frame in frames:
            rows = {v: raw[v].detect(frame.image)[1] for v in variants}
            for v in variants:
                boxes = detectors[v].detect(frame.image)
                hits = match_faces(frame.boxes, boxes)
                stats[v]["shown"] += len(frame.boxes)
                stats[v]["found"] += sum(h is not None for h in hits)
                stats[v]["false"] += sum(h is None for h in hits)
                want = rows["float32"]
                got = rows[v]
                if v == "float32" or want is None:
                    continue
                for ref in want:
                    ious = [_iou(ref[:4], row[:4]) for row in got] if got is not None else [0.0]
                    best = int(np.argmax(ious))
                    stats[v]["iou"].append(ious[best])
                    if got is None or ious[best] < SAME_FACE_IOU:
                        unmatched[v] += 1
                        continue
                    row = got[best]
                    kps = np.hypot(*(row[4:14] - ref[4:14]).reshape(5, 2).T)
                    stats[v]["kps_px"].append(float(kps.mean()))
                    stats[v]["score"].append(float(row[14] - ref[14]))
        summary = {}
        for v, s in stats.items():
            line: dict[str, Any] = {
                "shown": s["shown"],
                "found_rate": s["found"] / s["shown"],
                "false_boxes": s["false"],
            }
            if s["iou"]:
                line |= {
                    "float_faces": len(s["iou"]),
                    "unmatched_float_faces": unmatched[v],
                    "iou_median": float(np.median(s["iou"])),
                    "iou_p5": float(np.percentile(s["iou"], 5)),
                    "kps_px_median": float(np.median(s["kps_px"])),
                    "kps_px_p95": float(np.percentile(s["kps_px"], 95)),
                    "score_diff_median": float(np.median(s["score"])),
                    "score_absdiff_p95": float(np.percentile(np.abs(s["score"]), 95)),
                }
            summary[v] = line
            print(scene, v, json.dumps({k: round(x, 4) for k, x in line.items()}))
        results[scene] = summary
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse the subcommand and run it; results go to ``runs/yunet8/<step>.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    conv = steps.add_parser("convert", help="write the quantised models")
    conv.add_argument("--frames", type=int, default=150, help="calibration frames from train")
    lat = steps.add_parser("latency", help="time the invoke per variant, size and threads")
    lat.add_argument("--rounds", type=int, default=200, help="rounds per run")
    lat.add_argument("--runs", type=int, default=5)
    lat.add_argument("--warmup", type=int, default=10)
    lat.add_argument("--threads", default="1,2")
    lat.add_argument("--variants", default="float32,int8")
    agr = steps.add_parser("agree", help="box agreement on val-face scenes")
    agr.add_argument("--limit", type=int, default=300, help="val faces per scene")
    agr.add_argument("--variants", default="float32,int8")
    args = parser.parse_args(argv)
    result: Any
    if args.step == "convert":
        convert(args.frames)
        return 0
    variants = args.variants.split(",")
    if args.step == "latency":
        threads = [int(t) for t in args.threads.split(",")]
        result = latency(args.rounds, args.runs, args.warmup, variants, threads)
    else:
        result = agree(args.limit, variants)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.step}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
