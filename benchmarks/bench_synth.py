"""Speed of `poseguide synth`: pictures per second, split into posing, drawing and writing.

Renders --num pictures of every pose family at --size into a temporary folder in one run
(the first chunk is a warm-up and is not timed), and prints the hardware line first and the
load average beside the figure: other processes on the machine slow it down.

    python benchmarks/bench_synth.py [--num 320] [--size 256]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from poseguide import hardware
from poseguide.synth import CHUNK, BodyModel, SynthSettings, synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=320)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    args = parser.parse_args()
    hw = hardware.detect("cpu")
    print(f"hardware: {hw.summary()}")
    start = time.perf_counter()
    body = BodyModel()
    print(f"anny model loaded in {time.perf_counter() - start:.1f} s ({len(body.faces)} triangles)")
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
            synthesize(tmp, SynthSettings(num=CHUNK, size=args.size), progress=False, body=body)  # warm-up
            load = os.getloadavg()
            # the timed part includes starting the worker processes and loading their models
            result = synthesize(tmp, SynthSettings(num=CHUNK + args.num, size=args.size), progress=False,
                                body=body, workers=workers)
        rate = result["rendered"] / result["seconds"]
        threads = torch.get_num_threads() if workers == 1 else 1
        print(f"{workers} process(es) x {threads} thread(s): {result['rendered']} renders at {args.size} px in "
              f"{result['seconds']:.1f} s: {rate:.1f} renders/s ({rate * 600:.0f} per 10 minutes); "
              f"load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
