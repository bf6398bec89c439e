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
