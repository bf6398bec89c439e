"""Experiment settings: one YAML file per experiment, with `section.key=value` overrides.

The YAML has five sections. `model` and `loss` are the model's and the loss's own
dataclasses (`poseguide.model.ModelConfig`, `poseguide.losses.LossConfig`), so a field is
defined once; `data`, `training` and `logging` are defined here. Every value, from the file
or the command line, is checked against its dataclass field's type, and any mistake is one
line (`ConfigError`), e.g. `training.max_step: unknown key (did you mean training.max_steps?)`.

The resolved config (file + overrides + defaults) is written to the run directory as
config.yaml, so a run can always be repeated or resumed from its own directory.

Why not OmegaConf structured configs, which do the same typing and dotlist overrides: its
errors span several lines (message, full_key, object_type) and suggest no close key, so every
call would need wrapping to keep the one-line "did you mean" errors, and it would be one more
dependency to replace ~250 lines that are tested key by key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from poseguide.losses import LossConfig
from poseguide.model import ModelConfig


class ConfigError(ValueError):
    """A bad config file or override. The message is one line."""


@dataclass
class DataConfig:
    """Where the prepared dataset is and how batches are read from it."""

    dataset: str = "data/vtest-128"  # a directory written by `poseguide prepare`
    flip: bool = True  # horizontal flip augmentation, left/right landmarks swapped
    num_workers: int = 0  # DataLoader worker processes; 0 reads in the training process
    pin_memory: bool = False  # only helps when copying to a GPU
    persistent_workers: bool = True  # keep workers alive between epochs (when num_workers > 0)
    prefetch_factor: int = 2  # batches each worker reads ahead (when num_workers > 0)
    # Another prepared dataset mixed into training, e.g. `poseguide synth` renders: people in
    # poses the user's photos lack. It teaches the decoder those poses; the latent prior and
    # the training poses kept with the model come from `dataset` alone, so random samples
    # still look like the user's data.
    synthetic: str | None = None
    synthetic_fraction: float = 0.3  # of each epoch's samples (fewer if the dataset is smaller)

    def __post_init__(self) -> None:
        if not 0.0 <= self.synthetic_fraction < 1.0:
            raise ValueError(f"synthetic_fraction must be in [0, 1), got {self.synthetic_fraction}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.prefetch_factor < 1:
            raise ValueError(f"prefetch_factor must be >= 1, got {self.prefetch_factor}")


@dataclass
class TrainingConfig:
    """The optimisation, named after diffusers' training-example arguments."""

    output_dir: str = "runs/small"  # the run directory
    seed: int = 0
    max_steps: int = 3000  # optimiser steps (one step = gradient_accumulation_steps batches)
    # A wall-clock budget for the whole run. The first steps are timed and max_steps is then
    # lowered to what fits (never raised); the choice is saved with the run so a resume is exact.
    max_minutes: float | None = None
    batch_size: int = 32  # per device
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 0.0
    adam_epsilon: float = 1e-8
    lr_scheduler: Literal["polynomial", "cosine", "constant"] = "polynomial"
    lr_warmup_steps: int = 100
    lr_power: float = 1.0  # polynomial decay power (1 = linear)
    lr_end: float = 1e-6  # the learning rate at max_steps, for polynomial and cosine decay
    max_grad_norm: float = 1.0  # 0 turns clipping off
    # auto: bf16 where the hardware has it natively (AMX/AVX512-BF16 CPUs, Ampere+ GPUs), fp16
    # on older GPUs, fp32 elsewhere (poseguide.hardware). The resolved choice is saved with the run.
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    channels_last: bool | Literal["auto"] = "auto"  # NHWC convolutions; auto: with bf16/fp16
    compile: bool = False  # torch.compile the model (benchmarks/bench_compile.py: slower end to end on a 2-core CPU)
    # Torch threads per process when training on CPU. None: the physical cores this process may
    # use, shared among the processes on this machine. (`accelerate launch` sets OMP_NUM_THREADS=1,
    # which ran configs/small.yaml at 11 instead of 18 images/s on 2 cores.)
    cpu_threads: int | None = None
    # A model directory whose weights start training instead of random ones (same
    # architecture), e.g. one pre-trained on synthetic people in many poses.
    init_from: str | None = None
    use_ema: bool = True
    ema_decay: float = 0.999  # with warm-up: decay_n = min(ema_decay, (1 + n) / (10 + n))
    checkpointing_steps: int = 500
    checkpoints_total_limit: int | None = 3  # keep the last K checkpoints; None keeps all
    # The PatchGAN's Adam (its lr is learning_rate x loss.discriminator_lr_scale); Stable
    # Diffusion's autoencoder uses betas (0.5, 0.9) for it.
    disc_adam_beta1: float = 0.5
    disc_adam_beta2: float = 0.9

    def __post_init__(self) -> None:
        positive = ("max_steps", "batch_size", "gradient_accumulation_steps", "checkpointing_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.learning_rate < math.inf:
            raise ValueError(f"learning_rate must be a finite number > 0, got {self.learning_rate}")
        if self.max_minutes is not None and not 0 < self.max_minutes < math.inf:
            raise ValueError(f"max_minutes must be a finite number > 0 or null, got {self.max_minutes}")
        if self.lr_warmup_steps < 0:
            raise ValueError(f"lr_warmup_steps must be >= 0, got {self.lr_warmup_steps}")
        if self.lr_scheduler != "constant" and not 0 <= self.lr_end < self.learning_rate:
            raise ValueError(f"lr_end ({self.lr_end}) must be in [0, learning_rate={self.learning_rate})")
        if self.max_grad_norm < 0:
            raise ValueError(f"max_grad_norm must be >= 0, got {self.max_grad_norm}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ValueError(f"cpu_threads must be >= 1 or null, got {self.cpu_threads}")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise ValueError(f"checkpoints_total_limit must be >= 1 or null, got {self.checkpoints_total_limit}")


@dataclass
class LoggingConfig:
    """What is logged, where, and how often (in optimiser steps)."""

    report_to: Literal["wandb", "tensorboard", "none"] = "wandb"
    project: str = "poseguide"
    run_name: str | None = None  # None: the run directory's name
    log_steps: int = 10  # losses, lr, images/s
    validation_steps: int = 250  # reconstruction, PSNR (raw RGB, uncapped), ELBO bits/dim on the val split
    sample_steps: int = 500  # sample grids (also saved as samples/step-<n>.png)
    num_samples: int = 8  # columns in the sample grid
    val_max_samples: int | None = 512  # cap on validation samples; None = the whole split
    prior_samples: int | None = 256  # training samples the grids' latent prior is fitted to (export: all)

    def __post_init__(self) -> None:
        for name in ("log_steps", "validation_steps", "sample_steps", "num_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def to_dict(self) -> dict:
        return to_plain(self)

    def flat(self) -> dict[str, Any]:
        """{"training.max_steps": 3000, ...}: the shape trackers show best."""
        out: dict[str, Any] = {}
        for section, values in self.to_dict().items():
            for key, value in values.items():
                out[f"{section}.{key}"] = value
        return out


SECTIONS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Config))


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (None: all defaults), apply `section.key=value` overrides, check types."""
    data: dict = {}
    if path is not None:
        data = read_yaml(path)
        if not data and not overrides:  # every default, including a dataset path the user never chose
            raise ConfigError(f"{path}: the config is empty; start from configs/small.yaml (CPU) or configs/base.yaml (GPU)")
    for item in overrides:
        key, raw = parse_override(item)
        section, name = key.split(".", 1)
        hint = _field_type(section, name)
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            data[section] = {}
        data[section][name] = _parse_override_value(raw, hint)
    return config_from_dict(data)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections ({', '.join(SECTIONS)})")
    return data


def parse_override(item: str) -> tuple[str, str]:
    """`training.max_steps=200` -> ("training.max_steps", "200"), with the key checked."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or key.count(".") != 1:
        raise ConfigError(f"override {item!r} should look like section.key=value, e.g. training.max_steps=200")
    section, name = key.split(".")
    _field_type(section, name)
    return key, raw.strip()


def config_from_dict(data: dict) -> Config:
    """Build and check a Config from plain data (as read from YAML)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config is a mapping of sections ({', '.join(SECTIONS)})")
    sections = {}
    for section in data:
        if section not in SECTIONS:
            raise ConfigError(f"{section}: unknown config section{_suggest(str(section), SECTIONS)}")
    for section in SECTIONS:
        values = data.get(section) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: should be a mapping of keys to values")
        cls = _section_class(section)
        kwargs = {}
        for name, value in values.items():
            hint = _field_type(section, str(name))
            kwargs[name] = coerce(value, hint, f"{section}.{name}")
        try:
            sections[section] = cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{section}: {_one_line(err)}") from None
    return Config(**sections)


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def to_plain(obj: Any) -> Any:
    """Dataclasses -> dicts, tuples -> lists: what YAML and trackers accept."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def diff_configs(old: dict, new: dict) -> list[str]:
    """Keys (section.key) whose values differ between two plain configs."""
    changed = []
    for section in SECTIONS:
        a, b = old.get(section) or {}, new.get(section) or {}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                changed.append(f"{section}.{key}")
    return changed


# --- type checking -------------------------------------------------------------------------


def _section_class(section: str) -> type:
    return typing.get_type_hints(Config)[section]


def _field_type(section: str, name: str) -> Any:
    if section not in SECTIONS:
        raise ConfigError(f"{section}.{name}: unknown config section {section!r}{_suggest(section, SECTIONS)}")
    cls = _section_class(section)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    if name not in names:
        suggestion = _suggest(name, names, prefix=f"{section}.")
        raise ConfigError(f"{section}.{name}: unknown key{suggestion}")
    return hints[name]


def _suggest(word: str, choices, prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _parse_override_value(raw: str, hint: Any) -> Any:
    """A command-line value: strings stay as typed; everything else is read as YAML.
    `null`, `none` and `~` mean None for fields that accept None."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if raw.lower() in ("none", "null", "~") and type(None) in args:
        return None
    if str in args or any(typing.get_origin(a) is Literal and raw in typing.get_args(a) for a in args):
        return raw
    if _is_sequence_type(hint) and raw and not raw.startswith("["):
        raw = f"[{raw}]"  # model.channels=32,64,128
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _is_sequence_type(hint: Any) -> bool:
    return typing.get_origin(hint) in (tuple, list)


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin in (tuple, list):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {_type_name(args[0])}" if args else "a list"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against a field's type hint; convert only where it is lossless
    (1 -> 1.0, "1e-4" -> 0.0001, [32, 64] -> (32, 64)). Raises ConfigError naming the key."""
    try:
        return _coerce(value, hint)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {_type_name(hint)}, got {value!r}") from None


def _coerce(value: Any, hint: Any) -> Any:
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None:
            if type(None) in args:
                return None
            raise TypeError
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg)
            except (TypeError, ValueError):
                continue
        raise TypeError
    if origin is Literal:
        if value in typing.get_args(hint) and not isinstance(value, bool):
            return value
        if isinstance(value, bool) and value is False and "no" in typing.get_args(hint):
            return "no"  # YAML 1.1 reads a bare `no` as false
        raise ValueError
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError
        args = typing.get_args(hint)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in value)
        if origin is tuple and args:
            if len(args) != len(value):
                raise ValueError
            return tuple(_coerce(v, a) for v, a in zip(value, args))
        return [_coerce(v, args[0]) for v in value] if args else list(value)
    if value is None:
        raise TypeError
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if hint is int:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            number = float(value)
            if number.is_integer():
                return int(number)
        raise ValueError
    if hint is float:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        raise TypeError
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise TypeError
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TypeError
        hints = typing.get_type_hints(hint)
        return hint(**{k: _coerce(v, hints[k]) for k, v in value.items()})
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise TypeError


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())
