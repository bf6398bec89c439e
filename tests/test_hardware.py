"""The precision choice is a pure function of the hardware description, so every class of
machine is tested here without having it; one test checks what this machine resolves to."""

import pytest
import torch

from poseguide.hardware import Hardware, choose_precision, detect, slow_precision_warning


def cpu(capability: str, bf16: bool) -> Hardware:
    return Hardware(device="cpu", cpu_capability=capability, cpu_bf16=bf16, cores=2)


def cuda(bf16: bool) -> Hardware:
    return Hardware(device="cuda", cpu_capability="AVX2", cpu_bf16=False, cores=16, gpu_name="GPU", gpu_bf16=bf16)


@pytest.mark.parametrize(
    "hw, expected",
    [
        (cpu("AVX2", bf16=False), ("no", False)),  # most laptops: bf16 would be emulated
        (cpu("AVX512", bf16=False), ("no", False)),  # AVX-512 without BF16 (Skylake-X, Zen 4 w/o AMX is bf16=True)
        (cpu("AVX512", bf16=True), ("bf16", True)),  # AMX / AVX512_BF16
        (cpu("AVX2", bf16=True), ("no", False)),  # ATEN_CPU_CAPABILITY=avx2 emulating an AVX2 CPU
        (cpu("DEFAULT", bf16=False), ("no", False)),  # Arm, Apple Silicon
        (cuda(bf16=True), ("bf16", True)),
        (cuda(bf16=False), ("fp16", True)),  # pre-Ampere: fp16 with Accelerate's grad scaler
    ],
)
def test_auto_picks_native_precision_only(hw, expected):
    choice = choose_precision(hw)
    assert (choice.mixed_precision, choice.channels_last) == expected
    assert choice.reason


def test_explicit_choices_are_kept_and_slow_ones_warned():
    avx2, amx = cpu("AVX2", bf16=False), cpu("AVX512", bf16=True)
    assert choose_precision(avx2, "no").mixed_precision == "no"
    slow = choose_precision(avx2, "bf16")
    assert slow.mixed_precision == "bf16"
    assert "emulated and much slower than fp32" in slow_precision_warning(avx2, slow)
    assert slow_precision_warning(amx, choose_precision(amx, "bf16")) is None
    assert slow_precision_warning(avx2, choose_precision(avx2)) is None
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        choose_precision(avx2, "fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        choose_precision(avx2, "fp8")


def test_this_machine_is_described_and_resolved():
    hw = detect("cpu")
    assert hw.device == "cpu" and hw.cores >= 1
    assert hw.cpu_capability == torch.backends.cpu.get_cpu_capability()
    flags = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    native = flags and torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    assert choose_precision(hw).mixed_precision == ("bf16" if native else "no")
    line = hw.summary()
    assert hw.cpu_capability in line or "AMX" in line
    assert f"{hw.cores} cores" in line
