"""Training recipes judged over several seeds: posed PCK and detail, mean and range.

One training seed of the main job can land far from another (the PatchGAN's doing: without it
the seeds agree), so a recipe is only better if it is better over seeds. Each recipe fine-tunes
configs/small.yaml for a fixed number of steps (no time budget: the result does not depend on
how busy the machine is) once per seed, then scores its exported model the way
`poseguide evaluate` scores posed samples: held-out poses drawn at the default temperature,
MediaPipe re-detection (PCK@0.1 over the ceiling of the real images), and the detail of the
person, the face and the hands at half resolution against the real crops. Finished runs are
reused and an interrupted one resumes from its last checkpoint, so a stopped benchmark picks up
where it was. Each seed's scores are printed as it finishes, then each recipe's mean and range.

    python benchmarks/bench_recipes.py --data data/vtest-128 --out runs/recipes --steps 120 --seeds 0 1 2 \\
        --recipe "main job:" --recipe "no PatchGAN:loss.adversarial_weight=0"
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from poseguide import evaluate as ev
from poseguide import hardware
from poseguide.model import ModelLoadError
from poseguide.report import ratio

REPO = Path(__file__).resolve().parents[1]


def train(run: Path, data: str, steps: int, seed: int, overrides: list[str]) -> None:
    """One run, unless a finished one of the same command is there already."""
    cmd = [sys.executable, "-m", "poseguide.cli", "train", "--config", str(REPO / "configs" / "small.yaml"),
           "--resume", "latest", "training.max_minutes=null", f"training.max_steps={steps}", f"training.seed={seed}",
           "logging.report_to=none", f"training.output_dir={run}", f"data.dataset={data}", *overrides]
    recipe = run / "recipe.txt"  # the command a finished run was trained with
    if (run / "model" / "model.safetensors").is_file() and recipe.is_file():
        if recipe.read_text() != " ".join(cmd[3:]):
            sys.exit(f"error: {run} was trained with another recipe ({recipe}); remove it or pick another --out")
        return
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"error: training {run} failed:\n{proc.stderr[-2000:]}")
    recipe.write_text(" ".join(cmd[3:]))


class HeldOut:
    """The held-out crops `poseguide evaluate --num NUM` picks, and their ceiling (MediaPipe on
    the real images), computed once for every run of the benchmark."""

    def __init__(self, data: str, image_size: int, settings: ev.EvalSettings, estimator):
        info, _, self.images, self.masks, self.poses = ev.load_split(data, image_size, settings)
        self.background = tuple(int(c) for c in info.background)
        self.ceiling = ev.pck_entry(ev.detect_poses(self.images, estimator, settings, "real"), self.poses, settings)["pck@0.1"]


COLUMNS = ("PCK/ceiling", "person detail", "face detail", "hand detail")


def score(run: Path, data: str, settings: ev.EvalSettings, estimator, held_out: dict[int, HeldOut]) -> tuple[float, ...]:
    """PCK@0.1 / ceiling, then the detail / real at half resolution of the person, the face and
    the hands, of posed samples, as `poseguide evaluate --num NUM` reports them
    (pose.ratio_to_ceiling, sharpness.{person,face,hand}_coarse)."""
    generator = ev.load_generator(ev.resolve_model_dir(run), "auto")
    model = generator.model
    size = model.config.image_size
    if size not in held_out:
        held_out[size] = HeldOut(data, size, settings, estimator)
    real = held_out[size]
    z = model.sample_latent(len(real.poses), torch.Generator().manual_seed(settings.seed), settings.temperature).cpu()
    posed, alpha = ev.generate_batched(generator, z, real.poses, real.background, settings, "posed")
    pck = ev.pck_entry(ev.detect_poses(posed, estimator, settings, "posed"), real.poses, settings)["pck@0.1"]
    sharpness = ev.sharpness_scores((real.images, real.masks, real.poses), {"posed": (posed, alpha, real.poses)})
    return (ratio(pck, real.ceiling), *(sharpness[f"{region}_coarse"]["posed_ratio"] for region in ("person", "face", "hand")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a prepared dataset with a val split")
    parser.add_argument("--out", default="runs/recipes", help="where each recipe's runs go")
    parser.add_argument("--steps", type=int, default=120, help="training steps per run (120: the AVX2 budget)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num", type=int, default=200, help="held-out crops to score")
    parser.add_argument("--recipe", action="append", required=True,
                        help='"NAME:key=value,key=value" (config overrides; "NAME:" is configs/small.yaml as it is)')
    args = parser.parse_args()
    recipes = {}
    for text in args.recipe:
        name, _, overrides = text.partition(":")
        recipes[name] = [o for o in overrides.split(",") if o]

    from poseguide.extract import PoseEstimator

    hw = hardware.detect("cpu")
    precision = hardware.choose_precision(hw).mixed_precision
    print(f"hardware: {hw.summary()}; training precision {precision} (chosen by the hardware, as the main job)", flush=True)
    print(f"{args.steps} steps per run, seeds {args.seeds}, {args.num} held-out crops of {args.data}")
    print(f"{'recipe':32s}" + "".join(f"{name + ': mean (range)':>28s}" for name in COLUMNS)
          + "   (detail: posed / real at half resolution)")
    settings = ev.EvalSettings(num=args.num, progress=False)
    held_out: dict[int, HeldOut] = {}
    with PoseEstimator() as estimator:
        for name, overrides in recipes.items():
            results = []
            for seed in args.seeds:
                slug = "".join(c if c.isalnum() else "-" for c in name).strip("-") or "recipe"
                run = Path(args.out) / f"{slug}-s{seed}"
                train(run, args.data, args.steps, seed, overrides)
                try:
                    results.append(score(run, args.data, settings, estimator, held_out))
                except (ev.EvaluationError, ModelLoadError) as err:
                    sys.exit(f"error: {err}")
                print(f"  seed {seed}: " + ", ".join(f"{v:.3f}" for v in results[-1]) + f"  ({run})", flush=True)
            columns = zip(*results)
            print(f"{name:32s}" + "".join(f"{statistics.mean(c):14.3f} ({min(c):.3f}-{max(c):.3f})" for c in columns),
                  flush=True)


if __name__ == "__main__":
    main()
