"""How long the studio takes to redraw the person for one step of a joint drag, on this CPU.

    python benchmarks/bench_studio.py [--checkpoint MODEL_DIR] [--steps 60]

Without --checkpoint it builds an untrained `small` model (speed does not depend on the
weights). The drag moves the left wrist of the "T-pose" preset along a circle, one new pose
per step, as the canvas sends them. Timed, the model already loaded and warmed up:
  * redraw: `Studio.redraw`, the decoder in one pose plus compositing on the background;
  * answer: `Studio.canvas_value`, what the page waits for: redraw plus the PNG data URL.
The browser's round trip (a local HTTP request and the canvas drawing) is not included.
Target: redraw <= 0.2 s per image on 2 cores for the small model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from poseguide import framing, hardware, landmarks as lm  # noqa: E402
from poseguide.generate import Generator  # noqa: E402
from poseguide.model import PoseCVAE, preset  # noqa: E402
from poseguide.studio import Studio  # noqa: E402


def untrained_small(directory: Path) -> Path:
    torch.manual_seed(0)
    model = PoseCVAE(preset("small")).eval()
    extra = {"framing": framing.FramingSettings().to_dict(), "data": {"image_size": 128, "background": [128, 128, 128]}}
    return model.save_pretrained(directory / "small", extra_config=extra)


def drag_poses(start: np.ndarray, steps: int) -> np.ndarray:
    """The left wrist moved around a circle of radius 0.1 (crop units), one pose per step."""
    wrist = lm.INDEX["left_wrist"]
    poses = np.repeat(start[None], steps, axis=0)
    angle = np.linspace(0, 2 * np.pi, steps, endpoint=False)
    poses[:, wrist, 0] += 0.1 * np.cos(angle)
    poses[:, wrist, 1] += 0.1 * np.sin(angle)
    return poses


def timings(fn, poses: np.ndarray) -> tuple[np.ndarray, float]:
    """Wall-clock ms of each call, and the process's CPU ms per call (all threads): on a
    shared machine the CPU time shows the work when the wall clock also counts waiting."""
    out = []
    cpu = time.process_time()
    for pose in poses:
        start = time.perf_counter()
        fn(pose)
        out.append(time.perf_counter() - start)
    return np.asarray(out) * 1000.0, (time.process_time() - cpu) * 1000.0 / len(poses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model dir (default: an untrained small model)")
    parser.add_argument("--steps", type=int, default=60, help="drag steps timed per measurement (default 60)")
    args = parser.parse_args()

    hw = hardware.detect("cpu")
    print(f"hardware: {hw.summary()}; {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.checkpoint or untrained_small(Path(tmp))
        gen = Generator.load(model_dir, "cpu", "auto")
        studio = Studio(gen, Path(tmp))
        print(f"model: {model_dir} ({gen.image_size} px, precision {gen.precision})")
        start = studio.preset("T-pose")
        z = studio.look(0, 0.7)
        poses = drag_poses(start, args.steps)
        for pose in poses[:5]:  # warm-up: allocations, oneDNN kernels
            studio.canvas_value(pose, z)
        redraw = timings(lambda pose: studio.redraw(pose, z), poses)
        answer = timings(lambda pose: studio.canvas_value(None, z, drawn_pose=pose), poses)
    for name, (ms, cpu) in (("redraw", redraw), ("answer (redraw + PNG data URL)", answer)):
        print(f"{name:32s} median {np.median(ms):6.1f} ms  p90 {np.percentile(ms, 90):6.1f} ms  "
              f"-> {1000.0 / np.median(ms):5.1f} images/s over {len(ms)} drag steps; CPU {cpu:6.1f} ms per image")
    median = float(np.median(redraw[0]))
    print(f"target redraw <= 200 ms per image: {'met' if median <= 200 else 'NOT met'} ({200.0 / median:.1f}x headroom)")


if __name__ == "__main__":
    main()
