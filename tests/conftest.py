"""Shared fixtures. Expensive real work (MediaPipe on frames, a few training steps) runs once
per session and is reused by every test that only reads its output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Keep tests offline and quiet whatever the user's environment says.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TESTS_DIR = Path(__file__).parent
DATA_DIR = TESTS_DIR / "data"
REPO_DIR = TESTS_DIR.parent


@pytest.fixture(scope="session")
def vtest_frames() -> list[Path]:
    """Fourteen real 768x576 frames of OpenCV's vtest.avi (Apache-2.0/BSD-3), one every 6 s."""
    frames = sorted((DATA_DIR / "vtest").glob("frame-*.jpg"))
    assert len(frames) == 14
    return frames


# --- prepare helper ---
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402


def run_cli(*args: str, check: bool = True, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `poseguide` CLI (`python -m poseguide.cli ...`) in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "poseguide.cli", *map(str, args)],
        cwd=REPO_DIR, capture_output=True, text=True, timeout=timeout, **kwargs,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"poseguide {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def one_error_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """The CLI's contract for bad input: exit 2 and one `error:` line holding each needle."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    line = proc.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), proc.stderr[-3000:]
    for needle in needles:
        assert needle in line, line
    return line


def no_permission_prefix() -> list[str] | None:
    """A command prefix under which a mode-000 file or folder is unreadable, even for root
    (None: no setpriv to drop the capabilities that let root read anything)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search"
    return [setpriv, "--bounding-set", caps, "--inh-caps", caps]


@pytest.fixture(scope="session")
def prepared_dataset(tmp_path_factory, vtest_frames) -> Path:
    """The 14 committed vtest frames prepared once per session at --size 128 (2 workers, ~10 s),
    every person in each (--all-people: a frame of a street scene has no main subject).

    A real dataset dir (manifest.json, images.npy, masks.npy, landmarks.npy, samples.csv,
    skipped.csv) with about 40 samples, some of them val. Treat it as read-only; copy it to
    change it.
    """
    out = tmp_path_factory.mktemp("prepared") / "vtest-128"
    run_cli("prepare", DATA_DIR / "vtest", "--out", out, "--size", "128", "--workers", "2", "--all-people", "--no-progress")
    return out


# --- generate helper ---
# A tiny model trained for real by the public trainer entry (`poseguide train`) on the
# prepared frames: every option is an override, so the config file stays empty.
TINY_MODEL_OVERRIDES = (
    "model.channels=16,32,32,32",
    "model.head_channels=8",
    "model.latent_dim=16",
    "model.pose_latent_dim=4",
    "model.condition_size=32",
    "training.max_steps=24",
    "training.batch_size=4",
    "training.learning_rate=0.002",
    "training.lr_warmup_steps=4",
    "training.checkpointing_steps=1000",
    "training.checkpoints_total_limit=1",
    "logging.report_to=none",
    "logging.log_steps=8",
    "logging.validation_steps=1000",
    "logging.sample_steps=1000",
    "logging.num_samples=2",
    "logging.val_max_samples=4",
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, prepared_dataset) -> Path:
    """An exported model dir (`<run>/model`) of a tiny CVAE trained for 24 steps on
    `prepared_dataset` (~20-40 s on 2 free cores). It has framing, data settings and the
    `train_poses` extra tensor, like any trained model. Treat it as read-only."""
    root = tmp_path_factory.mktemp("tiny-model")
    config = root / "tiny.yaml"
    config.write_text("# tests' tiny model: everything is set by overrides on the command line\n")
    run_dir = root / "run"
    run_cli(
        "train", "--config", config, "--output-dir", run_dir, f"data.dataset={prepared_dataset}",
        *TINY_MODEL_OVERRIDES, timeout=900,
    )
    model_dir = run_dir / "model"
    assert (model_dir / "config.json").is_file() and (model_dir / "model.safetensors").is_file()
    return model_dir
