"""End to end through the real CLI: bad inputs, resume after Ctrl-C, idempotent reruns,
append, determinism across worker counts, `poseguide pose` and `poseguide show`."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO_DIR, no_permission_prefix, run_cli

from poseguide import landmarks as lm

pytestmark = pytest.mark.slow


def _same_dataset(a: Path, b: Path) -> None:
    for name in ("images", "masks", "landmarks"):
        x, y = np.load(a / f"{name}.npy"), np.load(b / f"{name}.npy")
        assert x.shape == y.shape and np.array_equal(x, y), name
    assert (a / "samples.csv").read_text() == (b / "samples.csv").read_text()
    assert (a / "skipped.csv").read_text() == (b / "skipped.csv").read_text()
    ma, mb = json.loads((a / "manifest.json").read_text()), json.loads((b / "manifest.json").read_text())
    assert ma["counts"] == mb["counts"]


def test_bad_inputs_are_skipped_with_reasons(tmp_path, vtest_frames):
    inputs = tmp_path / "photos"
    (inputs / "nested").mkdir(parents=True)
    good = [vtest_frames[0], vtest_frames[4]]
    for f in good:
        shutil.copy(f, inputs / "nested" / f.name)
    data = vtest_frames[1].read_bytes()
    (inputs / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (inputs / "zero.jpg").write_bytes(b"")
    (inputs / "notes.jpg").write_text("not a photo at all\n")
    (inputs / "broken.avi").write_bytes(os.urandom(20000))
    (inputs / "README.txt").write_text("ignored: not a media file\n")
    expected = {
        "truncated.jpg": "truncated",
        "zero.jpg": "empty file",
        "notes.jpg": "not an image",
        "broken.avi": "video",
    }
    prefix = no_permission_prefix()
    if prefix is not None:
        locked = inputs / "locked.jpg"
        shutil.copy(vtest_frames[2], locked)
        locked.chmod(0)
        expected["locked.jpg"] = "permission denied"
    out = tmp_path / "data"
    proc = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "poseguide.cli", "prepare", str(inputs), "--out", str(out), "--all-people", "--no-progress"],
        cwd=REPO_DIR, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out / "skipped.csv", newline="") as f:
        bad = {Path(r["source"]).name: r["detail"] for r in csv.DictReader(f) if r["reason"] == "bad_input"}
    assert set(bad) == set(expected)
    for name, reason in expected.items():
        assert reason in bad[name], (name, bad[name])
        assert f"bad input: {inputs / name}" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["skipped"]["bad_input"] == len(expected)
    assert manifest["counts"]["samples"] >= 4
    with open(out / "samples.csv", newline="") as f:
        assert {Path(r["source"]).name for r in csv.DictReader(f)} == {f.name for f in good}


def test_nothing_usable_exits_nonzero_with_one_line(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "zero.jpg").write_bytes(b"")
    cv2.imwrite(str(tmp_path / "in" / "grey.png"), np.full((240, 320, 3), 128, np.uint8))
    proc = run_cli("prepare", tmp_path / "in", "--out", tmp_path / "data", "--workers", "1", "--no-progress", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: no usable person samples") and "no_person 1" in lines[-1]
    assert "bad_input 1" in lines[-1]
    assert (tmp_path / "data" / "skipped.csv").exists()


def test_resume_after_ctrl_c_gives_the_same_dataset(tmp_path, prepared_dataset, vtest_frames):
    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "poseguide.cli", "prepare", str(vtest_frames[0].parent), "--out", str(out),
           "--workers", "2", "--all-people", "--no-progress"]
    # As from a terminal: a test run started in the background (`cmd &`, nohup, some CI
    # runners) passes SIGINT down as ignored, and Python then rightly ignores Ctrl-C too.
    proc = subprocess.Popen(cmd, cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    shards = out / "shards"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        # Interrupt as soon as the first unit is written: 13 of 14 remain (a few seconds of
        # work), so a busy CI machine cannot finish the run before the signal lands.
        if shards.is_dir() and any(shards.glob("*.npz")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "prepare finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    done = len(list(shards.glob("*.npz")))
    assert 1 <= done < 14
    assert not (out / "manifest.json").exists()

    resumed = run_cli("prepare", vtest_frames[0].parent, "--out", out, "--workers", "1", "--all-people", "--no-progress")
    assert f"processed {14 - done} new of 14 units" in resumed.stdout
    _same_dataset(out, prepared_dataset)  # also: 1 + 2 workers == 2 workers


def test_append_and_idempotent_rerun(tmp_path, prepared_dataset, vtest_frames):
    out = tmp_path / "data"
    run_cli("prepare", *vtest_frames[:10], "--out", out, "--workers", "1", "--all-people", "--no-progress")
    first = json.loads((out / "manifest.json").read_text())["counts"]["samples"]
    more = run_cli("prepare", *vtest_frames[10:], "--out", out, "--workers", "1", "--all-people", "--no-progress")
    assert "processed 4 new of 14 units" in more.stdout
    assert json.loads((out / "manifest.json").read_text())["counts"]["samples"] > first
    _same_dataset(out, prepared_dataset)  # appending == preparing everything at once (1 vs 2 workers)

    again = run_cli("prepare", vtest_frames[0].parent, "--out", out, "--workers", "2", "--all-people", "--no-progress")
    assert "processed 0 new of 14 units" in again.stdout
    _same_dataset(out, prepared_dataset)  # no duplicates

    bad = run_cli("prepare", vtest_frames[0], "--out", out, "--size", "64", "--no-progress", check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "size was 128, now 64" in bad.stderr


def test_pose_writes_a_keypoints_file(tmp_path, vtest_frames):
    path = tmp_path / "kp.json"
    run_cli("pose", vtest_frames[0], "-o", path)
    data = json.loads(path.read_text())
    assert data["format"] == "mediapipe-pose-33" and data["image_size"] == [768, 576]
    assert [p["name"] for p in data["landmarks"]] == list(lm.NAMES)
    assert set(data["landmarks"][0]) == {"name", "x", "y", "z", "visibility"}
    kp = lm.read_keypoints(path)
    lm.require_visible(kp.landmarks)
    assert ((kp.landmarks[:, :2] >= 0) & (kp.landmarks[:, :2] <= 1)).all()

    grey = tmp_path / "empty-scene.png"
    cv2.imwrite(str(grey), np.full((240, 320, 3), 128, np.uint8))
    proc = run_cli("pose", grey, "-o", tmp_path / "none.json", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "no person" in proc.stderr and not (tmp_path / "none.json").exists()


def test_show_writes_a_contact_sheet(tmp_path, prepared_dataset):
    sheet = tmp_path / "sheet.png"
    proc = run_cli("show", prepared_dataset, "-o", sheet, "--num", "6", "--split", "val")
    assert "wrote" in proc.stdout
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[0] > 128 and image.shape[1] > 128
    proc = run_cli("show", tmp_path, check=False)
    assert proc.returncode == 2 and "not a prepared dataset" in proc.stderr


# Sampled frames of vtest.avi where the man in the red and navy jacket is in the picture, found by
# following him through the whole video and checked by eye; he is cut from frame 60 as the reference.
RED_JACKET_FRAMES = {60, 120, 300, 360, 600, 660, 720, 780}


def test_who_is_kept_changes_without_redoing_the_work(tmp_path, prepared_dataset, vtest_frames):
    out = tmp_path / "data"
    shutil.copytree(prepared_dataset, out)
    everyone = json.loads((out / "manifest.json").read_text())["counts"]["samples"]

    # Without references, each photo keeps its main subject; the rest are listed, not redone.
    proc = run_cli("prepare", vtest_frames[0].parent, "--out", out, "--workers", "1", "--no-progress")
    assert "processed 0 new" in proc.stdout
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["samples"] <= len(vtest_frames)
    assert counts["skipped"]["other_person"] == everyone - counts["samples"]
    assert cv2.imread(str(out / "selection.png")) is not None

    # By reference: only the man in the red jacket, wherever he is.
    frame = cv2.imread(str(vtest_frames[1]))
    assert vtest_frames[1].name == "frame-0060.jpg"
    reference = tmp_path / "me.png"
    cv2.imwrite(str(reference), cv2.resize(frame[185:315, 410:550], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
    proc = run_cli("prepare", vtest_frames[0].parent, "--out", out, "--workers", "1", "--no-progress", "--reference", reference)
    with open(out / "samples.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    kept = {int(Path(r["source"]).stem.split("-")[1]) for r in rows}
    assert 60 in kept and kept <= RED_JACKET_FRAMES and len(kept) >= 2
    assert all(0.0 <= float(r["identity_distance"]) <= 0.8 for r in rows)  # the default limit
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["selection"]["references"] == [str(reference)]
    # the unit the limit is in, and what it was measured on, are said and kept
    assert manifest["selection"]["lookalike_distance"] > 0 and manifest["selection"]["known_others"] > 0
    assert "look-alikes begin" in proc.stdout and "people known to be someone else" in proc.stdout

    # A reference photo with nobody in it: one line, and the dataset as it was.
    before = (out / "samples.csv").read_text()
    empty = tmp_path / "empty.png"
    cv2.imwrite(str(empty), np.full((200, 200, 3), 90, np.uint8))
    proc = run_cli("prepare", vtest_frames[0].parent, "--out", out, "--no-progress", "--reference", empty, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "--reference" in proc.stderr and "empty.png" in proc.stderr
    assert (out / "samples.csv").read_text() == before

    # Photos have no tracks to draw.
    proc = run_cli("show", out, "--people", check=False)
    assert proc.returncode == 2 and "no tracked people" in proc.stderr


def test_reference_matches_by_face_where_faces_are_large_enough(tmp_path):
    # The bearded man of basketball1.png is in basketball2.png too; messi5.jpg is someone else.
    faces = REPO_DIR / "tests" / "data" / "faces"
    inputs = tmp_path / "photos"
    inputs.mkdir()
    for name in ("basketball1.png", "basketball2.png", "messi5.jpg"):
        shutil.copy(faces / name, inputs / name)
    reference = tmp_path / "him.png"
    cv2.imwrite(str(reference), cv2.imread(str(faces / "basketball1.png"))[40:420, 0:300])
    out = tmp_path / "data"
    run_cli("prepare", inputs, "--out", out, "--workers", "1", "--no-progress", "--reference", reference)
    with open(out / "samples.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(Path(r["source"]).name for r in rows) == ["basketball1.png", "basketball2.png"]
    assert {r["identity_by"] for r in rows} == {"face"}
    with open(out / "skipped.csv", newline="") as f:
        skipped = [r for r in csv.DictReader(f) if r["reason"] == "other_person"]
    assert [Path(r["source"]).name for r in skipped] == ["messi5.jpg"]


def test_half_body_shots_are_kept_with_their_legs_hidden(tmp_path):
    # basketball1.png shows a man down to his shins; cut at the belt it is a half-body shot, for
    # which MediaPipe still draws legs, inside the picture.
    photo = cv2.imread(str(REPO_DIR / "tests" / "data" / "faces" / "basketball1.png"))[:, :320]
    inputs = tmp_path / "photos"
    inputs.mkdir()
    cv2.imwrite(str(inputs / "whole.png"), photo)
    cv2.imwrite(str(inputs / "waist-up.png"), photo[:260])
    out = tmp_path / "data"
    proc = run_cli("prepare", inputs, "--out", out, "--workers", "1", "--no-progress")
    assert "1 half-body sample" in proc.stdout
    with open(out / "samples.csv", newline="") as f:
        names = [Path(r["source"]).name for r in csv.DictReader(f)]
    poses = np.load(out / "landmarks.npy")
    legs = {name: poses[i][[25, 26, 27, 28], 3] for i, name in enumerate(names)}
    assert (legs["waist-up.png"] == 0).all()
    assert (legs["whole.png"] >= 0.5).sum() >= 2  # the knees at least
    assert json.loads((out / "manifest.json").read_text())["half_body"] == 1
