"""What each sharpening loss adds to a training step's time, as a ratio to the plain step.

One run, in one process, on configs/small.yaml's model and loss (each recipe overrides its
sharpening terms; the first has none): a training step (forward,
loss, backward, Adam; and, with a discriminator, its own loss, backward and Adam, as
`poseguide.train` does) for each recipe below. Recipes alternate step by step over several
rounds and medians are compared, so a machine that gets busier slows all of them alike.

    python benchmarks/bench_losses.py [--batch 32] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from poseguide import hardware
from poseguide.config import load_config
from poseguide.losses import VAELoss
from poseguide.model import PoseCVAE

REPO = Path(__file__).resolve().parents[1]
NO_GAN = dict(adversarial_weight=0.0)
PIX2PIXHD = dict(adversarial_weight=0.5, adversarial_start_step=0, discriminator_scales=2, discriminator_layers=3,
                 discriminator_spectral_norm=True, feature_matching_weight=10.0, discriminator_channels=32)
RECIPES = {
    "no sharpening terms": NO_GAN,
    "+ focal frequency loss": dict(NO_GAN, frequency_weight=10.0),
    "+ light PatchGAN (configs/small.yaml: 1 scale, 32 ch, 2 layers, SN, FM)": {},
    "+ light PatchGAN with 3 layers (its stride-1 layer at 16x16)": dict(discriminator_layers=3),
    "+ 1-scale hinge PatchGAN (64 ch, 3 layers, batch norm)": dict(
        discriminator_channels=64, discriminator_layers=3, discriminator_spectral_norm=False, feature_matching_weight=0.0),
    "+ pix2pixHD GAN (2 scales, 32 ch, 3 layers, SN, FM)": PIX2PIXHD,
}


class Step:
    """One recipe's model, loss, optimisers and a fixed batch."""

    def __init__(self, config, overrides: dict, batch: int):
        torch.manual_seed(0)
        self.model = PoseCVAE(config.model).train()
        self.loss_fn = VAELoss(replace(config.loss, **overrides))
        self.disc = self.loss_fn.make_discriminator()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.disc_opt = torch.optim.AdamW(self.disc.parameters(), lr=1e-4) if self.disc is not None else None
        size = config.model.image_size
        gen = torch.Generator().manual_seed(0)
        self.image = torch.rand(batch, 3, size, size, generator=gen) * 2 - 1
        self.mask = (torch.rand(batch, 1, size, size, generator=gen) > 0.5).float()
        self.landmarks = torch.rand(batch, 33, 4, generator=gen)

    def __call__(self) -> float:
        start = time.perf_counter()
        out = self.model(self.image, self.mask, self.landmarks, cond_dropout=self.model.config.cond_dropout)
        if self.disc is not None:
            self.disc.requires_grad_(False)
        terms = self.loss_fn(self.image, self.mask, self.landmarks, out, step=10_000,
                             last_layer=self.model.decoder_last_layer(), discriminator=self.disc)
        terms["loss"].backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if self.disc is not None:
            self.disc.requires_grad_(True)
            self.loss_fn.discriminator_loss(self.disc, self.image, self.mask, out)["d_loss"].backward()
            self.disc_opt.step()
            self.disc_opt.zero_grad(set_to_none=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--config", default=str(REPO / "configs" / "small.yaml"))
    args = parser.parse_args()
    config = load_config(args.config, [])
    hw = hardware.detect("cpu")
    print(f"hardware: {hw.summary()}; {torch.get_num_threads()} threads, fp32, batch {args.batch}")
    steps = {name: Step(config, overrides, args.batch) for name, overrides in RECIPES.items()}
    for step in steps.values():  # warm-up
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name].append(step())
    base = statistics.median(times[next(iter(times))])
    print("| recipe | s/step (median) | x plain |")
    print("|---|---:|---:|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.2f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
