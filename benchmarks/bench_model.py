"""Model sizes: parameters, FLOPs per image, and forward+backward time per image by precision.

For each preset in poseguide.model.MODEL_PRESETS, in one run: parameter count, FLOPs of one
encode+decode and of a decode alone (torch's FlopCounterMode), and the time of a training
step's forward + backward (model and loss, no optimiser) per image on this machine in fp32,
fp32 + channels_last, bf16 autocast and bf16 + channels_last, with the ratios to fp32 and the
variant `precision: auto` picks here. The hardware line comes first: a figure means nothing
without its CPU class (bf16 is several times faster than fp32 with AMX, and several times
slower without it).

    python benchmarks/bench_model.py [--batch 16] [--repeats 3] [--sizes small base large]
    python benchmarks/bench_model.py --sizes small --heads nearest subpixel   # the two decoder heads
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/bench_model.py   # an AVX2 CPU
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch

from poseguide import hardware
from poseguide.losses import LossConfig, VAELoss
from poseguide.model import HEAD_UPSAMPLES, MODEL_PRESETS, ModelConfig, PoseCVAE, count_parameters, flops_per_image, preset

VARIANTS = {  # name: (autocast bf16, channels_last)
    "fp32": (False, False),
    "fp32+CL": (False, True),
    "bf16": (True, False),
    "bf16+CL": (True, True),
}


def step_seconds(model: PoseCVAE, loss_fn: VAELoss, batch: int, bf16: bool, channels_last: bool, repeats: int) -> float:
    """Median wall time of forward + backward over `repeats` steps, after one warm-up."""
    size = model.config.image_size
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    gen = torch.Generator().manual_seed(0)
    image = (torch.rand(batch, 3, size, size, generator=gen) * 2 - 1).contiguous(memory_format=fmt)
    mask = torch.rand(batch, 1, size, size, generator=gen).contiguous(memory_format=fmt)
    landmarks = torch.rand(batch, 33, 4, generator=gen)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(image, mask, landmarks, cond_dropout=model.config.cond_dropout)
        loss = loss_fn(image, mask, landmarks, out, step=10_000)["loss"]
        loss.backward()
        model.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", default=list(MODEL_PRESETS), choices=list(MODEL_PRESETS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--heads", nargs="+", default=[ModelConfig.head_upsample], choices=HEAD_UPSAMPLES,
                        help="decoder heads to time (model.head_upsample); default: %(default)s")
    args = parser.parse_args()
    hw = hardware.detect("cpu")
    choice = hardware.choose_precision(hw)
    auto = ("bf16" if choice.mixed_precision == "bf16" else "fp32") + ("+CL" if choice.channels_last else "")
    print(f"hardware: {hw.summary()}; {torch.get_num_threads()} threads, batch {args.batch}")
    print(f"precision auto here: {auto} ({choice.reason})")
    names = args.variants
    compared = [n for n in names if n != "fp32"]
    header = ["size", "head", "image", "params", "GFLOPs/img (enc+dec)", "GFLOPs/img (decode)",
              *(f"ms/img {n}" for n in names), *(f"{n} vs fp32" for n in compared)]
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    loss_fn = VAELoss(LossConfig())
    for name, head in itertools.product(args.sizes, args.heads):
        torch.manual_seed(0)
        model = PoseCVAE(preset(name, head_upsample=head))
        flops = flops_per_image(model)
        ms = {v: step_seconds(model, loss_fn, args.batch, *VARIANTS[v], repeats=args.repeats) / args.batch * 1e3 for v in names}
        base = ms.get("fp32")
        row = [name, head, f"{model.config.image_size} px", f"{count_parameters(model) / 1e6:.2f} M",
               f"{flops['forward'] / 1e9:.2f}", f"{flops['decode'] / 1e9:.2f}", *(f"{ms[n]:.0f}" for n in names),
               *(f"{base / ms[n]:.2f}x" if base else "-" for n in compared)]
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
