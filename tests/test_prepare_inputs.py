"""prepare's checks of what it is given, through the real CLI: file names that are not
UTF-8, folders it cannot list, and options out of range. A bad option or input is one
line before any work, and leaves no new --out folder behind."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO_DIR, no_permission_prefix, one_error_line, run_cli

from poseguide.dataset import validate_dataset
from poseguide.datasetdir import name_path, name_text
from poseguide.prepare import PrepareError, PrepareSettings



def _skips(out) -> list[dict]:
    with open(out / "skipped.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--size", "100000", "--size must be a multiple of 32 from 64 to 1024"),
        ("--size", "100", "--size must be a multiple of 32"),
        ("--size", "32", "--size must be a multiple of 32"),
        ("--min-mask-agreement", "nan", "--min-mask-agreement must be in [0, 1]"),
        ("--min-mask-agreement", "1.5", "--min-mask-agreement must be in [0, 1]"),
        ("--min-person-px", "-1", "--min-person-px must be"),
        ("--min-person-px", "inf", "--min-person-px must be"),
        ("--val-fraction", "nan", "--val-fraction must be in [0, 1)"),
    ],
)
def test_options_out_of_range_are_one_line_before_any_work(tmp_path, vtest_frames, option, value, message):
    out = tmp_path / "data"
    proc = run_cli("prepare", vtest_frames[0], "--out", out, option, value, "--no-progress", check=False)
    one_error_line(proc, message)
    assert not out.exists()


def test_sizes_the_model_trains_at_are_accepted():
    for size in (64, 96, 128, 256, 1024):
        assert PrepareSettings(size=size).size == size
    for size in (16, 48, 100, 1056):
        with pytest.raises(PrepareError, match="--size"):
            PrepareSettings(size=size)


def test_input_errors_leave_no_out_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not media\n")
    out = tmp_path / "data"
    proc = run_cli("prepare", tmp_path / "missing.jpg", "--out", out, "--no-progress", check=False)
    one_error_line(proc, "input not found")
    proc = run_cli("prepare", tmp_path / "empty", "--out", out, "--no-progress", check=False)
    one_error_line(proc, "no image or video files found")
    assert not out.exists()


def test_file_names_that_are_not_utf8_are_prepared_or_skipped(tmp_path, vtest_frames):
    """Names in the tables and manifest read as Python shows bytes (caf\\xe9.jpg), map back
    to their files, and the dataset resumes, shows and validates for training."""
    inputs = tmp_path / "photos"
    inputs.mkdir()
    good = os.fsdecode(b"caf\xe9.jpg")  # Latin-1, as copied from an old camera card
    bad = os.fsdecode(b"\xff\xfe broken.jpg")
    shutil.copy(vtest_frames[0], inputs / good)
    (inputs / bad).write_bytes(b"not a photo")
    out = tmp_path / "data"
    proc = run_cli("prepare", inputs, "--out", out, "--workers", "1", "--no-progress")
    assert f"bad input: {inputs}/\\xff\\xfe broken.jpg: " in proc.stdout
    with open(out / "samples.csv", newline="", encoding="utf-8") as f:
        sources = {row["source"] for row in csv.DictReader(f)}
    assert sources == {f"{inputs}/caf\\xe9.jpg"}
    assert name_path(sources.pop()) == str(inputs / good)
    assert [(s["source"], s["reason"]) for s in _skips(out) if s["reason"] == "bad_input"] == [
        (f"{inputs}/\\xff\\xfe broken.jpg", "bad_input")
    ]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["samples"] >= 1
    assert sorted(name_path(s["path"]) for s in manifest["sources"]) == sorted([str(inputs / bad), str(inputs / good)])
    again = run_cli("prepare", inputs, "--out", out, "--workers", "1", "--no-progress")
    assert "processed 0 new of 2 units" in again.stdout
    run_cli("show", out, "--num", "2")
    assert (out / "contact-sheet.png").stat().st_size > 0
    assert validate_dataset(out, image_size=128).num_samples == manifest["counts"]["samples"]  # what training reads


def test_names_round_trip_through_their_stored_text():
    names = [b"caf\xc3\xa9.jpg", b"caf\xe9.jpg", b"\xff\xfe", b"a\\xe9b", b"back\\slash\\", b"plain.jpg"]
    shown = [name_text(os.fsdecode(name)) for name in names]
    assert shown == ["caf\u00e9.jpg", "caf\\xe9.jpg", "\\xff\\xfe", "a\\\\xe9b", "back\\\\slash\\\\", "plain.jpg"]
    assert [os.fsencode(name_path(text)) for text in shown] == names
    for text in shown:
        text.encode("utf-8")  # plain text: no lone surrogates


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path, vtest_frames):
    prefix = no_permission_prefix()
    if prefix is None:
        pytest.skip("running as root without setpriv: every folder is readable")
    inputs = tmp_path / "photos"
    (inputs / "locked").mkdir(parents=True)
    shutil.copy(vtest_frames[0], inputs / vtest_frames[0].name)
    shutil.copy(vtest_frames[1], inputs / "locked" / vtest_frames[1].name)
    (inputs / "locked").chmod(0)

    def prepare(*paths, out):
        return subprocess.run(
            [*prefix, sys.executable, "-m", "poseguide.cli", "prepare", *map(str, paths), "--out", str(out),
             "--workers", "1", "--no-progress"],
            cwd=REPO_DIR, capture_output=True, text=True, timeout=300,
        )

    try:
        out = tmp_path / "data"
        proc = prepare(inputs, out=out)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"bad input: {inputs / 'locked'}: cannot list folder (Permission denied)" in proc.stdout
        assert {"source": str(inputs / "locked"), "frame": "0", "reason": "bad_input",
                "detail": "cannot list folder (Permission denied)"} in _skips(out)

        alone = tmp_path / "alone"
        proc = prepare(inputs / "locked", out=alone)
        one_error_line(proc, "no image or video files found", "cannot list folder (Permission denied)")
        assert not alone.exists()
    finally:
        (inputs / "locked").chmod(0o755)

    # readable again: the folder's photo is prepared and the report is gone
    proc = run_cli("prepare", inputs, "--out", out, "--workers", "1", "--no-progress")
    assert "processed 1 new of 2 units" in proc.stdout and "bad input" not in proc.stdout
    assert all(s["reason"] != "bad_input" for s in _skips(out))


def test_a_video_whose_name_is_not_utf8_is_prepared(tmp_path, vtest_frames):
    import cv2

    inputs = tmp_path / "videos"
    inputs.mkdir()
    video = inputs / os.fsdecode(b"d\xe9fil\xe9.avi")
    writer = cv2.VideoWriter(str(tmp_path / "plain.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (768, 576))
    for frame in vtest_frames[:3]:
        writer.write(cv2.imread(str(frame)))
    writer.release()
    os.replace(tmp_path / "plain.avi", video)
    out = tmp_path / "data"
    proc = run_cli("prepare", inputs, "--out", out, "--workers", "1", "--no-progress")
    assert "bad input" not in proc.stdout
    with open(out / "samples.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and {row["source"] for row in rows} == {f"{inputs}/d\\xe9fil\\xe9.avi"}
    assert {row["frame"] for row in rows} <= {"0", "1", "2"}
    # people in a video are tracked, and drawn one tile per track
    assert min(int(row["track"]) for row in rows) == 0
    proc = run_cli("show", out, "--people")
    assert cv2.imread(str(out / "people.png")) is not None and "people" in proc.stdout
