"""`poseguide evaluate` end to end: the real CLI, a tiny trained model, real MediaPipe on a real
prepared dataset (the 14 committed vtest frames)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from poseguide import landmarks as lm
from poseguide import metrics
from poseguide.cli import main
from poseguide.evaluate import REPORT_FORMAT, load_report
from poseguide.report import comparison_text

from conftest import run_cli

NUM = 6
PCK_KEYS = {"pck@0.05", "pck@0.1", "pck@0.05_detected", "pck@0.1_detected", "detection_rate", "scored_samples", "joints"}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, tiny_model_dir, prepared_dataset) -> Path:
    out = tmp_path_factory.mktemp("eval") / "report"
    proc = run_cli("evaluate", "--checkpoint", tiny_model_dir, "--data", prepared_dataset, "--out", out,
                   "--num", NUM, "--seed", 3, "--no-progress", "--pose-set", prepared_dataset)
    assert "PCK@0.1" in proc.stdout and "ceiling" in proc.stdout and "edited poses PCK@0.1" in proc.stdout
    assert "nearest training image: random samples" in proc.stdout
    return out


def _report(report_dir: Path) -> dict:
    return json.loads((report_dir / "report.json").read_text())


def _unit(value) -> bool:
    return value is None or 0.0 <= value <= 1.0


@pytest.mark.slow
def test_report_json_schema(report_dir):
    r = _report(report_dir)
    assert r["format"] == REPORT_FORMAT and r["version"] == 1
    assert r["data"]["split"] == "val" and r["data"]["samples"] == min(NUM, r["data"]["split_size"])
    assert len(r["data"]["indices"]) == r["data"]["samples"]
    pose = r["pose"]
    for key in ("samples", "samples_z0", "reconstructions", "ceiling", "floor", "floor_real"):
        assert set(pose[key]) == PCK_KEYS, key
        assert all(_unit(pose[key][k]) for k in PCK_KEYS - {"scored_samples", "joints"})
    assert set(pose["normalised_samples"]) == {"pck@0.05", "pck@0.1"}
    assert pose["joints"] == [lm.NAMES[j] for j in lm.BODY_JOINTS]
    assert "z from the prior at temperature" in pose["sampling"] and "longer side" in pose["definition"]
    assert "stored" in pose["ceiling_definition"]
    for key in ("random_detection_rate", "real_detection_rate", "posed_detection_rate"):
        assert _unit(r["realism"][key])
    rec = r["reconstruction"]
    assert rec["psnr"]["n"] == rec["ssim"]["n"] == rec["bits_per_dim"]["n"] == r["data"]["samples"]
    assert 0 < rec["psnr"]["mean"] <= metrics.PSNR_CAP_DB and -1 <= rec["ssim"]["mean"] <= 1
    assert rec["bits_per_dim"]["mean"] > 0
    assert "sigma 1.5" in rec["ssim_variant"]
    div = r["diversity"]
    assert div["samples_pairwise_l1"] >= 0 and div["real_pairwise_l1"] > 0
    # FID/KID: skipped without a weights file, and the report says why
    assert r["fid"]["skipped"] is True and "never downloads" in r["fid"]["reason"]
    assert set(r["targets"]) == {"pck@0.1_over_ceiling", "random_over_real_detection", "person_detail_over_real"}
    detail = r["targets"]["person_detail_over_real"]
    assert detail["value"] == r["sharpness"]["person_coarse"]["samples_ratio"] and detail["target"] == 0.7
    assert detail["met"] == (detail["value"] >= 0.7)
    assert r["seconds"]["total"] > 0


@pytest.mark.slow
def test_ceiling_scores_real_images_against_the_stored_landmarks(report_dir, prepared_dataset):
    """Recompute the ceiling independently: MediaPipe on the stored images, scored against the
    stored landmarks. It must match the report, and stay below 1 (re-detecting on the same pixels
    and scoring against that would be 1 by construction)."""
    from poseguide.extract import PoseEstimator

    r = _report(report_dir)
    indices = r["data"]["indices"]
    images = np.load(prepared_dataset / "images.npy", mmap_mode="r")[indices]
    stored = np.load(prepared_dataset / "landmarks.npy", mmap_mode="r")[indices]
    with PoseEstimator() as estimator:
        found = [estimator(np.ascontiguousarray(im)) for im in images]
    detected = np.stack([metrics.undetected() if f is None else f[0] for f in found])
    counts = metrics.pck_counts(detected, np.asarray(stored))
    assert r["pose"]["ceiling"]["pck@0.1"] == pytest.approx(counts.pck()[0.1])
    assert r["pose"]["ceiling"]["pck@0.05"] == pytest.approx(counts.pck()[0.05])
    assert r["pose"]["ceiling"]["pck@0.1"] < 1.0
    # what a ceiling re-detected on the same pixels would say instead
    assert metrics.pck_counts(detected, detected).pck(only_detected=True)[0.1] == 1.0
    # the ceiling sits above the real-images-vs-shuffled-poses floor
    assert r["pose"]["floor_real"]["pck@0.1"] < r["pose"]["ceiling"]["pck@0.1"]


@pytest.mark.slow
def test_unseen_poses_are_scored_with_floor_and_the_pose_set_with_its_ceiling(report_dir, prepared_dataset):
    """The edited poses are far from the training poses (beyond generate's warning distance, where
    the held-out poses are not), scored per family group; the pose set's ceiling is its own
    images re-detected, recomputed here."""
    from poseguide import coverage, pose_edits
    from poseguide.extract import PoseEstimator

    r = _report(report_dir)
    edited = r["unseen_poses"]["edited"]
    assert set(edited["samples"]) == PCK_KEYS and set(edited["floor"]) == PCK_KEYS
    assert edited["unseen_families"]["families"] == list(pose_edits.UNSEEN_FAMILIES)
    assert set(edited["per_family"]) == set(pose_edits.FAMILIES)
    assert edited["samples"]["scored_samples"] == r["data"]["samples"]
    assert edited["distance_to_training_poses"]["mean"] > coverage.FAR
    pose_set = r["unseen_poses"]["pose_set"]
    indices = pose_set["indices"]
    assert len(indices) == r["data"]["samples"]
    images = np.load(prepared_dataset / "images.npy", mmap_mode="r")[indices]
    stored = np.load(prepared_dataset / "landmarks.npy", mmap_mode="r")[indices]
    with PoseEstimator() as estimator:
        found = [estimator(np.ascontiguousarray(im)) for im in images]
    detected = np.stack([metrics.undetected() if f is None else f[0] for f in found])
    assert pose_set["ceiling"]["pck@0.1"] == pytest.approx(metrics.pck_counts(detected, np.asarray(stored)).pck()[0.1])
    md = (report_dir / "report.md").read_text()
    assert "Poses unlike the training poses" in md and "unseen families" in md
    assert r["pictures"]["unseen"] == "unseen.png" and (report_dir / "unseen.png").is_file()
    assert (report_dir / "pose-set.png").is_file()


@pytest.mark.slow
def test_markdown_and_pictures(report_dir):
    md = (report_dir / "report.md").read_text()
    r = _report(report_dir)
    for text in ("Pose fidelity", "ceiling", "floor", "z from the prior", "longer side", "sigma 1.5", "bits/dim",
                 "FID and KID were **skipped", "never downloads"):
        assert text in md, text
    size = r["model"]["image_size"]
    for name, path in r["pictures"].items():
        assert f"]({path})" in md
        with Image.open(report_dir / path) as im:
            assert im.format == "PNG" and im.mode == "RGB"
            assert im.width >= size and im.height >= size, name
    with Image.open(report_dir / r["pictures"]["pose"]) as im:  # 3 rows of tiles with captions
        assert im.height >= 3 * size


@pytest.mark.slow
def test_same_seed_other_batch_size_gives_the_same_report_and_compare_prints_both(
    report_dir, tiny_model_dir, prepared_dataset, tmp_path, capsys
):
    out = tmp_path / "again"
    code = main(["evaluate", "--checkpoint", str(tiny_model_dir), "--data", str(prepared_dataset), "--out", str(out),
                 "--num", str(NUM), "--seed", "3", "--batch-size", "4", "--no-progress", "--compare", str(report_dir)])
    assert code == 0
    stdout = capsys.readouterr().out
    first, second = _report(report_dir), _report(out)
    # MediaPipe's verdicts are identical; pixel values may differ by a rounding step between batch sizes
    for section in ("pose", "realism"):
        assert second[section] == first[section], section
    for key in ("samples_pairwise_l1", "real_pairwise_l1"):
        assert second["diversity"][key] == pytest.approx(first["diversity"][key], rel=1e-3)
    for key in ("psnr", "ssim", "bits_per_dim"):
        assert second["reconstruction"][key]["mean"] == pytest.approx(first["reconstruction"][key]["mean"], rel=1e-5)
    for region in ("person", "face", "hand"):
        a, b = second["sharpness"][region]["samples"], first["sharpness"][region]["samples"]
        assert (a is None and b is None) or a == pytest.approx(b, rel=1e-2), region
    # side by side on the terminal and in the markdown
    assert "this run" in stdout and "PCK@0.1 ceiling (real)" in stdout and "+0.000" in stdout
    md = (out / "report.md").read_text()
    assert "## Comparison" in md and "| PCK@0.1 samples z~prior |" in md
    assert second["compared_with"] == str(report_dir)
    # the comparison also works from the API, reading the report from its directory
    assert "PSNR (dB)" in comparison_text(second, load_report(report_dir))
    # the model card now holds this run's numbers, with links that lead to its pictures
    card_path = tiny_model_dir / "README.md"
    assert f"updated the model card {card_path}" in stdout
    card = card_path.read_text()
    assert f"| pose PCK@0.1, random appearance | {second['pose']['samples']['pck@0.1']:.3f} |" in card
    link = card.split("![pose](", 1)[1].split(")", 1)[0]
    assert (tiny_model_dir / link).resolve() == (out / "pose.png").resolve()


@pytest.mark.slow
def test_sharpness_entries_and_the_face_and_hand_sheet(report_dir, prepared_dataset):
    """report.json holds the sharpness of people, faces and hands for each generated set beside the
    real images; the real people's value is recomputed here with OpenCV's Laplacian."""
    import cv2

    r = _report(report_dir)
    sharp = r["sharpness"]
    assert "Laplacian" in sharp["definition"] and "re-detected" in sharp["placement"]
    for region in ("person", "face", "hand"):
        entry = sharp[region]
        for name in ("samples", "reconstructions", "random"):
            assert f"{name}_ratio" in entry and name in entry, (region, name)
        assert set(entry["images"]) == {"real", "samples", "reconstructions", "random"}
    person = sharp["person"]
    assert person["real"] > 0 and person["images"]["real"] == r["data"]["samples"]
    if person["samples"] is not None:  # None: the tiny model's alpha nowhere reached 0.5
        assert person["samples"] >= 0
        assert person["samples_ratio"] == pytest.approx(person["samples"] / person["real"])

    indices = r["data"]["indices"]
    images = np.load(prepared_dataset / "images.npy", mmap_mode="r")[indices].astype(np.float64) / 255.0
    masks = np.load(prepared_dataset / "masks.npy", mmap_mode="r")[indices] >= 128
    values = []
    for image, mask in zip(images, masks):
        luma = image @ np.array([0.299, 0.587, 0.114])
        lap = cv2.Laplacian(luma, cv2.CV_64F, ksize=1)[1:-1, 1:-1]
        values.append((lap[mask[1:-1, 1:-1]] ** 2).mean())
    assert person["real"] == pytest.approx(float(np.mean(values)), rel=1e-6)

    # At half resolution: OpenCV's area resize, its Laplacian, the half-covered coarse pixels.
    coarse_values = []
    for image, mask in zip(images, masks):
        half = lambda a: cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA)  # noqa: E731
        luma = half(image) @ np.array([0.299, 0.587, 0.114])
        lap = cv2.Laplacian(luma, cv2.CV_64F, ksize=1)[1:-1, 1:-1]
        inside = (half(mask.astype(np.float64)) >= 0.5)[1:-1, 1:-1]
        coarse_values.append((lap[inside] ** 2).mean())
    assert set(sharp) >= {"person_coarse", "face_coarse", "hand_coarse"}
    assert sharp["person_coarse"]["real"] == pytest.approx(float(np.mean(coarse_values)), rel=1e-6)

    md = (report_dir / "report.md").read_text()
    assert "## Sharpness" in md and "| face |" in md and "| person, half resolution |" in md and "](faces.png)" in md
    with Image.open(report_dir / r["pictures"]["faces"]) as im:
        assert im.format == "PNG" and im.width >= 64 and im.height >= 2 * 64  # real crops above the samples'


@pytest.mark.slow
def test_nearest_training_images_of_random_samples_beside_held_out_ones(report_dir, prepared_dataset):
    """The held-out images' nearest training images are recomputed here from block means
    over the train split and its mirror images (the tiny model trained with flips); the random
    samples' closest pairs are listed in order, and drawn in nearest.png."""
    from poseguide.dataset import validate_dataset
    from poseguide.nearest import THUMB_SIDE

    r = _report(report_dir)
    near = r["nearest_training"]
    info = validate_dataset(prepared_dataset)
    assert near["skipped"] is False and near["mirrored"] is True
    assert near["training_images"] == len(info.train_indices)
    assert near["random"]["n"] == near["held_out"]["n"] == near["reconstructions"]["n"] == r["data"]["samples"]
    assert near["ratio_to_reconstructions"]["median"] == pytest.approx(
        near["random"]["median"] / near["reconstructions"]["median"])
    copies = near["training_reconstructions"]
    assert copies["n"] == min(32, len(info.train_indices))
    assert near["normalised"]["median"] == pytest.approx(
        (near["random"]["median"] - copies["median"]) / (near["reconstructions"]["median"] - copies["median"]))

    all_images = np.load(prepared_dataset / "images.npy")

    def thumbs(images):  # the mean of each 8x8 block of a 128 px image
        block = images.shape[1] // THUMB_SIDE
        return (images.astype(np.float64) / 255.0).reshape(
            len(images), THUMB_SIDE, block, THUMB_SIDE, block, 3).mean((2, 4)).reshape(len(images), -1)

    train = thumbs(all_images[info.train_indices])
    train = np.concatenate([train, thumbs(all_images[info.train_indices][:, :, ::-1])])
    held_out = thumbs(all_images[r["data"]["indices"]])
    dist = np.sqrt(((held_out[:, None] - train[None]) ** 2).mean(-1)).min(1)
    assert near["held_out"]["median"] == pytest.approx(float(np.median(dist)), rel=1e-6)
    assert near["held_out"]["min"] == pytest.approx(float(dist.min()), rel=1e-6)
    assert near["held_out"]["min"] > 0  # held-out images are not in the train split
    assert near["ratio"]["median"] == pytest.approx(near["random"]["median"] / near["held_out"]["median"])

    closest = near["closest"]
    assert len(closest) == min(8, r["data"]["samples"])
    assert [c["distance"] for c in closest] == sorted(c["distance"] for c in closest)
    assert closest[0]["distance"] == pytest.approx(near["random"]["min"])
    assert all(int(c["training_index"]) in set(info.train_indices.tolist()) for c in closest)

    md = (report_dir / "report.md").read_text()
    assert "## Does the model copy its training set?" in md and "| ratio random / held-out |" in md
    assert r["pictures"]["nearest"] == "nearest.png" and "](nearest.png)" in md
    with Image.open(report_dir / "nearest.png") as im:  # samples, their matches, held-out, their matches
        assert im.height >= 4 * r["model"]["image_size"]


def test_samples_that_are_training_images_read_as_copies(prepared_dataset):
    """What a copying model would draw: its training images themselves. They sit at distance 0
    from the train split, so the ratio to held-out photos is 0; evaluated on the train split
    itself there is no held-out scale, and the report says so."""
    from poseguide.dataset import validate_dataset
    from poseguide.evaluate import EvalSettings, nearest_training_scores

    info = validate_dataset(prepared_dataset)
    images = np.load(prepared_dataset / "images.npy")
    copied = info.train_indices[[4, 0, 2]]
    held_out = images[info.val_indices]
    section, near, near_real = nearest_training_scores(info, images[copied], held_out, held_out, images[copied],
                                                       mirror=True, settings=EvalSettings())
    assert section["random"]["median"] == 0.0 and section["ratio"]["median"] == 0.0
    assert section["training_reconstructions"]["median"] == 0.0 and section["normalised"]["median"] == 0.0
    assert section["held_out"]["min"] > 0 and section["reconstructions"] == section["held_out"]
    assert sorted(c["training_index"] for c in section["closest"]) == sorted(copied.tolist())
    assert near.index.tolist() == copied.tolist() and len(near_real.distance) == len(held_out)
    # held-out photos drawn as samples sit at the new-people end of the scale
    section = nearest_training_scores(info, held_out, held_out, held_out, images[copied], mirror=True,
                                      settings=EvalSettings())[0]
    assert section["ratio"]["median"] == 1.0 and section["normalised"]["median"] == 1.0
    section, near, near_real = nearest_training_scores(info, images[copied], images[copied], images[copied],
                                                       images[copied], mirror=False, settings=EvalSettings(split="train"))
    assert near_real is None and section["held_out"]["n"] == 0 and math.isnan(section["ratio"]["median"])
    assert math.isnan(section["normalised"]["median"])
    assert "no held-out scale" in section["held_out_note"]


# --- one-line errors, exit status 2 --------------------------------------------------------------


def _error(capsys, *args) -> str:
    code = main(["evaluate", *map(str, args), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_missing_checkpoint_and_dataset_are_one_line_errors(tmp_path, prepared_dataset, tiny_model_dir, capsys):
    assert "no such model directory" in _error(capsys, "--checkpoint", tmp_path / "nope", "--data", prepared_dataset)
    assert "config.json" in _error(capsys, "--checkpoint", tmp_path, "--data", prepared_dataset)
    assert "dataset" in _error(capsys, "--checkpoint", tiny_model_dir, "--data", tmp_path / "nodata")
    assert "--num" in _error(capsys, "--checkpoint", tiny_model_dir, "--data", prepared_dataset, "--num", 0)


def test_incompatible_model_and_dataset_is_a_one_line_error(tmp_path, prepared_dataset, capsys):
    from poseguide.framing import FramingSettings
    from poseguide.model import ModelConfig, PoseCVAE

    small = PoseCVAE(ModelConfig(image_size=64, channels=(8, 8), latent_dim=4, pose_latent_dim=2, head_channels=4, condition_size=16))
    extra = {"framing": FramingSettings().to_dict(), "data": {"image_size": 64, "background": [128, 128, 128]}}
    small.save_pretrained(tmp_path / "m64", extra_config=extra)
    line = _error(capsys, "--checkpoint", tmp_path / "m64", "--data", prepared_dataset)
    assert "64" in line and "128" in line
    # a model trained on differently framed crops cannot be scored on these
    other = PoseCVAE(ModelConfig(image_size=128, channels=(8, 8), latent_dim=4, pose_latent_dim=2, head_channels=4, condition_size=16))
    extra = {"framing": FramingSettings(fill=0.5).to_dict(), "data": {"image_size": 128, "background": [128, 128, 128]}}
    other.save_pretrained(tmp_path / "loose", extra_config=extra)
    assert "framed" in _error(capsys, "--checkpoint", tmp_path / "loose", "--data", prepared_dataset)
    # a training checkpoint instead of an exported model
    (tmp_path / "run" / "checkpoints" / "checkpoint-10").mkdir(parents=True)
    assert "export" in _error(capsys, "--checkpoint", tmp_path / "run" / "checkpoints" / "checkpoint-10",
                              "--data", prepared_dataset)


def test_bad_compare_and_missing_inception_weights_fail_before_any_work(tmp_path, prepared_dataset, tiny_model_dir, capsys):
    bad = tmp_path / "report.json"
    bad.write_text(json.dumps({"format": "something-else"}))
    assert "not a poseguide evaluation report" in _error(
        capsys, "--checkpoint", tiny_model_dir, "--data", prepared_dataset, "--compare", bad)
    assert "no such report" in _error(
        capsys, "--checkpoint", tiny_model_dir, "--data", prepared_dataset, "--compare", tmp_path / "none")
    assert "no such file" in _error(
        capsys, "--checkpoint", tiny_model_dir, "--data", prepared_dataset, "--inception-weights", tmp_path / "w.pth",
        "--out", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_fid_with_local_inception_weights(tmp_path, tiny_model_dir, prepared_dataset):
    """Runs only where a real Inception weights file is available offline
    (POSEGUIDE_INCEPTION_WEIGHTS=path, plus the torch-fidelity package); nothing is faked."""
    weights = os.environ.get("POSEGUIDE_INCEPTION_WEIGHTS")
    if not weights or not Path(weights).is_file():
        pytest.skip("no local Inception weights (set POSEGUIDE_INCEPTION_WEIGHTS); FID cannot run offline")
    pytest.importorskip("torch_fidelity")
    out = tmp_path / "fid"
    run_cli("evaluate", "--checkpoint", tiny_model_dir, "--data", prepared_dataset, "--out", out, "--num", NUM,
            "--inception-weights", weights, "--no-progress")
    fid = _report(out)["fid"]
    assert fid["skipped"] is False
    assert math.isfinite(fid["samples"]["fid"]) and fid["samples"]["fid"] >= 0
    assert "FID and KID were" not in (out / "report.md").read_text()


# --- where things go, and the README results script ------------------------------------------------


def test_model_dir_and_default_report_dir(tmp_path, tiny_model_dir):
    from poseguide.evaluate import default_out_dir, resolve_model_dir

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}")
    (run / "config.yaml").write_text("")
    assert resolve_model_dir(run) == run / "model"
    assert resolve_model_dir(tiny_model_dir.parent) == tiny_model_dir  # the tiny model's run dir
    assert default_out_dir(run / "model") == run / "eval"
    assert resolve_model_dir(tiny_model_dir) == tiny_model_dir
    assert default_out_dir(tmp_path / "mymodel") == tmp_path / "mymodel-eval"


@pytest.mark.slow
def test_make_results_writes_the_docs_table_pictures_loss_curve_and_readme_block(report_dir, tiny_model_dir,
                                                                                 prepared_dataset, tmp_path):
    import shutil
    import subprocess
    import sys

    from conftest import REPO_DIR

    run = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run / "model")
    (run / "samples").mkdir()
    for step, shade in ((2, 40), (10, 200)):
        Image.fromarray(np.full((8, 8, 3), shade, np.uint8)).save(run / "samples" / f"step-{step}.png")
    (run / "metrics.jsonl").write_text(
        "\n".join(json.dumps({"step": s, "train/loss": 1.0 / s, "train/rec": 0.5 / s, "train/kl": 3.0}) for s in range(1, 30))
        + "\n" + json.dumps({"step": 29, "val/loss": 0.05}) + "\n{\"step\": 3"  # a cut-short last line is ignored
    )
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nbefore\n<!-- results:start -->\nold table\n<!-- results:end -->\nafter\n")
    # --temperatures reads REPORT_DIR-T<t> with --reuse: a copy of the report, relabelled
    report = tmp_path / "eval"
    shutil.copytree(report_dir, report)
    shutil.copytree(report_dir, tmp_path / "eval-T1.5")
    hot = json.loads((tmp_path / "eval-T1.5" / "report.json").read_text())
    hot["settings"]["temperature"] = 1.5
    (tmp_path / "eval-T1.5" / "report.json").write_text(json.dumps(hot))
    docs = tmp_path / "docs"
    proc = subprocess.run(
        [sys.executable, "scripts/make_results.py", "--run", str(run), "--data", str(prepared_dataset),
         "--report-dir", str(report), "--reuse", "--docs", str(docs), "--readme", str(readme), "--temperatures", "1.5"],
        cwd=REPO_DIR, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    md = (docs / "results.md").read_text()
    r = _report(report_dir)
    t = r["settings"]["temperature"]
    assert f"| pose PCK@0.1, z from the prior (T={t:g}) | {r['pose']['samples']['pck@0.1']:.3f} | {r['pose']['ceiling']['pck@0.1']:.3f} |" in md
    for name in ("pose", "random", "reconstructions", "diversity", "loss"):
        assert (docs / "results" / f"{name}.png").is_file(), name
        assert f"(results/{name}.png)" in md
    hero = np.asarray(Image.open(docs / "results" / "hero.png"))
    assert hero.shape[0] > 3 * 128 and hero.std() > 5  # three rows of 128 px tiles, not blank
    # the newest training grid by step number, not by name (step-10 sorts before step-2)
    assert (docs / "results" / "samples.png").read_bytes() == (run / "samples" / "step-10.png").read_bytes()
    assert "(results/samples.png)" in md
    text = readme.read_text()
    assert "old table" not in text and "before" in text and "after" in text
    assert f"| pose PCK@0.05, z from the prior (T={t:g}) |" in text and text.count("<!-- results:start -->") == 1
    sweep = text[text.index("| temperature |"):]
    assert sweep.index("| 1.5 |") < sweep.index(f"| {t:g} | {r['pose']['samples']['pck@0.1']:.3f} |") < sweep.index("| 0 (z = prior mean) |")


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory) -> Path:
    """A tiny 128 px model saved as training exports one, never trained: the checks below
    all come before the model draws anything."""
    from poseguide.framing import FramingSettings
    from poseguide.model import ModelConfig, PoseCVAE

    model = PoseCVAE(ModelConfig(image_size=128, channels=(8, 8), latent_dim=4, pose_latent_dim=2, head_channels=4, condition_size=16))
    extra = {"framing": FramingSettings().to_dict(), "data": {"image_size": 128, "background": [128, 128, 128]}}
    out = tmp_path_factory.mktemp("untrained") / "model"
    model.save_pretrained(out, extra_config=extra)
    return out


BEFORE_WORK = ("negative temperature", "hot temperature", "huge seed", "out in /proc", "out under a file", "out is a file",
               "compare without keys", "compare nested deep", "compare with a huge number")


@pytest.mark.parametrize("name", BEFORE_WORK)
def test_bad_settings_out_and_compare_fail_in_one_line_before_any_work(tmp_path, prepared_dataset, untrained_model, capsys, name):
    (tmp_path / "file.txt").write_text("a file\n")
    keyless = tmp_path / "keyless.json"
    keyless.write_text(json.dumps({"format": REPORT_FORMAT, "version": 1, "pose": {}}))
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"format": REPORT_FORMAT, "version": 1, "model": {"dir": "m"},
                                "pose": {"samples": {"pck@0.1": 10**400}}}))
    cases = {
        "negative temperature": (["--temperature", -1], "--temperature must be between 0 and 10, got -1"),
        "hot temperature": (["--temperature", 1e30], "--temperature must be between 0 and 10"),
        "huge seed": (["--seed", 10**23], "--seed must be between 0 and 2**63-1"),
        "out in /proc": (["--out", "/proc/poseguide-eval"], "--out /proc/poseguide-eval: cannot write there"),
        "out under a file": (["--out", tmp_path / "file.txt" / "out"], "file.txt is a file, not a directory"),
        "out is a file": (["--out", tmp_path / "file.txt"], "file.txt: exists and is not a directory"),
        "compare without keys": (["--compare", keyless], "keyless.json: has no model.dir"),
        "compare nested deep": (["--compare", deep], "deep.json: not valid JSON (nested too deeply)"),
        "compare with a huge number": (["--compare", huge], "pose/samples/pck@0.1 is too large a number"),
    }
    assert set(cases) == set(BEFORE_WORK)
    args, message = cases[name]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    argv = ["--checkpoint", untrained_model, "--data", prepared_dataset, *args]
    if "--out" not in args:
        argv += ["--out", tmp_path / "report"]
    line = _error(capsys, *argv)
    assert message in line, line
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "it wrote something"


def test_generate_and_evaluate_share_one_sampling_check():
    from poseguide.evaluate import EvalSettings, EvaluationError
    from poseguide.generate import GenerateError, check_sampling

    for seed, temperature in ((0, -1.0), (0, float("nan")), (0, 11.0), (-1, 0.7), (2**64, 0.7)):
        with pytest.raises(GenerateError) as gen:
            check_sampling(seed, temperature)
        with pytest.raises(EvaluationError) as ev:
            EvalSettings(seed=seed, temperature=temperature)
        assert str(gen.value) == str(ev.value)
    EvalSettings(seed=2**63 - 1, temperature=10.0)


@pytest.mark.slow
def test_before_after_sheet_draws_evaluates_people_with_the_same_noise(tmp_path, report_dir, tiny_model_dir,
                                                                       prepared_dataset):
    """scripts/before_after.py: the real row holds the held-out people evaluate chose for the same
    --num and --seed, and one model given twice draws two identical rows (the same latents)."""
    import subprocess
    import sys

    out = tmp_path / "sheet.png"
    script = Path(__file__).resolve().parents[1] / "scripts" / "before_after.py"
    proc = subprocess.run([sys.executable, script, prepared_dataset, tiny_model_dir, tiny_model_dir, "--labels", "a",
                           "b", "--out", out, "--num", str(NUM), "--seed", "3", "--columns", "3"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    sheet = np.asarray(Image.open(out).convert("RGB"))
    size, caption, pad = 128, 16, 2
    rows = [sheet[pad + r * (size + caption + pad):][:size] for r in range(3)]
    tiles = [[row[:, pad + c * (size + pad):][:, :size] for c in range(3)] for row in rows]
    indices = _report(report_dir)["data"]["indices"]
    images = np.load(prepared_dataset / "images.npy", mmap_mode="r")
    for c in range(3):
        np.testing.assert_array_equal(tiles[0][c], images[indices[c]])
        np.testing.assert_array_equal(tiles[1][c], tiles[2][c])
    assert not np.array_equal(tiles[0][0], tiles[1][0])  # the model's drawing, not the photo again

    bad = subprocess.run([sys.executable, script, prepared_dataset, tmp_path / "nothing"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
