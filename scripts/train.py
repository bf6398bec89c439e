#!/usr/bin/env python
"""Train poseguide: `accelerate launch scripts/train.py --config configs/small.yaml [section.key=value ...]`.

A thin entry over `poseguide train` (same arguments, same code): Accelerate's launcher picks
the processes, devices and machines, so one script serves a laptop CPU, one GPU or many.
The launcher reports a failed run with its own traceback after our one-line error (`-q`
hides it for one process, and exits 1); for one process, `poseguide train` exits with our code.
"""

import sys

from poseguide.cli import build_parser, run

if __name__ == "__main__":
    sys.exit(run(["train", *sys.argv[1:]], build_parser()))
