#!/usr/bin/env python
"""Two or more models drawing the same held-out poses from the same seed, one sheet.

    python scripts/before_after.py data/vtest-128 runs/before runs/after --labels before after \
        --out docs/results/before-after.png

Top: the real held-out people, then one row per model drawing their poses; below: the face and
hand crops of each, at the same scale, pixel for pixel. The held-out samples and the latents are
chosen as `poseguide evaluate` chooses them (same --num, --seed and --temperature give the same
people and the same noise), so a change of recipe is the only difference between rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from poseguide.evaluate import (  # noqa: E402
    EvalSettings, EvaluationError, crops_sheet, generate_batched, load_generator, load_split, resolve_model_dir,
)
from poseguide.visualize import make_grid, save_png  # noqa: E402


def draw(model_path: str, data: str, settings: EvalSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(real images, this model's posed samples, poses) for the chosen held-out people."""
    generator = load_generator(resolve_model_dir(model_path), settings.precision)
    model = generator.model
    info, _, images, _, poses = load_split(data, model.config.image_size, settings)
    gen = torch.Generator().manual_seed(settings.seed)
    z = model.sample_latent(len(images), gen, settings.temperature).cpu()
    posed, _ = generate_batched(generator, z, poses, tuple(int(c) for c in info.background), settings, model_path)
    return images, posed, poses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a prepared dataset (its held-out split is drawn)")
    parser.add_argument("models", nargs="+", help="model or run directories, in row order")
    parser.add_argument("--labels", nargs="+", help="one caption per model (default: the paths)")
    parser.add_argument("--out", default="before-after.png")
    parser.add_argument("--num", type=int, default=120, help="held-out samples to choose from, as evaluate --num")
    parser.add_argument("--columns", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=EvalSettings.temperature)
    args = parser.parse_args()
    labels = args.labels or args.models
    if len(labels) != len(args.models):
        print(f"error: {len(args.models)} models but {len(labels)} labels", file=sys.stderr)
        return 2
    try:
        settings = EvalSettings(num=args.num, seed=args.seed, temperature=args.temperature, progress=False)
        drawn = [draw(path, args.data, settings) for path in args.models]
    except EvaluationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    images, _, poses = drawn[0]
    cols = min(args.columns, len(images))
    tiles = list(images[:cols])
    captions = ["real"] * cols
    for label, (_, posed, _) in zip(labels, drawn):
        tiles += list(posed[:cols])
        captions += [label] * cols
    people = make_grid(tiles, ncol=cols, captions=captions)
    crops = crops_sheet(images, {label: posed for label, (_, posed, _) in zip(labels, drawn)}, poses, cols,
                        tile=images.shape[1])
    width = max(people.shape[1], crops.shape[1])
    pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)), constant_values=255)  # noqa: E731
    out = save_png(np.concatenate([pad(people), pad(crops)]), args.out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
