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
    args = parser.parse_args()
    hw = hardware.detect("cpu")
    print(f"hardware: {hw.summary()}; {torch.get_num_threads()} threads")
    start = time.perf_counter()
    body = BodyModel()
    print(f"anny model loaded in {time.perf_counter() - start:.1f} s ({len(body.faces)} triangles)")
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        synthesize(tmp, SynthSettings(num=CHUNK, size=args.size), progress=False, body=body)  # warm-up
        load = os.getloadavg()
        result = synthesize(tmp, SynthSettings(num=CHUNK + args.num, size=args.size), progress=False, body=body)
    rate = result["rendered"] / result["seconds"]
    print(f"{result['rendered']} renders at {args.size} px in {result['seconds']:.1f} s: {rate:.1f} renders/s "
          f"({rate * 600:.0f} per 10 minutes); load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
