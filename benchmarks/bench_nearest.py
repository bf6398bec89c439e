"""What the copying check (poseguide.nearest) adds to `poseguide evaluate`.

evaluate searches the train split (with mirror images) for the nearest training image of three
sets of N images in one pass: random samples, real held-out images, their reconstructions. This
times that search for 3 x N held-out images of a prepared dataset (median of --repeats runs,
after one warm-up) and, with --model, the drawing of the N random samples it is run on, with the
ratio of the two.
The hardware line comes first.

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
    queries = np.concatenate([queries] * 3)
    search = median_seconds(lambda: nearest_images(queries, images, rows, mirror=True), args.repeats)
    print(f"nearest training image of {len(queries)} images among {len(rows)} training images and their mirrors: "
          f"{search:.3f} s")
    if args.model:
        from poseguide.generate import Generator, resolve_model_dir

        generator = Generator.load(resolve_model_dir(args.model), device="cpu")
        num = len(queries) // 3
        draw = median_seconds(lambda: generator.generate(None, num=num, seed=0, batch_size=32), 1)
        print(f"drawing {num} random samples: {draw:.2f} s; the search costs {search / draw:.3f} x that")


if __name__ == "__main__":
    main()
