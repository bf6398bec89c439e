"""The training loop: Accelerate, mixed precision, EMA, W&B/TensorBoard, exact resume.

`accelerate launch scripts/train.py --config configs/small.yaml [section.key=value ...]` and
`poseguide train ...` both end up in `run()`. The loop follows huggingface/diffusers'
training examples (train_text_to_image.py): `accelerator.accumulate`, clipping only on sync
steps, `save_state` into `checkpoint-<step>` directories with a total limit, `--resume latest`.
On top of that:

- Exact resume. The data order is a pure function of (seed, epoch) (`dataset.EpochSampler`),
  the position in the epoch is skipped with `skip_first_batches`, and Accelerate restores the
  model, optimisers, scheduler, RNG states and the registered EMA and step counter. Nothing
  outside training draws from the global RNG: validation and sample grids run under
  `torch.random.fork_rng`, and DataLoader workers take their seed from their own generator.
  A resumed run therefore takes exactly the steps an uninterrupted one would.
- Checkpoints are written to `.checkpoint-<step>.tmp` and renamed when every process is done,
  so a crash mid-save, or a full disk, never leaves a broken "latest" checkpoint.
- SIGINT/SIGTERM (Ctrl-C) finish the current step, save a checkpoint and exit 130. A NaN or
  inf loss (or gradient norm) stops the run before the optimiser step, saves nothing, and
  names the last good checkpoint. Both decisions are all-reduced, so every process stops at
  the same step.
- Only the main process logs, validates, draws samples and exports; every process takes part
  in `save_state` (each saves its own RNG state).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader

from poseguide import atomicfile, hardware, visualize
from poseguide.config import Config, ConfigError, diff_configs, load_config, read_yaml, save_config
from poseguide.dataset import (
    DatasetError,
    DatasetInfo,
    EpochSampler,
    MixedPoseDataset,
    PoseDataset,
    collate_batch,
    steps_per_epoch,
    to_model_inputs,
    validate_dataset,
)
from poseguide.losses import VAELoss, elbo_bits_per_dim
from poseguide.model import DEFAULT_TEMPERATURE, ModelLoadError, POSE_PRIOR_DIR, POSE_PRIOR_NAME, PoseCVAE, architecture_differences
from poseguide.modelcard import write_model_card
from poseguide.rundir import (
    CHECKPOINT_MARKER, CHECKPOINT_PREFIX, CHECKPOINTS_DIR, CONFIG_FILE, METRICS_FILE, MODEL_DIR, checkpoint_dir, list_checkpoints, rng_state_file,
    sample_grid_path,
)

WANDB_ID_FILE = "wandb-run-id"
# Config keys a resumed run may change without breaking the exact continuation.
RESUME_SAFE_KEYS = (
    "training.max_steps", "training.max_minutes", "training.checkpointing_steps", "training.checkpoints_total_limit",
    "training.output_dir",  # a run directory may be moved or copied
)
GRID_ROWS = ("input", "reconstruction", "pose", "posed sample z1", "posed sample z2", "unconditional")


class TrainingError(ValueError):
    """A problem the user can fix (arguments, a run directory, a checkpoint): one line."""


class NonFiniteLoss(RuntimeError):
    """The loss (or gradient norm) became NaN or inf."""


# --- small pieces ------------------------------------------------------------------------------


def lr_factor(
    step: int, warmup: int, total: int, schedule: str, power: float = 1.0, end_factor: float = 0.0
) -> float:
    """Multiplier of the base learning rate for optimiser step `step` (0-based).

    Linear warm-up from 1/warmup to 1 over `warmup` steps (no wasted step at lr 0), then
    `polynomial`: end + (1 - end) * (1 - progress) ** power (power 1 is linear decay), or
    `cosine`: end + (1 - end) * (1 + cos(pi * progress)) / 2, or `constant`; progress runs
    from 0 after warm-up to 1 at `total`. The same shapes as diffusers' get_scheduler.
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "cosine":
        return end_factor + (1.0 - end_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "polynomial":
        return end_factor + (1.0 - end_factor) * (1.0 - progress) ** power
    raise ValueError(f"unknown lr_scheduler {schedule!r}")


def make_scheduler(optimizer: torch.optim.Optimizer, config: Config, num_processes: int) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR over `lr_factor`. Accelerate steps a prepared scheduler once per process per
    optimiser step (diffusers multiplies its step counts by num_processes for the same reason),
    so the scheduler's step count is divided back into optimiser steps here."""
    t = config.training
    end = t.lr_end / t.learning_rate

    def factor(scheduler_step: int) -> float:
        return lr_factor(scheduler_step // num_processes, t.lr_warmup_steps, t.max_steps, t.lr_scheduler, t.lr_power, end)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def ema_multi_avg_fn(max_decay: float):
    """AveragedModel's multi_avg_fn for an EMA with warm-up: decay_n = min(max_decay, (1+n)/(10+n)),
    so early averages are not dominated by the random initial weights (as in diffusers' EMAModel)."""

    @torch.no_grad()
    def update(ema_params, params, num_averaged):
        n = int(num_averaged)
        decay = min(max_decay, (1 + n) / (10 + n))
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)

    return update


@dataclass
class RunState:
    """Counters saved in every checkpoint (registered with Accelerate beside the EMA). The
    layout (processes, batches per process) tells whether a resume can be exact."""

    global_step: int = 0
    num_processes: int = 1
    batches_per_epoch: int = 0
    budget_steps: int = 0  # max_steps fixed by training.max_minutes (0: not fixed yet, or no budget)

    def state_dict(self) -> dict:
        return {
            "global_step": self.global_step, "num_processes": self.num_processes,
            "batches_per_epoch": self.batches_per_epoch, "budget_steps": self.budget_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.global_step = int(state["global_step"])
        self.num_processes = int(state.get("num_processes", self.num_processes))
        self.batches_per_epoch = int(state.get("batches_per_epoch", self.batches_per_epoch))
        self.budget_steps = int(state.get("budget_steps", 0))


class TimeBudget:
    """Fits max_steps to training.max_minutes from the measured speed of the first steps.

    The steps timed all lie in the learning-rate warm-up (when it is long enough), whose rates do
    not depend on max_steps, so a budgeted run equals an unbudgeted run of the chosen length,
    unless the machine's speed changes later: the pace is checked again every RECHECK steps and
    max_steps lowered when the rest no longer fits, or raised (up to training.max_steps) when the
    first steps were slow (another job finishing); the schedule then decays faster or slower.
    Validation, sample grids and the export are estimated from the step time: a forward pass is
    taken as a third of a training step, the prior fits run only the encoder (half of that).
    """

    SKIP = 2  # the first steps allocate memory and pick kernels
    RECHECK = 25  # steps between checks of the pace once planned
    # The plan ends at 90% of the budget: on a 2-core AVX2 CPU the later steps of the main job
    # ran 15% slower than the first ones timed (other load, memory growth), and a budget is a promise.
    MARGIN = 0.9

    def __init__(self, config: Config, seconds: float, started: float, num_train: int, num_val: int):
        t = config.training
        self.config = config
        self.seconds = seconds
        self.started = started
        self.measure = min(10, max(3, t.lr_warmup_steps - self.SKIP))  # steps timed
        self.times: list[float] = []
        self.seen = 0
        self.planned = False
        self.pace = 0.0  # median seconds per step of the last steps timed
        self.num_train, self.num_val = num_train, num_val
        self.ceiling = t.max_steps  # the trainer lowers config's max_steps to the plan; never go past this

    def observe(self, step: int, seconds: float) -> int | None:
        """Record that optimiser step `step` took `seconds`; once enough steps are timed,
        return the max_steps that fits the budget; after that, every RECHECK steps, the max_steps
        that still fits at the pace of those steps (a shared machine slows down mid-run)."""
        self.seen += 1
        if self.seen <= self.SKIP:
            return None
        self.times.append(seconds)
        if len(self.times) < self.measure or (self.planned and len(self.times) < self.RECHECK):
            return None
        pace = float(np.median(self.times))
        self.pace, self.times, self.planned = pace, [], True
        return self.fit_steps(pace, step, time.perf_counter() - self.started)

    def overhead_steps(self, max_steps: int) -> float:
        """Validation, sample grids and export, in units of one training step's time."""
        t, lg = self.config.training, self.config.logging
        batch = t.batch_size * t.gradient_accumulation_steps
        forward = 1 / 3 / batch  # one image's forward pass
        val = min(self.num_val, lg.val_max_samples or self.num_val) * 2 * forward
        grid = min(self.num_train, lg.prior_samples or self.num_train) * forward / 2 + 3 * lg.num_samples * forward
        validations = max_steps // lg.validation_steps + 1
        grids = max_steps // lg.sample_steps + 1
        export = self.num_train * forward / 2
        return validations * val + grids * grid + export

    def fit_steps(self, step_seconds: float, done: int, elapsed: float) -> int:
        """The most steps (between `done` and training.max_steps) whose remaining steps and
        overhead fit in the time left."""
        left = self.seconds * self.MARGIN - elapsed
        low, high = done, self.ceiling
        while low < high:
            mid = (low + high + 1) // 2
            if (mid - done + self.overhead_steps(mid)) * step_seconds <= left:
                low = mid
            else:
                high = mid - 1
        return low


class StopRequest:
    """SIGINT/SIGTERM set a flag; the loop saves a checkpoint at the end of the step and exits.
    Repeated signals (a launcher forwarding Ctrl-C) do not interrupt the save."""

    def __init__(self, verbose: bool = True) -> None:
        self.signum: int | None = None
        self.verbose = verbose
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.signum is None and self.verbose:
            print(f"\n{signal.Signals(signum).name}: saving a checkpoint after this step, then stopping", file=sys.stderr, flush=True)
        self.signum = signum


def cpu_threads_per_process() -> int:
    """Physical cores available to this process, shared among the processes on this machine.

    `accelerate launch` exports OMP_NUM_THREADS=1 unless told otherwise, so torch would use one
    core per process; measured on 2 cores, configs/small.yaml trained at 11 images/s that way
    and at 18 with 2 threads.
    """
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, hardware.physical_cores() // max(1, local))


def _ignore_sigint_in_worker(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the training process, which shuts them down cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def composite(rgb: torch.Tensor, alpha_logits: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """RGB in [-1, 1] over the dataset's constant background colour, by the predicted alpha."""
    alpha = torch.sigmoid(alpha_logits.float())
    return rgb.float() * alpha + background.view(1, 3, 1, 1) * (1.0 - alpha)


@contextmanager
def _own_rng(device: torch.device):
    """Run validation/sampling without moving the training RNG (needed for exact resume)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def _reason(err: OSError) -> str:
    """An OSError's reason, to follow a colon in a message: "no space left on device"."""
    reason = err.strerror or str(err)
    return reason[:1].lower() + reason[1:]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# --- config and resume ---------------------------------------------------------------------------


@dataclass
class Plan:
    config: Config
    run_dir: Path
    resume: Path | None  # checkpoint to load
    export_only: bool
    resume_requested: bool = False  # --resume latest (a fresh start is then said out loud)


def make_plan(args: argparse.Namespace) -> Plan:
    """Resolve the config and the checkpoint to start from. Raises ConfigError/TrainingError."""
    overrides = list(args.overrides or [])
    resume_arg = args.resume
    config_path = args.config
    if config_path is None:
        # `--resume runs/x/checkpoints/checkpoint-400` or `--output-dir runs/x`: use the run's own config.
        run_dir = None
        if resume_arg and resume_arg != "latest":
            run_dir = Path(resume_arg).resolve().parent.parent
        elif args.output_dir:
            run_dir = Path(args.output_dir)
        if run_dir is None or not (run_dir / CONFIG_FILE).is_file():
            raise TrainingError("--config is required (or --resume PATH / --output-dir of a run that has a config.yaml)")
        config_path = run_dir / CONFIG_FILE
        if args.output_dir is None:
            overrides.insert(0, f"training.output_dir={run_dir}")
    if args.output_dir:
        overrides.append(f"training.output_dir={args.output_dir}")
    if args.report_to:
        overrides.append(f"logging.report_to={args.report_to}")
    config = load_config(config_path, overrides)
    run_dir = Path(config.training.output_dir)
    # Before the dataset, the model and Accelerate, and without making the folder (a later error
    # must not leave an empty run directory behind): one that cannot be made is one line.
    problem = atomicfile.folder_problem(run_dir)
    if problem:
        raise TrainingError(f"training.output_dir {run_dir}: cannot create it ({problem})")

    resume: Path | None = None
    existing = list_checkpoints(run_dir)
    if resume_arg == "latest" or (args.export_only and resume_arg is None):
        resume = existing[-1] if existing else None
        if resume is None and args.export_only:
            raise TrainingError(f"{run_dir}: no checkpoint to export (train first)")
    elif resume_arg:
        resume = Path(resume_arg)
        if not resume.is_dir() or not (resume / CHECKPOINT_MARKER).is_file():
            raise TrainingError(f"{resume}: not a training checkpoint (expected a checkpoints/checkpoint-<step> directory)")
    elif existing:
        raise TrainingError(
            f"{run_dir} already holds checkpoints (newest: {existing[-1].name}); pass --resume latest to continue "
            f"that run, or choose another --output-dir"
        )
    return Plan(config=config, run_dir=run_dir, resume=resume, export_only=bool(args.export_only), resume_requested=bool(resume_arg))


def _check_resumed_config(run_dir: Path, config: Config, log) -> None:
    saved = run_dir / CONFIG_FILE
    if not saved.is_file():
        return
    try:
        changed = diff_configs(read_yaml(saved), config.to_dict())
    except ConfigError:
        return
    risky = [k for k in changed if k not in RESUME_SAFE_KEYS and not k.startswith(("logging.", "data.num_workers", "data.p"))]
    if risky:
        log(f"warning: resuming with a config that differs from {saved} in {', '.join(risky)}; the run will not match an uninterrupted one")


def resolve_precision(config: Config, hw: hardware.Hardware) -> str:
    """Replace `auto` in training.mixed_precision / channels_last by what `hw` runs fastest
    (poseguide.hardware), in place, so the run's saved config says what was used. Returns the
    line to log (a warning when an explicit bf16 will be emulated)."""
    t = config.training
    try:
        choice = hardware.choose_precision(hw, t.mixed_precision)
    except ValueError as err:
        raise TrainingError(f"training.mixed_precision={t.mixed_precision}: {err}") from None
    if t.channels_last == "auto":
        t.channels_last = choice.channels_last
    t.mixed_precision = choice.mixed_precision
    layout = "channels_last" if t.channels_last else "contiguous"
    line = f"precision: {'fp32' if choice.mixed_precision == 'no' else choice.mixed_precision}, {layout} ({choice.reason}); {hw.summary()}"
    warning = hardware.slow_precision_warning(hw, choice)
    return f"{warning}\n{line}" if warning else line


# --- checkpoint files of our own -------------------------------------------------------------

RUN_STATE_FILE = "training_state.json"
EMA_FILE = "ema.safetensors"
RUN_STATE_FORMAT = "poseguide-training-state"


def save_run_state(directory: Path, state: RunState, ema: AveragedModel | None) -> None:
    """Counters as JSON and the EMA as safetensors, beside Accelerate's files in a checkpoint."""
    from safetensors.torch import save_file

    (directory / RUN_STATE_FILE).write_text(json.dumps({"format": RUN_STATE_FORMAT, "version": 1, **state.state_dict()}) + "\n")
    if ema is not None:
        save_file({k: v.detach().contiguous().cpu() for k, v in ema.state_dict().items()}, str(directory / EMA_FILE))


def load_run_state(directory: Path, state: RunState, ema: AveragedModel | None) -> None:
    from safetensors.torch import load_file

    try:
        data = json.loads((directory / RUN_STATE_FILE).read_text())
        if not isinstance(data, dict) or data.get("format") != RUN_STATE_FORMAT:
            raise ValueError(f"{RUN_STATE_FILE} is not a poseguide training state")
        state.load_state_dict(data)
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{RUN_STATE_FILE} is not valid ({err})") from None
    if ema is not None:
        ema.load_state_dict(load_file(str(directory / EMA_FILE), device=str(next(ema.parameters()).device)))


def initial_weights(model_dir: str, model: torch.nn.Module) -> torch.nn.Module:
    """training.init_from's model (a model directory, or "pose-prior" for the one shipped in the
    package), refused in one line unless its architecture is `model`'s."""
    try:
        source = PoseCVAE.from_pretrained(POSE_PRIOR_DIR if model_dir == POSE_PRIOR_NAME else model_dir)
    except ModelLoadError as err:
        raise TrainingError(f"training.init_from: {err}") from None
    ours = model.config.to_dict()
    differ = architecture_differences(model.config, source.config.to_dict())
    if differ:
        raise TrainingError(
            f"training.init_from {model_dir}: its architecture differs from model: "
            + ", ".join(f"{k} {theirs!r} there, {ours[k]!r} here" for k, theirs in list(differ.items())[:3])
        )
    return source


def _architecture_hint(run_dir: Path, config: Config) -> str:
    """The model settings a run trained with, where this config asks for others: the likely reason
    its checkpoint does not fit (e.g. a run from before model.head_upsample existed)."""
    try:
        saved = read_yaml(run_dir / CONFIG_FILE).get("model") or {}
    except (ConfigError, OSError, AttributeError):
        return ""
    differ = architecture_differences(config.model, saved)
    return f" (this run trained with {', '.join(f'model.{k}={v}' for k, v in differ.items())})" if differ else ""


def check_checkpoint(path: Path, process_index: int) -> None:
    """Refuse, in one line, checkpoints that Accelerate would load wrongly without a word:
    pickled state from older versions (never unpickled here: it could run code) and a corrupt
    RNG file (Accelerate skips it silently, and the resume would not be exact)."""
    from accelerate.utils import load as safe_load

    pickled = sorted(p.name for p in path.glob("custom_checkpoint_*.pkl"))
    if pickled:  # Accelerate would refuse them anyway, in a message about registered objects
        raise TrainingError(
            f"{path}: cannot resume from this checkpoint: it holds pickled state ({', '.join(pickled)}) that is never "
            "loaded, as it could run code (older poseguide versions wrote it); resume from another checkpoint or start a new --output-dir"
        )
    if not (path / RUN_STATE_FILE).is_file():
        raise TrainingError(f"{path}: cannot resume from this checkpoint: {RUN_STATE_FILE} is missing; start a new --output-dir")
    rng_file = path / rng_state_file(process_index)
    try:
        safe_load(rng_file)  # weights_only: tensors, numpy arrays and plain values only
    except Exception as err:  # noqa: BLE001 - any failure means the RNG state cannot be restored
        raise TrainingError(
            f"{rng_file}: unreadable random state ({type(err).__name__}), so the resume would not be exact; "
            "resume from another checkpoint with --resume PATH"
        ) from None


# --- the trainer -----------------------------------------------------------------------------


class Trainer:
    """Everything one training run holds. `fit()` runs the loop; see the module docstring."""

    def __init__(self, plan: Plan):
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration, set_seed

        self.started = time.perf_counter()  # the time budget (training.max_minutes) counts from here
        self.plan = plan
        self.config = config = plan.config
        self.run_dir = plan.run_dir
        t = config.training

        # The dataset is checked before anything heavy starts, in one line.
        self.info: DatasetInfo = validate_dataset(config.data.dataset, image_size=config.model.image_size, channels=config.model.channels)

        report_to = config.logging.report_to
        if report_to == "wandb":
            os.environ.setdefault("WANDB_MODE", "offline")  # no account or network needed; `wandb sync` later
            os.environ.setdefault("WANDB_DIR", str(self.run_dir))
        # The device Accelerate will pick, found without creating its state before the Accelerator.
        use_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
        self.hardware = hardware.detect("cuda" if torch.cuda.is_available() and not use_cpu else "cpu")
        self.precision_note = resolve_precision(config, self.hardware)
        self.accelerator = Accelerator(
            gradient_accumulation_steps=t.gradient_accumulation_steps,
            mixed_precision=t.mixed_precision,
            log_with=None if report_to == "none" else report_to,
            project_config=ProjectConfiguration(project_dir=str(self.run_dir), logging_dir=str(self.run_dir / "logs")),
        )
        acc = self.accelerator
        self.device = acc.device
        self.is_main = acc.is_main_process
        if self.device.type == "cpu":
            torch.set_num_threads(t.cpu_threads or cpu_threads_per_process())
        set_seed(t.seed, device_specific=True)  # ranks draw different noise; data order is shared

        model = PoseCVAE(config.model)
        if t.init_from and plan.resume is None:  # a resumed run's weights come from its checkpoint
            model.load_state_dict(initial_weights(t.init_from, model).state_dict())
        if t.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.loss_fn = VAELoss(config.loss).to(self.device)
        params = list(model.parameters()) + [p for p in self.loss_fn.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            params, lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2), weight_decay=t.adam_weight_decay, eps=t.adam_epsilon
        )
        scheduler = make_scheduler(optimizer, config, acc.num_processes)

        self.train_set = PoseDataset(self.info.root, self.info.train_indices)
        self.val_set = PoseDataset(self.info.root, self.info.val_indices)
        self.synthetic_set = self._synthetic_set()
        mixture = self.train_set if self.synthetic_set is None else MixedPoseDataset([self.train_set, self.synthetic_set])
        self.sampler = EpochSampler(len(mixture), seed=t.seed, flip=config.data.flip)
        d = config.data
        loader = DataLoader(
            mixture,
            batch_size=t.batch_size,
            sampler=self.sampler,
            collate_fn=collate_batch,
            drop_last=True,
            num_workers=d.num_workers,
            pin_memory=d.pin_memory and torch.cuda.is_available(),
            persistent_workers=d.persistent_workers and d.num_workers > 0,
            prefetch_factor=d.prefetch_factor if d.num_workers > 0 else None,
            worker_init_fn=_ignore_sigint_in_worker if d.num_workers > 0 else None,
            generator=torch.Generator().manual_seed(t.seed),  # worker seeds never touch the global RNG
        )

        self.disc = None
        self.disc_optimizer = None
        disc = self.loss_fn.make_discriminator()  # None unless loss.adversarial_weight > 0
        if disc is not None:
            if t.channels_last:
                disc = disc.to(memory_format=torch.channels_last)
            disc_optimizer = torch.optim.AdamW(
                disc.parameters(),
                lr=t.learning_rate * config.loss.discriminator_lr_scale,
                betas=(t.disc_adam_beta1, t.disc_adam_beta2),
                weight_decay=0.0,
            )
            model, optimizer, loader, scheduler, disc, disc_optimizer = acc.prepare(
                model, optimizer, loader, scheduler, disc, disc_optimizer
            )
            self.disc, self.disc_optimizer = disc, disc_optimizer
        else:
            model, optimizer, loader, scheduler = acc.prepare(model, optimizer, loader, scheduler)
        self.model, self.optimizer, self.loader, self.scheduler = model, optimizer, loader, scheduler
        self.net = acc.unwrap_model(model)
        # The training forward only; checkpoints, EMA, validation and export use the eager module.
        self.forward = torch.compile(model) if t.compile else model

        if len(loader) < 1:
            raise TrainingError(
                f"{self.info.root}: {len(self.train_set)} training samples are fewer than one batch "
                f"({t.batch_size} x {acc.num_processes} processes); lower training.batch_size"
            )

        # Saved beside Accelerate's files in each checkpoint as JSON (counters) and safetensors
        # (EMA), never pickled: loading a shared run directory must not be able to run code.
        self.state = RunState(num_processes=acc.num_processes, batches_per_epoch=len(loader))
        self.ema = None
        if t.use_ema:
            self.ema = AveragedModel(self.net, device=self.device, multi_avg_fn=ema_multi_avg_fn(t.ema_decay), use_buffers=True)
            self.ema.requires_grad_(False)

        self.stop = StopRequest(verbose=self.is_main)
        self.background = (torch.tensor(self.info.background, dtype=torch.float32, device=self.device) / 127.5) - 1.0
        self.metrics_path = self.run_dir / METRICS_FILE
        self.last_saved_step: int | None = None
        self._fixed_batch: dict | None = None

    # --- helpers --------------------------------------------------------------------------

    def log(self, message: str) -> None:
        """A line on the main process's stderr (tqdm-safe)."""
        if self.is_main:
            from tqdm.auto import tqdm

            tqdm.write(message, file=sys.stderr)

    @property
    def inference_net(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else self.net

    # --- checkpoints ------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """save_state into .checkpoint-<step>.tmp on every process, then rename and rotate."""
        acc = self.accelerator
        step = self.state.global_step
        root = self.run_dir / CHECKPOINTS_DIR
        final = checkpoint_dir(self.run_dir, step)
        tmp = atomicfile.shared_temp_dir(final)
        if self.is_main:
            for stale in root.glob(f".{CHECKPOINT_PREFIX}*.tmp"):  # left by a run that was killed
                shutil.rmtree(stale, ignore_errors=True)
        acc.wait_for_everyone()
        try:
            acc.save_state(str(tmp))
            if self.is_main:
                save_run_state(tmp, self.state, self.ema)
        except BaseException as err:
            # A full disk or a read-only run directory: the last checkpoint stays. torch.save and
            # safetensors report a full disk in their own exceptions (atomicfile.as_write_error).
            write_error = atomicfile.as_write_error(err, final)
            shutil.rmtree(tmp, ignore_errors=True)
            if write_error is None:
                raise
            last = list_checkpoints(self.run_dir)
            kept = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint was saved yet"
            raise TrainingError(
                f"cannot save a checkpoint in {root}: {_reason(write_error)}; {kept}; "
                "fix that and continue with --resume latest"
            ) from None
        acc.wait_for_everyone()
        if self.is_main:
            atomicfile.replace_dir(tmp, final)
            limit = self.config.training.checkpoints_total_limit
            if limit is not None:
                for old in list_checkpoints(self.run_dir)[:-limit]:
                    shutil.rmtree(old, ignore_errors=True)
            self.log(f"step {step}: saved {final}")
        acc.wait_for_everyone()
        self.last_saved_step = step
        return final

    def load_checkpoint(self, path: Path) -> None:
        layout = (self.accelerator.num_processes, len(self.loader))
        check_checkpoint(path, self.accelerator.process_index)
        try:
            self.accelerator.load_state(str(path))
            load_run_state(path, self.state, self.ema)
        except (RuntimeError, KeyError, ValueError, OSError, SafetensorError) as err:  # wrong shapes, keys, bytes
            reason = str(err).strip().splitlines()
            hint = "start a new --output-dir or fix the config" + _architecture_hint(self.run_dir, self.config)
            raise TrainingError(
                f"{path}: cannot resume from this checkpoint, it does not match this model and config "
                f"({reason[-1].strip() if reason else type(err).__name__}); {hint}"
            ) from None
        self.last_saved_step = self.state.global_step
        self.log(f"resumed from {path} at step {self.state.global_step}")
        if (self.state.num_processes, self.state.batches_per_epoch) != layout:
            self.log(
                f"warning: the checkpoint was written by {self.state.num_processes} processes with "
                f"{self.state.batches_per_epoch} batches per epoch, this run has {layout[0]} and {layout[1]}: "
                "training continues, but not exactly where it stopped"
            )
        self.state.num_processes, self.state.batches_per_epoch = layout

    # --- logging ---------------------------------------------------------------------------

    def init_trackers(self) -> None:
        acc = self.accelerator
        cfg = self.config.logging
        if cfg.report_to == "none" or not self.is_main:
            return
        run_name = cfg.run_name or self.run_dir.resolve().name
        init_kwargs: dict = {}
        if cfg.report_to == "wandb":
            id_file = self.run_dir / WANDB_ID_FILE
            if not id_file.is_file():
                import secrets

                atomicfile.write_text(id_file, secrets.token_hex(4) + "\n")
            wandb_kwargs = {"dir": str(self.run_dir), "id": id_file.read_text().strip(), "name": run_name}
            if os.environ.get("WANDB_MODE", "offline") not in ("offline", "dryrun", "disabled"):
                # Online, resume joins the run. Offline, W&B ignores it with a warning; the same
                # id already makes `wandb sync` upload every offline segment as one run.
                wandb_kwargs["resume"] = "allow"
            init_kwargs["wandb"] = wandb_kwargs
        tracker_config = {k: (str(v) if isinstance(v, (list, tuple)) or v is None else v) for k, v in self.config.flat().items()}
        acc.init_trackers(cfg.project if cfg.report_to == "wandb" else run_name, config=tracker_config, init_kwargs=init_kwargs)

    def write_metrics(self, row: dict) -> None:
        if not self.is_main:
            return
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def truncate_metrics(self, step: int) -> None:
        """After a resume, drop rows logged after the checkpoint (that future is being redone)."""
        if not self.is_main or not self.metrics_path.is_file():
            return
        kept = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue
        atomicfile.write_text(self.metrics_path, "".join(line + "\n" for line in kept))

    def log_scalars(self, values: dict, step: int) -> None:
        if not self.is_main:
            return
        if self.config.logging.report_to != "none":
            self.accelerator.log(values, step=step)
        self.write_metrics({"step": step, **values})

    def log_image(self, name: str, grid: np.ndarray, step: int, caption: str) -> None:
        if not self.is_main or self.config.logging.report_to == "none":
            return
        if self.config.logging.report_to == "wandb":
            import wandb

            self.accelerator.get_tracker("wandb").log({name: wandb.Image(grid, caption=caption)}, step=step)
        else:
            writer = self.accelerator.get_tracker("tensorboard", unwrap=True)  # a SummaryWriter
            writer.add_image(name, grid, step, dataformats="HWC")

    # --- one step --------------------------------------------------------------------------

    def train_step(self, batch: dict, window: dict) -> dict[str, torch.Tensor] | None:
        """One micro-batch. Returns the loss terms; on a sync step also steps the optimisers."""
        acc = self.accelerator
        t = self.config.training
        step = self.state.global_step  # 0-based index of the optimiser step being built
        image, mask, landmarks = to_model_inputs(batch, self.device, t.channels_last)
        modules = [self.model] + ([self.disc] if self.disc is not None else [])
        use_disc = self.disc is not None and self.loss_fn.uses_discriminator(step)
        with acc.accumulate(*modules):
            out = self.forward(image, mask, landmarks, cond_dropout=self.config.model.cond_dropout)
            disc_for_g = None
            if use_disc:
                disc_for_g = acc.unwrap_model(self.disc)
                disc_for_g.requires_grad_(False)  # the generator's loss must not leave gradients in D
            try:
                terms = self.loss_fn(
                    image, mask, landmarks, out, step, last_layer=self.net.decoder_last_layer(), discriminator=disc_for_g
                )
            except RuntimeError:
                # Some losses (BCE) raise on NaN input instead of returning NaN: same diagnosis.
                if not all(torch.isfinite(x).all() for x in (out.rgb, out.alpha_logits, out.mu, out.logvar)):
                    raise NonFiniteLoss(f"the model's outputs are not finite at step {step + 1}") from None
                raise
            loss = terms["loss"]
            window["bad"] = window["bad"] | ~torch.isfinite(loss.detach())
            acc.backward(loss)
            if acc.sync_gradients:
                self._check_flags(window, terms)
                # The norm is checked even without clipping (max_norm inf): a finite loss can
                # still overflow its gradients, and that update must not reach a checkpoint.
                norm = acc.clip_grad_norm_(self.model.parameters(), t.max_grad_norm if t.max_grad_norm > 0 else math.inf)
                terms["grad_norm"] = norm.detach()
                if not torch.isfinite(norm):
                    raise NonFiniteLoss(f"gradient norm is {float(norm)} at step {step + 1}")
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            if use_disc:
                disc_for_g.requires_grad_(True)
                d_terms = self.loss_fn.discriminator_loss(self.disc, image, mask, out)
                acc.backward(d_terms["d_loss"])
                if acc.sync_gradients and t.max_grad_norm > 0:
                    acc.clip_grad_norm_(self.disc.parameters(), t.max_grad_norm)
                self.disc_optimizer.step()
                self.disc_optimizer.zero_grad(set_to_none=True)
                terms.update(d_terms)
        return terms

    def after_sync(self) -> int:
        """Bookkeeping once an optimiser step is complete: step counter and EMA."""
        self.state.global_step += 1
        if self.ema is not None:
            self.ema.update_parameters(self.net)
        return self.state.global_step

    def _check_flags(self, window: dict, terms: dict) -> None:
        """All-reduce (non-finite loss, stop requested) so every process decides alike."""
        flags = torch.stack([window["bad"].float(), torch.tensor(float(self.stop.signum is not None), device=self.device)])
        flags = self.accelerator.reduce(flags.to(self.device), reduction="sum")
        window["stop"] = bool(flags[1] > 0)
        if flags[0] > 0:
            shown = ", ".join(f"{k} {float(v.detach()):.4g}" for k, v in terms.items() if torch.is_tensor(v) and v.numel() == 1)
            raise NonFiniteLoss(f"loss is not finite at step {self.state.global_step + 1} ({shown})")

    # --- validation and samples ------------------------------------------------------------

    def _val_indices(self) -> np.ndarray:
        n = len(self.val_set)
        cap = self.config.logging.val_max_samples
        return np.arange(n if cap is None else min(n, cap))

    @torch.no_grad()
    def validate(self, step: int) -> dict[str, float]:
        """On the val split with the EMA weights: reconstruction loss and PSNR of the RGB output
        from the posterior mean, and the negative ELBO in bits/dim from a posterior sample.
        The PSNR is `psnr_rgb_uncapped`: raw RGB, not composited over the background, and not
        capped, so it differs from the PSNR `poseguide evaluate` reports."""
        from torchmetrics.functional.image import peak_signal_noise_ratio

        indices = self._val_indices()
        if len(indices) == 0:
            return {}
        net = self.inference_net
        was_training = net.training
        net.eval()
        bs = self.config.training.batch_size
        sums: dict[str, float] = {}
        count = 0
        with _own_rng(self.device):
            gen = torch.Generator(device=self.device).manual_seed(self.config.training.seed)
            for start in range(0, len(indices), bs):
                batch = self.val_set.__getitems__(indices[start : start + bs].tolist())
                image, mask, landmarks = to_model_inputs(batch, self.device, self.config.training.channels_last)
                b = image.shape[0]
                with self.accelerator.autocast():
                    mean_out = net(image, mask, landmarks, sample_posterior=False)
                    out = net(image, mask, landmarks, generator=gen)
                terms = self.loss_fn(image, mask, landmarks, mean_out, step, last_layer=None, discriminator=None)
                psnr = peak_signal_noise_ratio(
                    (mean_out.rgb.float().clamp(-1, 1) + 1) / 2, (image.float() + 1) / 2, data_range=1.0, reduction="none", dim=(1, 2, 3)
                )
                bpd = elbo_bits_per_dim(image, out.rgb, out.mu, out.logvar)
                values = {"psnr_rgb_uncapped": psnr.sum().item(), "elbo_bpd": bpd.float().sum().item()}
                for key in ("rec", "mask_bce", "loss"):
                    if key in terms:
                        values[key] = float(terms[key]) * b
                for key, value in values.items():
                    sums[key] = sums.get(key, 0.0) + value
                count += b
        net.train(was_training)
        return {f"val/{k}": v / count for k, v in sums.items()}

    def _grid_batch(self) -> dict:
        if self._fixed_batch is None:
            k = self.config.logging.num_samples
            source = self.val_set if len(self.val_set) else self.train_set
            # Spread over the split: neighbouring samples are often the same person a frame apart.
            picks = np.unique(np.linspace(0, len(source) - 1, min(k, len(source))).round().astype(int))
            self._fixed_batch = source.__getitems__(picks.tolist())
        return self._fixed_batch

    @torch.no_grad()
    def sample_grid(self, step: int) -> np.ndarray:
        """Rows: inputs, reconstructions (posterior mean), the poses, two fixed z's drawn in every
        pose, and unconditional samples (null condition). Poses and z are fixed for the whole
        run, so grids from different steps compare directly. Drawn with poseguide.visualize."""
        net = self.with_fitted_prior(self.inference_net, max_samples=self.config.logging.prior_samples)
        batch = self._grid_batch()
        image, mask, landmarks = to_model_inputs(batch, self.device, self.config.training.channels_last)
        k = image.shape[0]
        gen = torch.Generator().manual_seed(self.config.training.seed + 1)
        z_rows = net.sample_latent(2, gen, DEFAULT_TEMPERATURE)
        z_free = net.sample_latent(k, gen, DEFAULT_TEMPERATURE)
        with _own_rng(self.device), self.accelerator.autocast():
            recon = net(image, mask, landmarks, sample_posterior=False)
            rows = [image.float(), composite(recon.rgb, recon.alpha_logits, self.background)]
            posed = []
            for z in z_rows:
                rgb, alpha = net.decode(z.expand(k, -1).contiguous(), landmarks)
                posed.append(composite(rgb, alpha, self.background))
            rgb, alpha = net.decode(z_free, None)
            free = composite(rgb, alpha, self.background)
        poses = landmarks.float().cpu().numpy()
        background = visualize.to_rgb_uint8(self.background.view(3, 1, 1).expand(3, *image.shape[-2:]))
        tiles = [visualize.to_rgb_uint8(x) for row in rows for x in row]
        tiles += [visualize.draw_skeleton(background, pose) for pose in poses]
        tiles += [visualize.to_rgb_uint8(x) for row in (*posed, free) for x in row]
        labels = ["input", "reconstruction", "pose", "z1 posed", "z2 posed", "unconditional"]
        captions = [labels[i // k] if i % k == 0 else "" for i in range(len(tiles))]
        return visualize.make_grid(tiles, ncol=k, captions=captions)

    @torch.no_grad()
    def with_fitted_prior(self, net: torch.nn.Module, max_samples: int | None = None) -> torch.nn.Module:
        """An eval-mode copy of `net` whose latent prior is fitted to the posteriors of (up to
        `max_samples` evenly spread) training samples. A copy, because the EMA would average the
        fitted buffers back towards the live model's."""
        net = copy.deepcopy(net).eval()
        n = len(self.train_set)
        picks = np.arange(n) if not max_samples or max_samples >= n else np.linspace(0, n - 1, max_samples).round().astype(int)
        mus, logvars = [], []
        batch_size = self.config.training.batch_size
        with _own_rng(self.device), self.accelerator.autocast():
            for start in range(0, len(picks), batch_size):
                batch = self.train_set.__getitems__(picks[start:start + batch_size].tolist())
                image, mask, landmarks = to_model_inputs(batch, self.device, self.config.training.channels_last)
                mu, logvar = net.posteriors(image, mask, landmarks)
                mus.append(mu)
                logvars.append(logvar)
        net.fit_latent_prior(torch.cat(mus), torch.cat(logvars))
        return net

    def write_samples(self, step: int) -> None:
        if not self.is_main:
            return

        grid = self.sample_grid(step)
        visualize.save_png(grid, sample_grid_path(self.run_dir, step))
        self.log_image("samples", grid, step, caption="rows: " + ", ".join(GRID_ROWS))

    def _synthetic_set(self) -> PoseDataset | None:
        """data.synthetic's samples mixed into training (a seeded subset sized by
        data.synthetic_fraction), after checking they are drawn like the user's samples."""
        d = self.config.data
        if not d.synthetic or d.synthetic_fraction <= 0:
            return None
        try:
            info = validate_dataset(d.synthetic, image_size=self.config.model.image_size)
        except DatasetError as err:
            raise TrainingError(f"data.synthetic: {err}") from None
        for name, ours, theirs in (("background", self.info.background, info.background),
                                   ("framing", self.info.framing, info.framing)):
            if ours != theirs:
                raise TrainingError(f"data.synthetic {info.root}: its {name} {theirs} differs from {self.info.root}'s "
                                    f"{ours}; prepare both with the same settings")
        available = np.sort(np.concatenate([info.train_indices, info.val_indices]))
        wanted = round(d.synthetic_fraction / (1 - d.synthetic_fraction) * len(self.train_set))
        rng = np.random.default_rng([self.config.training.seed, 11])
        picked = np.sort(rng.choice(available, size=min(wanted, len(available)), replace=False))
        return PoseDataset(info.root, picked)

    # --- export ----------------------------------------------------------------------------

    def export(self) -> Path | None:
        """The EMA weights as a model directory (PoseCVAE.save_pretrained) with the framing and
        data settings from the dataset manifest and the train split's poses for --random-pose."""
        if not self.is_main:
            return None
        net = self.with_fitted_prior(self.inference_net)  # every training sample
        net = net.to("cpu", memory_format=torch.contiguous_format).float().eval()
        info = self.info
        counts = info.manifest.get("counts", {})
        extra_config = {
            "framing": info.framing,
            "data": {
                "image_size": info.image_size,
                "background": list(info.background),
                "dataset": str(info.root),
                "train_samples": int(counts.get("train", len(info.train_indices))),
                "val_samples": int(counts.get("val", len(info.val_indices))),
                "flip": bool(self.config.data.flip),
            },
            "training": {"step": self.state.global_step, "ema": self.ema is not None, "run_dir": str(self.run_dir)},
        }
        tensors = {"train_poses": torch.from_numpy(self.train_set.landmarks())}
        if self.synthetic_set is not None:  # poses the model also saw, for the coverage warning
            tensors["synthetic_poses"] = torch.from_numpy(self.synthetic_set.landmarks())
        out = self.run_dir / MODEL_DIR
        try:
            net.save_pretrained(out, extra_config=extra_config, extra_tensors=tensors)
        except Exception as err:  # a full disk: the checkpoint is saved, so the export alone can be redone
            write_error = atomicfile.as_write_error(err, out)
            if write_error is None:
                raise
            kept = "the previous model there is unchanged" if out.is_dir() else "nothing was written"
            raise TrainingError(
                f"cannot write {out}: {_reason(write_error)} ({kept}); free some space "
                f"and export the newest checkpoint with: poseguide train --output-dir {self.run_dir} --export-only"
            ) from None
        write_model_card(out, manifest=info.manifest)  # new weights: any earlier evaluation no longer applies
        self.log(f"exported the {'EMA ' if self.ema is not None else ''}model at step {self.state.global_step} to {out}")
        return out

    def param_spread(self) -> float:
        """Largest difference of any weight (model and discriminator) between processes: 0 when
        gradients synchronise.
        (An element-wise all-reduce of max and min: no gather of every rank's copy.)"""
        import torch.distributed as dist

        params = list(self.net.parameters())
        if self.disc is not None:
            params += list(self.accelerator.unwrap_model(self.disc).parameters())
        flat = torch.cat([p.detach().float().flatten() for p in params])
        high, low = flat.clone(), flat.clone()
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        return float((high - low).max())

    # --- the loop --------------------------------------------------------------------------

    def fit(self) -> int:
        acc = self.accelerator
        t, lg = self.config.training, self.config.logging
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.plan.resume is not None:
                _check_resumed_config(self.run_dir, self.config, self.log)
        acc.wait_for_everyone()

        # The checkpoint loads before config.yaml is rewritten: a resume that fails leaves the
        # run's own config as it was.
        if self.plan.resume is not None:
            self.load_checkpoint(self.plan.resume)
            self.truncate_metrics(self.state.global_step)
        else:
            if self.plan.resume_requested:
                self.log(f"--resume latest: no checkpoint in {self.run_dir / CHECKPOINTS_DIR} yet, starting from step 0")
            if self.is_main and self.metrics_path.exists():
                self.metrics_path.unlink()
        if self.is_main:
            save_config(self.config, self.run_dir / CONFIG_FILE)
        acc.wait_for_everyone()
        if self.plan.export_only:
            self.export()
            return 0

        budget = None
        if t.max_minutes is not None:
            if self.state.budget_steps:  # fixed by the interrupted run: the same length again
                t.max_steps = self.state.budget_steps
                self.log(f"time budget: max_steps {t.max_steps}, as fixed when this run started")
            else:
                budget = TimeBudget(self.config, t.max_minutes * 60, self.started, len(self.train_set), len(self._val_indices()))
        self.log(self.precision_note)

        self.init_trackers()
        per_epoch = steps_per_epoch(len(self.loader), t.gradient_accumulation_steps)
        step = self.state.global_step
        first_epoch, skip = divmod(step, per_epoch)
        skip *= t.gradient_accumulation_steps
        num_epochs = math.ceil(t.max_steps / per_epoch)
        images_per_step = t.batch_size * t.gradient_accumulation_steps * acc.num_processes
        self.log(
            f"training {self.info.root}: {len(self.train_set)} train / {len(self.val_set)} val samples, "
            f"{images_per_step} images per step ({t.batch_size} x {t.gradient_accumulation_steps} accumulation x "
            f"{acc.num_processes} processes), {per_epoch} steps per epoch, steps {step} -> {t.max_steps}, "
            f"{acc.device}{f' ({torch.get_num_threads()} threads)' if acc.device.type == 'cpu' else ''} "
            f"{'fp32' if t.mixed_precision == 'no' else t.mixed_precision}{' channels_last' if t.channels_last else ''}"
        )

        from tqdm.auto import tqdm

        progress = tqdm(total=t.max_steps, initial=step, desc="steps", disable=not acc.is_local_main_process, mininterval=2.0)
        window = self.new_window()
        sums: dict[str, torch.Tensor] = {}
        sums_n = 0
        timer = time.perf_counter()
        excluded = 0.0  # seconds spent in validation/samples/checkpoints since the last log
        steps_timed = 0
        step_began = time.perf_counter()
        self.stop.install()
        try:
            for epoch in range(first_epoch, num_epochs):
                if self.state.global_step >= t.max_steps:
                    break
                self.loader.set_epoch(epoch)
                self.sampler.set_epoch(epoch)
                loader = self.loader
                if epoch == first_epoch and skip:
                    loader = acc.skip_first_batches(self.loader, skip)
                    loader.set_epoch(epoch)
                for batch in loader:
                    terms = self.train_step(batch, window)
                    for key, value in terms.items():
                        if torch.is_tensor(value) and value.numel() == 1:
                            sums[key] = sums.get(key, 0.0) + value.detach().float()
                    sums_n += 1
                    if not acc.sync_gradients:
                        continue
                    # --- an optimiser step is complete ---
                    step = self.after_sync()
                    progress.update(1)
                    steps_timed += 1
                    if budget is not None and (fitted := budget.observe(step, time.perf_counter() - step_began)) is not None:
                        self.fix_max_steps(fitted, budget)
                        progress.total = t.max_steps
                    stop = window["stop"]
                    window = self.new_window()

                    if step % lg.log_steps == 0 or step == t.max_steps or stop:
                        elapsed = time.perf_counter() - timer - excluded
                        keys = sorted(sums)
                        means = acc.reduce(torch.stack([torch.as_tensor(sums[k], device=self.device) for k in keys]) / sums_n, "mean")
                        values = {f"train/{k}": float(v) for k, v in zip(keys, means)}
                        values["train/lr"] = self.scheduler.get_last_lr()[0]
                        values["train/epoch"] = epoch
                        values["train/images_per_s"] = steps_timed * images_per_step / max(elapsed, 1e-9)
                        self.log_scalars(values, step)
                        progress.set_postfix(loss=_fmt(values.get("train/loss", float("nan"))), img_s=f"{values['train/images_per_s']:.1f}", refresh=False)
                        sums, sums_n, steps_timed, excluded = {}, 0, 0, 0.0
                        timer = time.perf_counter()

                    begin = time.perf_counter()
                    done = step >= t.max_steps
                    if step % t.checkpointing_steps == 0 or done or stop:
                        self.save_checkpoint()
                        if acc.num_processes > 1:
                            self.log_scalars({"dist/param_spread": self.param_spread()}, step)
                    validating, sampling = step % lg.validation_steps == 0 or done, step % lg.sample_steps == 0 or done
                    if validating and self.is_main:
                        metrics = self.validate(step)
                        if metrics:
                            self.log_scalars(metrics, step)
                            self.log(f"step {step}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items()))
                    if sampling and self.is_main:
                        self.write_samples(step)
                    if validating or sampling:
                        acc.wait_for_everyone()  # the other processes wait for the main one
                    excluded += time.perf_counter() - begin
                    step_began = time.perf_counter()
                    if stop:
                        self.log(f"stopped at step {step}; continue with --resume latest")
                        return 130
                    if done:
                        break
            if self.last_saved_step != self.state.global_step:
                self.save_checkpoint()
            self.export()
            acc.wait_for_everyone()
            return 0
        except NonFiniteLoss as err:
            progress.close()
            last = list_checkpoints(self.run_dir)
            where = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint was saved yet"
            msg = f"error: {err}; stopping without saving ({where}). Try a lower training.learning_rate or training.mixed_precision=no"
            if self.is_main:
                print(msg, file=sys.stderr, flush=True)
            return 1
        finally:
            self.stop.restore()
            progress.close()
            acc.end_training()

    def fix_max_steps(self, steps: int, budget: TimeBudget) -> None:
        """Fix the run's length to `steps` (chosen by the time budget) in the state that every
        checkpoint saves and in the run's config.yaml."""
        t = self.config.training
        if self.accelerator.num_processes > 1:  # every process must stop at the same step: rank 0 decides
            from accelerate.utils import broadcast

            steps = int(broadcast(torch.tensor([steps], device=self.device))[0])
        replanned = bool(self.state.budget_steps)
        if replanned and steps == t.max_steps:
            return
        self.log(
            f"time budget {t.max_minutes:g} min: {budget.pace:.2f} s per step {'now' if replanned else 'measured'}, "
            f"{'max_steps ' + str(steps) if steps < budget.ceiling else 'all ' + str(steps) + ' steps fit'}"
            f"{f' (of {budget.ceiling})' if steps < budget.ceiling else ''}"
        )
        t.max_steps = steps
        self.state.budget_steps = steps
        if self.is_main:
            save_config(self.config, self.run_dir / CONFIG_FILE)

    def new_window(self) -> dict:
        return {"bad": torch.zeros((), dtype=torch.bool, device=self.device), "stop": False}


def run(args: argparse.Namespace) -> int:
    """Entry for `poseguide train` and scripts/train.py (through poseguide.cli, which prints
    ConfigError, DatasetError and TrainingError as one line)."""
    return Trainer(make_plan(args)).fit()
