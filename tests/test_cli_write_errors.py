"""Outputs that cannot be written, through the real CLI: a folder that is a file, a read-only
file system, /proc, a full disk. Each must be one `error:` line and exit 2, with no temp
files left and whatever was there before intact. Tests run as root, for whom a chmod'ed
folder is still writable, so real failures come from /proc, from paths under a regular file,
and from small tmpfs mounts (skipped where mounting is not permitted)."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import DATA_DIR, one_error_line, run_cli

pytestmark = pytest.mark.slow



def _temps(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob(".*") if p.is_file() and ".tmp" in p.name)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def mount_tmpfs(tmp_path):
    """mount_tmpfs(name, size) -> a fresh tmpfs of that size at tmp_path/name, unmounted after."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here to make a small or read-only file system: {proc.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, capture_output=True)


def _fill(where: Path, leave: int = 0) -> Path:
    """Fill the file system of `where` until fewer than `leave` bytes are free."""
    filler = where / "filler.bin"
    with open(filler, "wb") as f:
        for chunk in (1 << 16, 4096):
            while os.statvfs(where).f_bavail * os.statvfs(where).f_frsize >= leave + chunk:
                try:
                    f.write(b"\0" * chunk)
                    f.flush()
                except OSError as err:
                    assert err.errno == errno.ENOSPC
                    break
    return filler


def test_prepare_out_that_cannot_be_made(tmp_path, vtest_frames, mount_tmpfs):
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    cases = {
        tmp_path / "notes.txt" / "data": "not a directory",
        Path("/proc/version/data"): "not a directory",
        Path("/proc/poseguide-data"): "no such file or directory",
    }
    for out, reason in cases.items():
        proc = run_cli("prepare", vtest_frames[0], "--out", out, "--workers", "1", "--no-progress", check=False)
        one_error_line(proc, f"cannot write {out}", reason)
    assert (tmp_path / "notes.txt").read_text() == "a file, not a folder\n"

    ro = mount_tmpfs("ro", "1m")
    _read_only(ro)
    proc = run_cli("prepare", vtest_frames[0], "--out", ro / "data", "--workers", "1", "--no-progress", check=False)
    one_error_line(proc, str(ro / "data"), "read-only file system")
    assert list(ro.iterdir()) == []


def test_pose_output_that_cannot_be_written(tmp_path, vtest_frames, mount_tmpfs):
    (tmp_path / "notes.txt").write_text("x\n")
    (tmp_path / "poses").mkdir()
    (tmp_path / "poses" / "keep.json").write_text("{}\n")
    # refused before MediaPipe runs
    proc = run_cli("pose", vtest_frames[0], "-o", tmp_path / "poses", check=False)
    one_error_line(proc, "is a folder")
    proc = run_cli("pose", vtest_frames[0], "-o", tmp_path / "notes.txt" / "kp.json", check=False)
    one_error_line(proc, "notes.txt is not a folder")
    proc = run_cli("pose", vtest_frames[0], "-o", "/proc/version/kp.json", check=False)
    one_error_line(proc, "/proc/version is not a folder")
    # found only when the file is written
    proc = run_cli("pose", vtest_frames[0], "-o", "/proc/poseguide-kp.json", check=False)
    one_error_line(proc, "cannot write /proc/poseguide-kp.json", "no such file or directory")
    ro = mount_tmpfs("ro", "1m")
    _read_only(ro)
    proc = run_cli("pose", vtest_frames[0], "-o", ro / "kp.json", check=False)
    one_error_line(proc, f"cannot write {ro / 'kp.json'}", "read-only file system")
    assert sorted(p.name for p in (tmp_path / "poses").iterdir()) == ["keep.json"]
    assert (tmp_path / "notes.txt").read_text() == "x\n" and _temps(tmp_path) == []


def test_show_output_that_cannot_be_written(tmp_path, prepared_dataset, mount_tmpfs):
    (tmp_path / "sheet.png").mkdir()
    proc = run_cli("show", prepared_dataset, "-o", tmp_path / "sheet.png", "--num", "2", check=False)
    one_error_line(proc, "is a folder")
    proc = run_cli("show", prepared_dataset, "-o", "/proc/poseguide-sheet.png", "--num", "2", check=False)
    one_error_line(proc, "cannot write /proc/poseguide-sheet.png", "no such file or directory")
    assert list((tmp_path / "sheet.png").iterdir()) == []

    # the default output, inside a dataset on a read-only file system
    ro = mount_tmpfs("ro", "16m")
    shutil.copytree(prepared_dataset, ro / "data", ignore=shutil.ignore_patterns("shards"))
    _read_only(ro)
    proc = run_cli("show", ro / "data", "--num", "2", check=False)
    one_error_line(proc, f"cannot write {ro / 'data' / 'contact-sheet.png'}", "read-only file system")


def test_prepare_on_a_full_disk_keeps_the_dataset_and_resumes(prepared_dataset, mount_tmpfs):
    """A merge that does not fit, then a disk too full even for the state file: each is one
    line, no temp file, the previous dataset and its shards untouched; with space again, the
    same command finishes the job without redoing any unit."""
    used = sum(p.stat().st_size for p in prepared_dataset.rglob("*") if p.is_file())
    arrays = sum(p.stat().st_size for p in prepared_dataset.glob("*.npy"))
    fs = mount_tmpfs("small", f"{((used + arrays) >> 20) + 1}m")  # room for a second set of arrays
    out = fs / "data"
    shutil.copytree(prepared_dataset, out)
    before = _digests(out)
    command = ("prepare", DATA_DIR / "vtest", "--out", out, "--size", "128", "--workers", "1", "--all-people", "--no-progress")

    filler = _fill(fs, leave=256 << 10)  # room for the state file, not for new arrays
    proc = run_cli(*command, check=False)
    one_error_line(proc, "no space left on device", "run the same command again")
    assert _temps(out) == [] and _digests(out) == before

    filler.unlink()
    filler = _fill(fs)  # not even the state file fits
    proc = run_cli(*command, check=False)
    one_error_line(proc, "cannot write", "no space left on device")
    assert _temps(out) == [] and _digests(out) == before

    filler.unlink()
    old_umask = os.umask(0o022)
    try:
        proc = run_cli(*command)
    finally:
        os.umask(old_umask)
    assert "processed 0 new of 14 units" in proc.stdout
    assert _digests(out) == before
    for name in ("manifest.json", "samples.csv", "skipped.csv", "images.npy", "prepare-state.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_generate_on_a_full_disk_and_train_into_a_file(tmp_path, mount_tmpfs, tiny_model_dir):
    """generate filling the disk halfway through its images is one line, leaves no temp
    folder and keeps the earlier output; a training run directory under a file is one line."""
    disk = mount_tmpfs("disk", "3m")
    out = disk / "out"
    run_cli("generate", "--checkpoint", tiny_model_dir, "--num", "2", "--out", out, "--no-progress")
    before = _digests(out)
    _fill(disk, leave=64 * 1024)
    proc = run_cli("generate", "--checkpoint", tiny_model_dir, "--num", "64", "--out", out, "--no-progress", check=False)
    one_error_line(proc, f"cannot write {out}: no space left on device")
    assert _digests(out) == before
    assert sorted(p.name for p in disk.iterdir()) == ["filler.bin", "out"]  # no .out.tmp-* folder

    notes = tmp_path / "notes.txt"
    notes.write_text("a file, not a folder\n")
    proc = run_cli("train", "--config", Path(__file__).parent.parent / "configs" / "small.yaml",
                   "--output-dir", notes / "run", check=False)  # fmt: skip
    one_error_line(proc, f"training.output_dir {notes / 'run'}: cannot create it")
    assert notes.read_text() == "a file, not a folder\n"


def test_train_checkpoint_and_export_on_a_full_disk_keep_the_run_and_resume(tiny_model_dir, mount_tmpfs):
    """The tests' tiny run (checkpoint-24 and its model) on a small disk. A checkpoint that does
    not fit, then `--export-only` that does not fit: each is one line and exit 2, with the last
    good checkpoint and model unchanged and no temp file; with room again, `--resume latest`
    carries on from the last good checkpoint."""
    disk = mount_tmpfs("disk", "24m")
    run = disk / "run"
    shutil.copytree(tiny_model_dir.parent, run)
    checkpoint = run / "checkpoints" / "checkpoint-24"
    kept = {"checkpoint": _digests(checkpoint), "model": _digests(run / "model")}
    room = sum(p.stat().st_size for p in (run / "model").iterdir()) // 2  # for logs, not a checkpoint or model
    resume = ("train", "--output-dir", run, "--resume", "latest", "training.max_steps=26")

    filler = _fill(disk, leave=room)
    proc = run_cli(*resume, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [proc.stderr.strip().splitlines()[-1]] and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"cannot save a checkpoint in {run / 'checkpoints'}: no space left on device" in errors[0]
    assert f"the last good checkpoint is {checkpoint}" in errors[0] and "--resume latest" in errors[0]

    proc = run_cli("train", "--output-dir", run, "--export-only", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: cannot write {run / 'model'}: no space left on device (the previous model there is unchanged)")
    assert line.endswith(f"poseguide train --output-dir {run} --export-only")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint-24"]
    assert {"checkpoint": _digests(checkpoint), "model": _digests(run / "model")} == kept
    assert _temps(disk) == []

    filler.unlink()
    proc = run_cli(*resume)
    assert f"resumed from {checkpoint} at step 24" in proc.stderr
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint-26"]  # checkpoints_total_limit=1
    assert _digests(run / "model") != kept["model"] and _temps(disk) == []
