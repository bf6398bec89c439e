"""The model card (poseguide/modelcard.py) of a model directory saved as training exports one.

The card after a real export is checked in test_train.py, and after a real evaluation in
test_evaluate.py; here a tiny untrained model, a hand-written manifest and a hand-written report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from poseguide.modelcard import write_model_card

MANIFEST = {
    "format": "poseguide-dataset", "version": 1, "image_size": 64, "background": [128, 128, 128],
    "counts": {"samples": 2259, "train": 1949, "val": 310,
               "skipped": {"no_person": 0, "too_small": 31, "near_duplicate": 112}},
    "sources": [{"path": "vtest.avi", "kind": "video", "frames": 795, "fps": 10.0}],
}
# The parts of a report.json (poseguide/evaluate.py) the card shows, with made-up numbers.
REPORT = {
    "model": {"training_step": 245},
    "data": {"dir": "data/vtest-128", "split": "val", "samples": 200},
    "settings": {"temperature": 0.7},
    "pose": {
        "samples": {"pck@0.1": 0.6431, "pck@0.05": 0.4452, "detection_rate": 0.835},
        "samples_z0": {"pck@0.1": 0.8493},
        "ceiling": {"pck@0.1": 0.9234, "pck@0.05": 0.8501},
        "floor": {"pck@0.1": 0.3891, "pck@0.05": 0.1477},
    },
    "realism": {"random_detection_rate": 0.895, "real_detection_rate": 0.99},
    "reconstruction": {"psnr": {"mean": 26.54}, "ssim": {"mean": 0.9113}, "bits_per_dim": {"mean": 4.243}},
    "fid": {"skipped": True},
    "nearest_training": {"random": {"median": 0.07123}, "held_out": {"median": 0.0654}},
    "pictures": {"pose": "pose.png", "random": "random.png"},
}


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """RUN/model as training's export leaves it, trained on a dataset whose manifest is in place."""
    from poseguide.model import ModelConfig, PoseCVAE

    dataset = tmp_path / "data"
    dataset.mkdir()
    (dataset / "manifest.json").write_text(json.dumps(MANIFEST))
    torch.manual_seed(0)
    model = PoseCVAE(ModelConfig(image_size=64, channels=(8, 8), latent_dim=4, pose_latent_dim=2, head_channels=4, condition_size=16))
    extra = {
        "data": {"image_size": 64, "background": [128, 128, 128], "dataset": str(dataset),
                 "train_samples": 1949, "val_samples": 310},
        "training": {"step": 245, "ema": True, "run_dir": str(tmp_path / "run")},
    }
    model.save_pretrained(tmp_path / "run" / "model", extra_config=extra)
    return tmp_path / "run"


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_after_export(run_dir):
    from poseguide.model import PoseCVAE

    card = write_model_card(run_dir / "model")
    assert card == run_dir / "model" / "README.md"
    text = card.read_text()
    assert front_matter(text) == {
        "license": "other",
        "library_name": "poseguide",
        "pipeline_tag": "image-to-image",
        "tags": ["pose-guided-image-generation", "vae", "poseguide"],
    }
    assert "- samples: 1,949 for training, 310 held out for validation (of 2,259 prepared)" in text
    assert "- sources: 0 photos, 1 videos" in text
    assert "too small 31, near duplicate 112" in text and "no person" not in text
    state = PoseCVAE.from_pretrained(run_dir / "model").state_dict()
    assert f"- size: {sum(t.numel() for t in state.values()):,} numbers" in text
    assert "trained for 245 steps; these are the EMA weights" in text
    assert "| `latent_dim` | 4 |" in text
    assert "generate --checkpoint MODEL_DIR --pose pose.json" in text
    assert "Not evaluated yet" in text


def test_card_after_evaluation_links_the_report(run_dir):
    eval_dir = run_dir / "eval"
    eval_dir.mkdir()
    for name in ("pose.png", "random.png", "report.md", "report.json"):
        (eval_dir / name).write_bytes(b"")
    text = write_model_card(run_dir / "model", report=REPORT, report_dir=eval_dir).read_text()
    assert "| pose PCK@0.1, random appearance | 0.643 | 0.923 | 0.389 |" in text
    assert "| person found in random samples | 0.895 | 0.990 | |" in text
    assert "| median distance to the nearest training image: random samples, real held-out | 0.0712 | 0.0654 | |" in text
    assert "200 val samples of `data/vtest-128`, temperature 0.7, at training step 245" in text
    links = [line.split("](", 1)[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert links == ["../eval/pose.png", "../eval/random.png"]
    assert all((run_dir / "model" / link).is_file() for link in links)
    # a re-export (new weights) rebuilds the card without the numbers that no longer apply
    again = write_model_card(run_dir / "model").read_text()
    assert "0.643" not in again and "Not evaluated yet" in again


def test_card_without_the_dataset_still_names_the_counts(run_dir, tmp_path):
    (tmp_path / "data" / "manifest.json").unlink()
    text = write_model_card(run_dir / "model").read_text()
    assert "- samples: 1,949 for training, 310 held out for validation\n" in text
