"""What the copying check (poseguide.nearest) adds to `poseguide evaluate`.

evaluate searches the train split (with mirror images) for the nearest training image of four
sets in one pass: N random samples, N real held-out images, their N reconstructions and 32
redrawn training images. This times that search for as many held-out images of a prepared
dataset (median of --repeats runs, after one warm-up) and, with --model, the redrawing of the
training images that set the copying scale and the drawing of the N random samples it is all
run on, with the ratio. The hardware line comes first.

    python benchmarks/bench_nearest.py [--data data/vtest-128] [--num 200] [--model runs/small]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from poseguide import hardware
from poseguide.dataset import validate_dataset
from poseguide.datasetdir import IMAGES
from poseguide.evaluate import COPY_SCALE_IMAGES, EvalSettings, redraw_training_images
from poseguide.generate import Generator, resolve_model_dir
from poseguide.nearest import nearest_images


def median_seconds(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/vtest-128")
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=None, help="a model dir or run: also time drawing --num random samples")
    args = parser.parse_args()

    print(f"hardware: {hardware.detect('cpu').summary()}; {torch.get_num_threads()} threads")
    info = validate_dataset(args.data)
    images = np.load(info.root / IMAGES, mmap_mode="r")
    queries = np.asarray(images[np.sort(info.val_indices)[: args.num]])
    rows = info.train_indices
    num = len(queries)
    queries = np.concatenate([queries] * 3 + [queries[:COPY_SCALE_IMAGES]])
    search = median_seconds(lambda: nearest_images(queries, images, rows, mirror=True), args.repeats)
    print(f"nearest training image of {len(queries)} images among {len(rows)} training images and their mirrors: "
          f"{search:.3f} s")
    if args.model:
        generator = Generator.load(resolve_model_dir(args.model), device="cpu")
        draw = median_seconds(lambda: generator.generate(None, num=num, seed=0, batch_size=32), args.repeats)
        settings = EvalSettings(progress=False)
        background = tuple(int(c) for c in info.background)
        redraw = median_seconds(lambda: redraw_training_images(generator.model, info, background, settings),
                                args.repeats)
        print(f"drawing {num} random samples: {draw:.2f} s; redrawing {COPY_SCALE_IMAGES} training images: "
              f"{redraw:.2f} s; search + redrawing cost {(search + redraw) / draw:.3f} x the drawing")


if __name__ == "__main__":
    main()
