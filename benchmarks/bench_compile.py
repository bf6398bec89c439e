"""torch.compile against eager, compile time included: does it shorten the main job?

In one run, with the real trainer (`poseguide.train.Trainer`, the config's own precision
choice): eager train steps, then `training.compile=true` train steps, timing the compiling
first steps apart from the steady ones. Then the same for generation (the decoder drawing a
batch of posed samples). The verdict is the number of training steps each mode completes in
the main job's budget (`training.max_minutes` of the config), compile time paid first.

    python benchmarks/bench_compile.py [--steps 6] [--budget-minutes 12] [section.key=value ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from poseguide import hardware
from poseguide.config import load_config
from poseguide.dataset import to_model_inputs
from poseguide.train import Plan, Trainer

REPO = Path(__file__).resolve().parents[1]


def train_times(config_path: str, overrides: list[str], compile_model: bool, steps: int) -> tuple[float, float]:
    """(seconds of the first step, median seconds of the next `steps`) for one trainer."""
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(config_path, [*overrides, f"training.output_dir={tmp}/run", "logging.report_to=none",
                                           f"training.compile={str(compile_model).lower()}"])
        trainer = Trainer(Plan(config=config, run_dir=Path(tmp) / "run", resume=None, export_only=False))
        batches = iter(trainer.loader)
        window = trainer.new_window()
        times = []
        for _ in range(steps + 1):
            start = time.perf_counter()
            trainer.train_step(next(batches), window)
            trainer.after_sync()
            times.append(time.perf_counter() - start)
        return times[0], statistics.median(times[1:])


def generate_times(config_path: str, overrides: list[str], steps: int) -> dict[str, tuple[float, float]]:
    """Decoder-only drawing of a batch, eager and compiled: (first call, median of the rest)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(config_path, [*overrides, f"training.output_dir={tmp}/run", "logging.report_to=none"])
        trainer = Trainer(Plan(config=config, run_dir=Path(tmp) / "run", resume=None, export_only=False))
        net = trainer.net.eval()
        batch = next(iter(trainer.loader))
        _, _, landmarks = to_model_inputs(batch, trainer.device, config.training.channels_last)
        z = torch.randn(landmarks.shape[0], net.latent_dim)
        out = {}
        for name, decode in (("eager", net.decode), ("compiled", torch.compile(net.decode))):
            times = []
            with torch.no_grad(), trainer.accelerator.autocast():
                for _ in range(steps + 1):
                    start = time.perf_counter()
                    decode(z, landmarks)
                    times.append(time.perf_counter() - start)
            out[name] = (times[0], statistics.median(times[1:]))
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "small.yaml"))
    parser.add_argument("--steps", type=int, default=6, help="steady steps timed after the first (default 6)")
    parser.add_argument("--budget-minutes", type=float, default=None, help="default: the config's training.max_minutes")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args()
    budget = args.budget_minutes or load_config(args.config).training.max_minutes or 12.0
    hw = hardware.detect()
    print(f"hardware: {hw.summary()}; {torch.get_num_threads()} threads; config {args.config} {' '.join(args.overrides)}")

    eager_first, eager = train_times(args.config, args.overrides, False, args.steps)
    compiled_first, compiled = train_times(args.config, args.overrides, True, args.steps)
    compile_cost = compiled_first - compiled
    print(f"train step, eager    : first {eager_first:6.2f} s, then {eager:6.3f} s/step")
    print(f"train step, compiled : first {compiled_first:6.2f} s (compiling), then {compiled:6.3f} s/step "
          f"({eager / compiled:.2f}x eager)")
    seconds = budget * 60
    eager_steps = seconds / eager
    compiled_steps = max(0.0, seconds - compile_cost) / compiled
    print(f"in a {budget:g}-minute budget: eager {eager_steps:.0f} steps, compiled {compiled_steps:.0f} steps "
          f"(x{compiled_steps / eager_steps:.2f}); compile pays off after {compile_cost / max(eager - compiled, 1e-9):.0f} steps"
          if compiled < eager else f"in a {budget:g}-minute budget: eager {eager_steps:.0f} steps, compiled {compiled_steps:.0f} "
          f"steps (x{compiled_steps / eager_steps:.2f}); compiled steps are not faster")

    gen = generate_times(args.config, args.overrides, args.steps)
    (_, e), (c_first, c) = gen["eager"], gen["compiled"]
    print(f"generate (decode a batch): eager {e * 1e3:.0f} ms, compiled {c * 1e3:.0f} ms ({e / c:.2f}x), "
          f"compiling took {c_first - c:.1f} s = {(c_first - c) / max(e - c, 1e-9):.0f} batches' saving"
          if c < e else f"generate (decode a batch): eager {e * 1e3:.0f} ms, compiled {c * 1e3:.0f} ms ({e / c:.2f}x): no gain")
    return 0


if __name__ == "__main__":
    sys.exit(main())
