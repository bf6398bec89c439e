"""Model sizes: parameters, FLOPs per image, and CPU forward+backward time per image.

For each preset in poseguide.model.MODEL_PRESETS, in one run: parameter count, FLOPs of one
encode+decode and of a decode alone (torch's FlopCounterMode), and the time of a training
step's forward + backward (model and loss, no optimiser) per image on this CPU, in fp32 and
in bf16 autocast + channels_last, with their ratio.

    python benchmarks/bench_model.py [--batch 16] [--repeats 3] [--sizes small base large]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from poseguide.losses import LossConfig, VAELoss
from poseguide.model import MODEL_PRESETS, PoseCVAE, count_parameters, flops_per_image, preset


def step_seconds(model: PoseCVAE, loss_fn: VAELoss, batch: int, bf16: bool, repeats: int) -> float:
    """Median wall time of forward + backward over `repeats` steps, after one warm-up."""
    size = model.config.image_size
    fmt = torch.channels_last if bf16 else torch.contiguous_format
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
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print("| size | image | params | GFLOPs/img (enc+dec) | GFLOPs/img (decode) | fwd+bwd ms/img fp32 | fwd+bwd ms/img bf16+CL | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    loss_fn = VAELoss(LossConfig())
    for name in args.sizes:
        torch.manual_seed(0)
        model = PoseCVAE(preset(name))
        flops = flops_per_image(model)
        fp32 = step_seconds(model, loss_fn, args.batch, bf16=False, repeats=args.repeats) / args.batch
        bf16 = step_seconds(model, loss_fn, args.batch, bf16=True, repeats=args.repeats) / args.batch
        print(
            f"| {name} | {model.config.image_size} px | {count_parameters(model) / 1e6:.2f} M "
            f"| {flops['forward'] / 1e9:.2f} | {flops['decode'] / 1e9:.2f} "
            f"| {fp32 * 1e3:.0f} | {bf16 * 1e3:.0f} | {fp32 / bf16:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
