"""What machine this is, and which numeric precision is fastest on it.

bf16 autocast is only fast where the hardware multiplies bf16 natively: on an AVX2-only CPU
(most laptops: AMD before Zen 4, Intel before Sapphire Rapids) oneDNN emulates it, and the
small model's training step was 12.5x slower than in fp32. So `auto` (the default precision of
every config and of `generate`/`evaluate`) picks by capability:

- CUDA GPU with bf16 (Ampere or newer): bf16 autocast + channels_last;
- CUDA GPU without bf16: fp16 autocast with a gradient scaler + channels_last;
- CPU with AMX or AVX512_BF16, and ATen running its AVX512 kernels: bf16 + channels_last;
- any other CPU (AVX2, Arm, Apple Silicon): fp32, contiguous.

`choose_precision` is a pure function of a `Hardware` description, so it is tested without the
hardware. `detect()` fills that description in on this machine and honours the emulation
variables `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`, which make an AMX CPU behave like
an AVX2 one (ATen then reports "AVX2", and `auto` says fp32 like it would on such a CPU).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "no", "bf16", "fp16")


@dataclass(frozen=True)
class Hardware:
    """The facts the precision choice depends on, plus what a speed figure should print."""

    device: str  # "cpu", "cuda" or "mps"
    cpu_capability: str  # torch.backends.cpu.get_cpu_capability(): "AVX2", "AVX512", "DEFAULT", ...
    cpu_bf16: bool  # AMX tiles or AVX512_BF16 instructions
    cores: int  # physical cores this process may use
    gpu_name: str | None = None
    gpu_bf16: bool = False
    cpu_name: str = ""

    @property
    def native_cpu_bf16(self) -> bool:
        """bf16 matrix instructions that ATen's AVX512 kernels (and oneDNN with them) use."""
        return self.cpu_bf16 and self.cpu_capability.upper().startswith("AVX512")

    @property
    def cpu_class(self) -> str:
        """'AMX/AVX512-BF16' or the ATen capability ('AVX2', 'AVX512', ...): the class a speed
        figure belongs to."""
        return "AMX/AVX512-BF16" if self.native_cpu_bf16 else self.cpu_capability

    def summary(self) -> str:
        """One line to print beside every speed figure."""
        cpu = f"CPU {self.cpu_name or platform.machine()} [{self.cpu_class}], {self.cores} cores"
        gpu = f", GPU {self.gpu_name}" if self.gpu_name else ", no GPU" if self.device == "cpu" else ""
        return f"{cpu}{gpu}, torch {torch.__version__}"


@dataclass(frozen=True)
class PrecisionChoice:
    mixed_precision: str  # "no", "bf16" or "fp16" (Accelerate's names)
    channels_last: bool
    reason: str  # one line: why, for the log and the resolved config


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads do not speed up convolutions)."""
    import psutil

    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(psutil.cpu_count(logical=False) or available, available))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def detect(device: str | torch.device | None = None) -> Hardware:
    """This machine, for `device` (default: CUDA if present, else CPU)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device_type = torch.device(device).type
    gpu_name, gpu_bf16 = None, False
    if device_type == "cuda" and torch.cuda.is_available():
        index = torch.device(device).index or 0
        gpu_name = torch.cuda.get_device_name(index)
        gpu_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    elif torch.cuda.is_available():
        gpu_name = torch.cuda.get_device_name(0)
    cpu_bf16 = bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    return Hardware(
        device=device_type,
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        cpu_bf16=cpu_bf16,
        cores=physical_cores(),
        gpu_name=gpu_name,
        gpu_bf16=gpu_bf16,
        cpu_name=_cpu_name(),
    )


def choose_precision(hw: Hardware, requested: str = "auto") -> PrecisionChoice:
    """The precision to run in: `requested` unless it is "auto" (see the module docstring).

    An explicit choice is kept (the caller warns when it is slow, see `slow_precision_warning`);
    fp16 on a CPU is the one refusal, as autocast there would silently run in fp32.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "fp16" and hw.device != "cuda":
        raise ValueError("fp16 needs a CUDA GPU (on a CPU it would silently run in fp32); use bf16 or no")
    if requested != "auto":
        return PrecisionChoice(requested, requested != "no" or hw.device == "cuda", f"{requested} as configured")
    if hw.device == "cuda":
        if hw.gpu_bf16:
            return PrecisionChoice("bf16", True, f"{hw.gpu_name} computes bf16 natively")
        return PrecisionChoice("fp16", True, f"{hw.gpu_name} has no bf16: fp16 with a gradient scaler")
    if hw.device == "cpu" and hw.native_cpu_bf16:
        return PrecisionChoice("bf16", True, f"the CPU has native bf16 ({hw.cpu_class})")
    if hw.device == "cpu":
        return PrecisionChoice("no", False, f"the CPU has no native bf16 ({hw.cpu_class}): fp32 is faster there")
    return PrecisionChoice("no", False, f"{hw.device}: fp32")


def slow_precision_warning(hw: Hardware, choice: PrecisionChoice) -> str | None:
    """One line when an explicit bf16 will run emulated (several times slower than fp32)."""
    if choice.mixed_precision == "bf16" and hw.device == "cpu" and not hw.native_cpu_bf16:
        return (
            f"warning: bf16 on a CPU without native bf16 ({hw.cpu_class}) is emulated and much slower than fp32 "
            "(12.5x measured on an AVX2 CPU); precision auto would choose fp32"
        )
    return None
