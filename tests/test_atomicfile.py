"""The one atomic writer: the user's file mode, and nothing changed or left behind on failure."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from poseguide import atomicfile


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_mode_follows_the_umask(tmp_path, umask_022):
    atomicfile.write_text(tmp_path / "a.json", "{}\n")
    assert _mode(tmp_path / "a.json") == 0o644
    os.umask(0o027)
    atomicfile.write_bytes(tmp_path / "b.bin", b"x")
    assert _mode(tmp_path / "b.bin") == 0o640
    with atomicfile.atomic_path(tmp_path / "c.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, np.arange(3))
    assert _mode(tmp_path / "c.npy") == 0o640
    assert np.load(tmp_path / "c.npy").tolist() == [0, 1, 2]


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "samples.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomicfile.atomic_write(target) as f:
            f.write("half of the new")
            raise RuntimeError("disk went away")
    with pytest.raises(UnicodeEncodeError):
        atomicfile.write_text(target, "bad \udcff name")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.csv"]


def test_replacing_a_folder_fails_cleanly(tmp_path):
    (tmp_path / "out.json").mkdir()
    with pytest.raises(IsADirectoryError):
        atomicfile.write_text(tmp_path / "out.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    assert (tmp_path / "out.json").is_dir()


def test_a_folder_that_cannot_hold_files_raises_oserror(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    for bad in (tmp_path / "file.txt" / "out.json", "/proc/version/out.json"):
        with pytest.raises(OSError):
            atomicfile.write_text(bad, "{}")
    assert (tmp_path / "file.txt").read_text() == "x"


def test_replace_dir_swaps_a_finished_folder_in_and_leaves_nothing_behind(tmp_path):
    final = tmp_path / "checkpoint-4"
    tmp = atomicfile.shared_temp_dir(final)
    assert tmp == tmp_path / ".checkpoint-4.tmp"  # one name every process can agree on
    tmp.mkdir()
    (tmp / "model.bin").write_bytes(b"new")
    final.mkdir()
    (final / "model.bin").write_bytes(b"old")
    (final / "stale.bin").write_bytes(b"old")
    atomicfile.replace_dir(tmp, final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4"]
    assert sorted(p.name for p in final.iterdir()) == ["model.bin"] and (final / "model.bin").read_bytes() == b"new"


def test_errors_of_writers_in_other_languages_become_oserror(tmp_path):
    """safetensors (Rust) names the OS error in its message; that is kept, with the file the
    caller meant. Errors that say nothing of the OS, on a disk with room, are left alone."""
    import torch
    from safetensors.torch import save_file

    target = tmp_path / "missing" / "model.safetensors"
    with pytest.raises(Exception) as caught:
        save_file({"a": torch.zeros(2)}, str(target))
    assert not isinstance(caught.value, OSError)
    err = atomicfile.as_write_error(caught.value, target)
    assert isinstance(err, FileNotFoundError) and err.filename == str(target)
    assert err.strerror == "No such file or directory"
    own = PermissionError(13, "Permission denied")
    assert atomicfile.as_write_error(own, target) is own
    assert atomicfile.as_write_error(RuntimeError("shape mismatch"), target) is None
    assert atomicfile.as_write_error(KeyboardInterrupt(), target) is None
