"""Training throughput: does data loading ever hold training back?

Measured in one run, with the real trainer (`poseguide.train.Trainer`, the same Accelerate
setup, model, loss, optimiser and EMA that `accelerate launch scripts/train.py` uses):

  (a) model-only: train steps on batches already in memory (on the device, as the DataLoader
      delivers them), so no data loading at all;
  (b) end to end: train steps fed by the real DataLoader over the prepared dataset
      (memory maps, flips, workers as configured).

(a) and (b) alternate step by step, over several rounds whose medians are compared, so a busy
machine slows both alike. Target: (b)/(a) >= 0.9. (b) is the images/s of the config itself.
`--precision` also times fp32 / bf16 / bf16 + channels_last in fresh processes, which is how
the CPU config's mixed precision was chosen.

    python benchmarks/bench_train.py                          # configs/small.yaml
    python benchmarks/bench_train.py --config configs/small.yaml --precision
    python benchmarks/bench_train.py data.num_workers=1       # any config override
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import cycle
from pathlib import Path

import torch

from poseguide.config import load_config
from poseguide.model import count_parameters, flops_per_image
from poseguide.train import Plan, Trainer

REPO = Path(__file__).resolve().parents[1]


def measure(config_path: str, overrides: list[str], steps: int, rounds: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(config_path, [*overrides, f"training.output_dir={tmp}/run", "logging.report_to=none"])
        trainer = Trainer(Plan(config=config, run_dir=Path(tmp) / "run", resume=None, export_only=False))
        acc = trainer.accelerator
        t = config.training
        images_per_batch = t.batch_size * acc.num_processes
        epoch = 0

        def batches():
            nonlocal epoch
            while True:
                trainer.loader.set_epoch(epoch)
                trainer.sampler.set_epoch(epoch)
                yield from trainer.loader
                epoch += 1

        stream = batches()

        window = trainer.new_window()

        def step(source) -> float:
            """One optimiser step (all its micro-batches) from `source`; returns seconds."""
            nonlocal window
            start = time.perf_counter()
            while True:
                trainer.train_step(next(source), window)
                if acc.sync_gradients:
                    trainer.after_sync()
                    window = trainer.new_window()
                    return time.perf_counter() - start

        for _ in range(warmup):  # first steps allocate memory and pick kernels
            step(stream)
        cached = [next(stream) for _ in range(min(8, len(trainer.loader)))]
        memory = cycle(cached)
        # (a) and (b) alternate step by step, so load from other programs hits both alike.
        images_per_step = images_per_batch * t.gradient_accumulation_steps
        model_only, end_to_end = [], []
        for _ in range(rounds):
            times_a, times_b = [], []
            for _ in range(steps):
                times_a.append(step(memory))
                times_b.append(step(stream))
            model_only.append(steps * images_per_step / sum(times_a))
            end_to_end.append(steps * images_per_step / sum(times_b))

        # The data path alone, for diagnosis.
        start = time.perf_counter()
        n = 0
        for _ in range(steps * 4):
            next(stream)
            n += images_per_batch
        loading = n / (time.perf_counter() - start)

        return {
            "config": config_path,
            "overrides": overrides,
            "image_size": config.model.image_size,
            "batch_size": t.batch_size,
            "mixed_precision": t.mixed_precision,
            "channels_last": t.channels_last,
            "num_workers": config.data.num_workers,
            "params": count_parameters(trainer.net),
            "threads": torch.get_num_threads(),
            "train_samples": len(trainer.train_set),
            "hardware": trainer.hardware.summary(),
            "gflops_per_image": flops_per_image(trainer.net)["forward"] / 1e9,
            "model_only": statistics.median(model_only),
            "end_to_end": statistics.median(end_to_end),
            "rounds_model_only": model_only,
            "rounds_end_to_end": end_to_end,
            "loading_only": loading,
        }


def report(r: dict) -> None:
    print(f"hardware: {r['hardware']}")
    print(
        f"config {r['config']} {' '.join(r['overrides'])}: {r['image_size']} px, batch {r['batch_size']}, "
        f"{r['mixed_precision']}{' + channels_last' if r['channels_last'] else ''}, num_workers {r['num_workers']}, "
        f"{r['params'] / 1e6:.2f}M params, {r['threads']} threads, {r['train_samples']} train samples"
    )
    print(f"  (a) model-only train steps, batches in memory : {r['model_only']:8.1f} images/s   rounds {_fmt(r['rounds_model_only'])}")
    print(f"  (b) end to end from the prepared dataset      : {r['end_to_end']:8.1f} images/s   rounds {_fmt(r['rounds_end_to_end'])}")
    ratio = r["end_to_end"] / r["model_only"]
    print(f"  (b)/(a) = {ratio:.3f}  (target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})")
    print(f"  data loading alone (no training)              : {r['loading_only']:8.0f} images/s")
    # A training step costs about 3 forward passes (forward, then backward through activations and weights).
    achieved = r["end_to_end"] * 3 * r["gflops_per_image"] * 1e9
    peak = r.get("peak_tflops")
    mfu = f", MFU {achieved / (peak * 1e12):.1%} of {peak:g} TFLOP/s" if peak else " (give --peak-tflops for MFU)"
    print(f"  model FLOPs achieved end to end               : {achieved / 1e12:8.3f} TFLOP/s{mfu}")


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in values) + "]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "small.yaml"))
    parser.add_argument("--steps", type=int, default=8, help="steps of (a) and of (b) per round, alternating")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", action="store_true", help="also compare fp32 / bf16 / bf16+channels_last")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense peak, for MFU (H100/H200 bf16: 989)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one result as JSON (used by --precision)
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args()

    if args.json:
        print(json.dumps(measure(args.config, args.overrides, args.steps, args.rounds, args.warmup)))
        return 0
    result = measure(args.config, args.overrides, args.steps, args.rounds, args.warmup)
    result["peak_tflops"] = args.peak_tflops
    report(result)
    if args.precision:
        # Each variant in a fresh process: Accelerate's mixed-precision state is per process.
        variants = {
            "fp32": ["training.mixed_precision=no", "training.channels_last=false"],
            "bf16": ["training.mixed_precision=bf16", "training.channels_last=false"],
            "bf16 + channels_last": ["training.mixed_precision=bf16", "training.channels_last=true"],
        }
        speeds = {}
        for name, extra in variants.items():
            cmd = [sys.executable, __file__, "--json", "--config", args.config, "--steps", str(args.steps),
                   "--rounds", "1", "--warmup", str(args.warmup), *args.overrides, *extra]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            speeds[name] = json.loads(out.strip().splitlines()[-1])["end_to_end"]
        print("end to end by precision (same config otherwise):")
        for name, speed in speeds.items():
            print(f"  {name:22s} {speed:8.1f} images/s   x{speed / speeds['fp32']:.2f} vs fp32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
