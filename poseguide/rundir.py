"""The training run directory on disk: the names `train` writes and `generate`, `evaluate`
and scripts/make_results.py read. Nothing from the package is imported, so any module can.

    config.yaml                      the run's full config (resuming reads it back)
    metrics.jsonl                    one JSON object per logged step
    samples/step-<N>.png             the sample grid drawn at step N
    checkpoints/checkpoint-<N>/      Accelerate's save_state at step N (random_states_0.pkl
                                     in every one), plus training_state.json
    model/                           the exported model (see model.py for its files)
"""

from __future__ import annotations

import re
from pathlib import Path

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
SAMPLE_GRID_PREFIX = "step-"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_PREFIX = "checkpoint-"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
MODEL_DIR = "model"


def rng_state_file(process_index: int) -> str:
    """The RNG state Accelerate's save_state writes for each process in a checkpoint."""
    return f"random_states_{process_index}.pkl"


# Every checkpoint holds process 0's RNG state: how a checkpoint directory is recognised.
CHECKPOINT_MARKER = rng_state_file(0)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS_DIR / f"{CHECKPOINT_PREFIX}{step}"


def sample_grid_path(run_dir: Path, step: int) -> Path:
    return run_dir / SAMPLES_DIR / f"{SAMPLE_GRID_PREFIX}{step}.png"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Finished checkpoints of a run, oldest first (unfinished `.tmp` saves are ignored)."""
    root = run_dir / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]
