"""Face embeddings (poseguide/faces.py): time per embed, distances between people, and the face size
below which a descriptor stops being trustworthy (the measurement behind `min_face_px`).

    python benchmarks/bench_faces.py [--repeats 20]

Photos: tests/data/faces (OpenCV's samples: one man in two frames, a footballer) and
matplotlib's portrait of Grace Hopper. Landmarks come from one real MediaPipe pass per photo;
a rescaled copy keeps them, since they are normalised to the image.

1. Distances between every pair of faces, including cropped and rescaled copies of one photo.
2. Size sweep: each photo shrunk step by step; for each face box side (px in the shrunk image),
   the distance to the same face at full size, and to the nearest other person at full size.
   A descriptor is trusted while it stays well inside the same-person ball (under 0.3, half
   of the 0.6 threshold) and the other people stay outside it.
3. Milliseconds per `embed` on each photo (shape predictor + ResNet), median of --repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from matplotlib import cbook

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from poseguide import faces, hardware  # noqa: E402
from poseguide.decode import decode_image  # noqa: E402
from poseguide.extract import PoseEstimator  # noqa: E402

PHOTOS = {
    "bearded man, frame 1": REPO / "tests/data/faces/basketball1.png",
    "bearded man, frame 2": REPO / "tests/data/faces/basketball2.png",
    "footballer": REPO / "tests/data/faces/messi5.jpg",
    "Grace Hopper": Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
}


def scaled(image: np.ndarray, factor: float) -> np.ndarray:
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=interp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"hardware: {hardware.detect('cpu').summary()}; dlib {__import__('dlib').__version__}, one thread")

    images = {name: decode_image(path) for name, path in PHOTOS.items()}
    with PoseEstimator() as estimator:
        poses = {name: estimator(image)[0] for name, image in images.items()}
    start = time.perf_counter()
    embedder = faces.FaceEmbedder(min_face_px=0)
    print(f"models loaded in {time.perf_counter() - start:.2f} s")

    def box_side(image: np.ndarray, pose: np.ndarray) -> float:
        return faces.locate_face(pose, (image.shape[1], image.shape[0]), min_face_px=0).side

    # 1. distances
    first = images["bearded man, frame 1"]
    variants = dict(images)
    variants["frame 1, cropped"] = np.ascontiguousarray(first[30:330, 20:260])
    variants["frame 1, x2"] = scaled(first, 2.0)
    variants["frame 1, x0.85"] = scaled(first, 0.85)
    pose_of = dict(poses)
    height, width = first.shape[:2]
    crop_pose = poses["bearded man, frame 1"].copy()
    crop_pose[:, 0] = (crop_pose[:, 0] * width - 20) / 240
    crop_pose[:, 1] = (crop_pose[:, 1] * height - 30) / 300
    pose_of["frame 1, cropped"] = crop_pose
    pose_of["frame 1, x2"] = pose_of["frame 1, x0.85"] = poses["bearded man, frame 1"]
    vectors = {name: embedder.embed(image, pose_of[name]) for name, image in variants.items()}
    person = {name: "Hopper" if "Hopper" in name else "footballer" if "foot" in name else "man" for name in variants}
    print("\n## distances (same person < 0.6)\n")
    print("| face | box px | " + " | ".join(f"{i}" for i in range(len(variants))) + " |")
    print("|---" * (len(variants) + 2) + "|")
    same, different = [], []
    names = list(variants)
    for i, a in enumerate(names):
        cells = []
        for j, b in enumerate(names):
            d = faces.face_distance(vectors[a], vectors[b])
            cells.append(f"{d:.3f}")
            if j > i:
                (same if person[a] == person[b] else different).append(d)
        print(f"| {i}: {a} | {box_side(variants[a], pose_of[a]):.0f} | " + " | ".join(cells) + " |")
    print(f"\nsame person: {min(same):.3f}-{max(same):.3f} ({len(same)} pairs); "
          f"different people: {min(different):.3f}-{max(different):.3f} ({len(different)} pairs)")

    # 2. size sweep
    print("\n## size sweep: shrunk copies vs full size\n")
    print("| photo | box px | to itself at full size | to nearest other person |")
    print("|---|---|---|---|")
    full = {name: vectors[name] for name in images}
    for name in ("Grace Hopper", "bearded man, frame 1", "footballer"):
        side = box_side(images[name], poses[name])
        for target in (128, 96, 64, 48, 40, 36, 32, 28, 24, 20, 16):
            if target > side * 1.01:
                continue
            factor = target / side
            small = scaled(images[name], factor)
            vector = embedder.embed(small, poses[name])
            own = faces.face_distance(vector, full[name])
            others = min(faces.face_distance(vector, full[o]) for o in images if person[o] != person[name])
            print(f"| {name} | {box_side(small, poses[name]):.0f} | {own:.3f} | {others:.3f} |")

    # 3. time per embed
    print("\n## time per embed\n")
    print("| photo | image | box px | ms per embed (median) |")
    print("|---|---|---|---|")
    for name, image in images.items():
        times = []
        for _ in range(args.repeats + 1):
            start = time.perf_counter()
            embedder.embed(image, poses[name])
            times.append(time.perf_counter() - start)
        ms = statistics.median(times[1:]) * 1e3
        print(f"| {name} | {image.shape[1]}x{image.shape[0]} | {box_side(image, poses[name]):.0f} | {ms:.1f} |")


if __name__ == "__main__":
    main()
