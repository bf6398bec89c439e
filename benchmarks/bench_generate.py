"""How fast `generate` draws on this CPU, for every model size preset, measured in one run.

    python benchmarks/bench_generate.py [--presets small,base,large] [--batch 16] [--seconds 4]

Definitions (untrained weights: speed does not depend on what the weights are):
  * batch images/s: `Generator.generate` on `--batch` posed samples at a time (condition
    rendering + decoder + conversion to RGBA uint8), the model already loaded and warmed
    up, repeated for at least `--seconds`. Measured in fp32 and with bf16 autocast
    (`--precision bf16`); the ratio bf16/fp32 is printed beside them. Encoding is not
    timed: generation only decodes.
  * first image, API: a fresh Python process that imports poseguide.generate, loads the
    saved model directory (`Generator.load`), frames one keypoints pose and draws one
    image; wall clock from process start to the image, as measured by the parent.
  * first image, CLI: `generate --pose pose.json --num 1 --checkpoint MODEL_DIR` in a
    fresh process, start to exit: what a user waits for, including writing the PNG, its
    pose file and the contact sheet.
torch uses its default thread count (printed); --threads N changes it for the rates (the
fresh processes always use torch's default).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from poseguide import framing, landmarks as lm  # noqa: E402
from poseguide.generate import Generator  # noqa: E402
from poseguide.model import MODEL_PRESETS, PoseCVAE, count_parameters, flops_per_image, preset  # noqa: E402

# A standing person, normalised to a 768x576 frame: enough visible joints to frame and draw.
STANDING = {
    "nose": (0.500, 0.30), "left_eye_inner": (0.503, 0.293), "left_eye": (0.505, 0.293),
    "left_eye_outer": (0.507, 0.293), "right_eye_inner": (0.497, 0.293), "right_eye": (0.495, 0.293),
    "right_eye_outer": (0.493, 0.293), "left_ear": (0.510, 0.297), "right_ear": (0.490, 0.297),
    "mouth_left": (0.503, 0.307), "mouth_right": (0.497, 0.307),
    "left_shoulder": (0.520, 0.340), "right_shoulder": (0.480, 0.340),
    "left_elbow": (0.530, 0.400), "right_elbow": (0.470, 0.400),
    "left_wrist": (0.532, 0.455), "right_wrist": (0.468, 0.455),
    "left_pinky": (0.533, 0.465), "right_pinky": (0.467, 0.465),
    "left_index": (0.532, 0.467), "right_index": (0.468, 0.467),
    "left_thumb": (0.530, 0.462), "right_thumb": (0.470, 0.462),
    "left_hip": (0.512, 0.470), "right_hip": (0.488, 0.470),
    "left_knee": (0.515, 0.570), "right_knee": (0.485, 0.570),
    "left_ankle": (0.516, 0.665), "right_ankle": (0.484, 0.665),
    "left_heel": (0.514, 0.675), "right_heel": (0.486, 0.675),
    "left_foot_index": (0.525, 0.680), "right_foot_index": (0.475, 0.680),
}
SOURCE_SIZE = (768, 576)


def standing_pose() -> np.ndarray:
    pose = np.zeros((lm.NUM_LANDMARKS, 4), np.float32)
    for name, (x, y) in STANDING.items():
        pose[lm.INDEX[name]] = (x, y, 0.0, 1.0)
    return pose


def save_untrained(name: str, directory: Path) -> Path:
    """An untrained model of a preset, saved as a model dir like training exports it."""
    torch.manual_seed(0)
    model = PoseCVAE(preset(name)).eval()
    size = model.config.image_size
    extra = {
        "framing": framing.FramingSettings().to_dict(),
        "data": {"image_size": size, "background": [128, 128, 128]},
    }
    return model.save_pretrained(directory / name, extra_config=extra)


def images_per_second(gen: Generator, poses: np.ndarray, seconds: float) -> float:
    gen.generate(poses, seed=0, batch_size=len(poses))  # warm-up (allocations, oneDNN kernels)
    done, start = 0, time.perf_counter()
    while True:
        gen.generate(poses, seed=done, batch_size=len(poses))
        done += len(poses)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


FIRST_IMAGE_API = """
import sys
from poseguide import landmarks as lm
from poseguide.generate import Generator
kp = lm.read_keypoints(sys.argv[2])
gen = Generator.load(sys.argv[1])
image = gen.generate(gen.frame_pose(kp.landmarks, kp.image_size)[None], seed=0)
assert image.shape[0] == 1
"""


def time_process(command: list[str], repeats: int) -> float:
    """Best of `repeats` wall-clock runs of a fresh process (the first also warms the disk cache)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(command[:3])} ... failed:\n{proc.stderr[-2000:]}")
        best = min(best, elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(MODEL_PRESETS), help="comma-separated (default: all)")
    parser.add_argument("--batch", type=int, default=16, help="images per generate() call (default 16)")
    parser.add_argument("--seconds", type=float, default=4.0, help="minimum timing per measurement (default 4)")
    parser.add_argument("--repeats", type=int, default=2, help="fresh-process runs per latency, best taken (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the rates (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.presets.split(",") if n.strip()]
    for n in names:
        if n not in MODEL_PRESETS:
            raise SystemExit(f"unknown preset {n!r}; choose from {', '.join(MODEL_PRESETS)}")
    threads = torch.get_num_threads()
    from poseguide import hardware

    hw = hardware.detect("cpu")
    print(f"hardware: {hw.summary()}; {threads} threads, batch {args.batch}, >= {args.seconds:g} s per rate; "
          f"latency: best of {args.repeats} fresh processes; precision auto here: {hardware.choose_precision(hw).mixed_precision}")

    source_pose = standing_pose()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        tmp = Path(tmp)
        pose_file = tmp / "pose.json"
        lm.write_keypoints(pose_file, source_pose, SOURCE_SIZE)
        for name in names:
            model_dir = save_untrained(name, tmp)
            gen = Generator.load(model_dir)
            poses = np.repeat(gen.frame_pose(source_pose, SOURCE_SIZE)[None], args.batch, axis=0)
            gflops = flops_per_image(gen.model)["decode"] / 1e9
            fp32 = images_per_second(gen, poses, args.seconds)
            gen.precision = "bf16"
            bf16 = images_per_second(gen, poses, args.seconds)
            del gen
            api = time_process([sys.executable, "-c", FIRST_IMAGE_API, str(model_dir), str(pose_file)], args.repeats)
            cli = time_process(
                [sys.executable, "-m", "poseguide.cli", "generate", "--pose", str(pose_file), "--num", "1",
                 "--checkpoint", str(model_dir), "--out", str(tmp / f"out-{name}")],
                args.repeats,
            )
            size = preset(name).image_size
            params = count_parameters(PoseCVAE(preset(name))) / 1e6
            rows.append((name, f"{size}px", f"{params:.1f}M", f"{gflops:.2f}", f"{fp32:.1f}", f"{bf16:.1f}",
                         f"{bf16 / fp32:.2f}x", f"{api:.2f}", f"{cli:.2f}"))
            print(f"  {name}: done", file=sys.stderr, flush=True)

    header = ("preset", "size", "params", "GFLOP/img", "img/s fp32", "img/s bf16", "bf16/fp32", "first img API s", "first img CLI s")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


if __name__ == "__main__":
    main()
