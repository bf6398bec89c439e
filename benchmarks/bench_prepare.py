"""How fast `poseguide prepare` is, as a ratio to MediaPipe alone, measured in one run.

    python benchmarks/bench_prepare.py [--video vtest.avi] [--frames 400]

Definitions (all on the same clip: the first --frames frames of vtest.avi):
  * MediaPipe inference rate: one process, one MediaPipe Pose graph (complexity 1 with
    segmentation), timed on exactly the person crops prepare feeds it for these frames
    (recorded first, held in memory, graph warmed up). Reported as crops/s and as
    frames/s = frames / total inference time: the rate at which a single process could
    get through the clip if pose inference were the only cost.
  * prepare rate: frames/s of the real CLI, `poseguide prepare CLIP --out NEW_DIR
    --workers W`, wall clock from process start to exit (decode, HOG person detection,
    pose, cropping, shard writes, consolidation, worker start-up).
  * ratio = prepare frames/s with 2 workers / MediaPipe frames/s. The target is >= 1.6:
    two workers must more than make up for everything prepare does besides inference.
  * --rounds R (default 2) repeats all three timings, alternating, and takes the best of
    each: on a shared 2-core machine a single run of either side swings by up to 8%.

    python benchmarks/bench_prepare.py --detectors [--video vtest.avi]

prints how HOG settings trade person recall for time, on every 20th frame: "recall" is
the fraction of the people found by the union of all settings (each proposal run
through MediaPipe and prepare's filters) that a setting finds; the cost is HOG time
plus 1 MediaPipe call per proposal. The defaults in extract.DetectorSettings come from
this table (work_side 1024, stride 16, scale 1.1, no grouping, no padding), plus tracking.
Rows use no padding unless they say "pad 16".
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_VIDEO = "/tmp/od/x/usr/share/doc/opencv-doc/examples/data/vtest.avi"


def write_clip(video: str, frames: int, path: Path) -> int:
    """The first `frames` frames, re-encoded losslessly enough (MJPG q95) to be the test input."""
    cap = cv2.VideoCapture(video)
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    writer = None
    n = 0
    while n < frames:
        ok, frame = cap.read()
        if not ok:
            break
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frame.shape[1], frame.shape[0]))
            writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
        writer.write(frame)
        n += 1
    cap.release()
    if writer is not None:
        writer.release()
    return n


def record_crops(clip: Path) -> tuple[list[np.ndarray], int]:
    """Run prepare's own unit processing in this process and keep every image MediaPipe is given."""
    from poseguide import prepare as prep
    from poseguide.extract import PoseEstimator, make_hog

    crops: list[np.ndarray] = []

    class Recording(PoseEstimator):
        def __call__(self, image):
            crops.append(np.array(image, copy=True))
            return super().__call__(image)

    settings = prep.PrepareSettings()
    source = prep.make_source(str(clip))
    frames = 0
    with tempfile.TemporaryDirectory() as tmp, Recording() as est:
        hog = make_hog()
        for unit in prep.source_units(source, settings):
            frames += prep.process_unit(unit, Path(tmp), settings, est, hog).frames
    return crops, frames


def time_mediapipe(crops: list[np.ndarray]) -> float:
    """Seconds for one fresh, warmed-up MediaPipe graph to process every crop once."""
    from poseguide.extract import PoseEstimator

    with PoseEstimator() as est:
        for crop in crops[:5]:
            est(crop)
        start = time.perf_counter()
        for crop in crops:
            est(crop)
        return time.perf_counter() - start


def time_prepare(clip: Path, workers: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "data"
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "poseguide.cli", "prepare", str(clip), "--out", str(out),
             "--workers", str(workers), "--no-progress"],
            cwd=REPO, capture_output=True, text=True,
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"prepare failed: {proc.stderr.strip().splitlines()[-1:]}")
        import json

        samples = json.loads((out / "manifest.json").read_text())["counts"]["samples"]
    return seconds, samples


def detector_table(video: str) -> None:
    """Recall vs cost of HOG settings (see the module docstring)."""
    from poseguide import extract as ex, landmarks as lm
    from poseguide.decode import iter_video_frames

    frames = [f for _, f in iter_video_frames(video, every=20)]
    configs = {
        "reference: 768 px, stride 4, scale 1.05, group 2": ex.DetectorSettings(work_side=768, win_stride=4, scale=1.05, group_threshold=2),
        "768 px, stride 8, scale 1.1, group 1": ex.DetectorSettings(work_side=768, win_stride=8, scale=1.1, group_threshold=1),
        "768 px, stride 8, scale 1.1, group 0": ex.DetectorSettings(work_side=768, win_stride=8, scale=1.1, group_threshold=0),
        "640 px, stride 8, scale 1.1, group 1": ex.DetectorSettings(work_side=640, win_stride=8, scale=1.1, group_threshold=1),
        "1024 px, stride 8, scale 1.2, group 1": ex.DetectorSettings(work_side=1024, win_stride=8, scale=1.2, group_threshold=1),
        "1024 px, stride 16, scale 1.1, group 0, pad 16": ex.DetectorSettings(work_side=1024, win_stride=16, scale=1.1, group_threshold=0, padding=16),
        "1152 px, stride 8, scale 1.1, group 1": ex.DetectorSettings(work_side=1152, win_stride=8, scale=1.1, group_threshold=1),
        "1024 px, stride 16, scale 1.1, group 0 (default)": ex.DetectorSettings(work_side=1024, win_stride=16, scale=1.1, group_threshold=0, padding=0),
        "1024 px, stride 16, scale 1.15, group 0": ex.DetectorSettings(work_side=1024, win_stride=16, scale=1.15, group_threshold=0),
        "896 px, stride 16, scale 1.1, group 0": ex.DetectorSettings(work_side=896, win_stride=16, scale=1.1, group_threshold=0),
        "1152 px, stride 16, scale 1.15, group 0": ex.DetectorSettings(work_side=1152, win_stride=16, scale=1.15, group_threshold=0),
    }
    est, hog = ex.PoseEstimator(), ex.make_hog()
    cache: dict = {}
    results = {}

    def ok(p):
        box = ex.person_box(p)
        return (box is not None and p.mask_agreement >= 0.5
                and lm.count_visible_body_joints(p.landmarks) >= 8 and max(box.x1 - box.x0, box.y1 - box.y0) >= 56)

    for name, s in configs.items():
        hog_s = mp_s = 0.0
        calls, kept_all = 0, []
        for fi, img in enumerate(frames):
            t = time.perf_counter()
            props = ex.detect_people(img, s, hog)
            hog_s += time.perf_counter() - t
            kept = []
            for p in props:
                region = ex.proposal_region(p, (img.shape[1], img.shape[0]), s.context)
                if (fi, region) not in cache:
                    t = time.perf_counter()
                    person = ex.estimate_region(img, region, est)
                    if person is not None:
                        person.mask_agreement = ex.mask_agreement(person)
                    cache[(fi, region)] = (person, time.perf_counter() - t)
                person, dt = cache[(fi, region)]
                mp_s += dt
                calls += 1
                if person is not None and ok(person) and not any(ex.same_person(person, q) for q in kept):
                    kept.append(person)
            kept_all.append(kept)
        results[name] = (hog_s, mp_s, calls, kept_all)
    gold = []
    for fi in range(len(frames)):
        g = []
        for _, _, _, kept_all in results.values():
            for p in kept_all[fi]:
                if not any(ex.same_person(p, q) for q in g):
                    g.append(p)
        gold.append(g)
    total = sum(map(len, gold))
    n = len(frames)
    print(f"{n} frames (every 20th); {total} people found by the union of all settings")
    for name, (hog_s, mp_s, calls, kept_all) in results.items():
        found = sum(sum(any(ex.same_person(q, p) for p in kept_all[fi]) for q in gold[fi]) for fi in range(n))
        print(f"  {name:50s} recall {found / total:.2f}  HOG {1000 * hog_s / n:5.0f} ms/frame  "
              f"{calls / n:4.1f} proposals/frame  HOG+pose {1000 * (hog_s + mp_s) / n:5.0f} ms/frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2, help="repeat every timing; the best of each counts")
    parser.add_argument("--detectors", action="store_true", help="print the HOG recall/cost table instead")
    args = parser.parse_args()
    if not os.path.exists(args.video):
        raise SystemExit(f"no video at {args.video}; run scripts/get_sample_data.sh and pass --video")
    cv2.setNumThreads(1)
    if args.detectors:
        detector_table(args.video)
        return
    from poseguide import hardware

    print(f"hardware: {hardware.detect('cpu').summary()}; {os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.avi"
        n = write_clip(args.video, args.frames, clip)
        crops, frames = record_crops(clip)
        assert frames == n, (frames, n)
        print(f"clip: {n} frames of {Path(args.video).name}; prepare gives MediaPipe {len(crops)} crops "
              f"({len(crops) / n:.2f} per frame)")
        mp_seconds, prepare_seconds = float("inf"), {1: float("inf"), 2: float("inf")}
        for round_no in range(1, args.rounds + 1):
            seconds = time_mediapipe(crops)
            mp_seconds = min(mp_seconds, seconds)
            line = f"round {round_no}: MediaPipe alone {1000 * seconds / len(crops):.1f} ms/crop"
            for workers in (1, 2):
                seconds, samples = time_prepare(clip, workers)
                prepare_seconds[workers] = min(prepare_seconds[workers], seconds)
                line += f"; prepare --workers {workers} {seconds:.1f} s ({samples} samples)"
            print(line, flush=True)
        mp_fps = frames / mp_seconds
        print(f"MediaPipe alone, 1 process (best): {len(crops) / mp_seconds:.1f} crops/s "
              f"({1000 * mp_seconds / len(crops):.1f} ms/crop) = {mp_fps:.2f} frames/s")
        rates = {}
        for workers, seconds in prepare_seconds.items():
            rates[workers] = n / seconds
            print(f"prepare --workers {workers} (best): {seconds:.1f} s end to end = {rates[workers]:.2f} frames/s, "
                  f"ratio to MediaPipe alone {rates[workers] / mp_fps:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"RESULT prepare (2 workers) / MediaPipe inference (1 process) = {rates[2] / mp_fps:.2f}x "
          f"(target >= 1.6x); 2 workers / 1 worker = {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
