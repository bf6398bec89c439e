"""Files written whole or not at all.

Every output goes to a temp file beside its target (same folder, so same file system),
is flushed to disk, gets the mode a plain open() would have given it (mkstemp makes 0600,
which would leave datasets and pictures unreadable to the rest of a team), and is then
renamed over the target. On any failure the temp file is removed and a previous file of
that name is left as it was.

Temp names are `.<name>.<random>.tmp`, so a folder's leftovers from a killed process can
be found with the glob `.*.tmp`. A whole folder written by several processes at once (a
training checkpoint) is filled under `.<name>.tmp` and moved into place by `replace_dir`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator


def current_umask() -> int:
    """The process umask, read without setting it where Linux allows (setting it to read it
    would race with other threads creating files)."""
    try:  # Linux >= 4.7 shows it without changing it
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def default_mode() -> int:
    """0o666 less the process umask: the mode open() gives a new file."""
    return 0o666 & ~current_umask()


# Below this much free space, a write that failed is taken to have failed for want of room.
FULL_DISK_BYTES = 1 << 20


def as_write_error(err: BaseException, path: Path) -> OSError | None:
    """The OSError that `err`, raised while writing `path`, stands for (`err` itself if it is one),
    or None. torch.save and safetensors write from C++ and Rust and report a full disk as
    RuntimeError ("unexpected pos") or SafetensorError ("... (os error 28)"): those become
    OSError(errno) naming `path`, to be reported as Python's own write errors are. Call it
    before removing the partial file, whose bytes are what fill the disk."""
    if isinstance(err, OSError):
        return err
    if not isinstance(err, Exception):  # Ctrl-C, SystemExit
        return None
    found = re.search(r"\(os error (\d+)\)", str(err))
    if found:
        code = int(found.group(1))
    else:
        try:
            full = shutil.disk_usage(path.parent).free < FULL_DISK_BYTES
        except OSError:
            full = False
        if not full:
            return None
        code = errno.ENOSPC
    return OSError(code, os.strerror(code), str(path))


def temp_path_for(path: Path) -> Path:
    """A new, empty temp file beside `path`, for the caller to fill."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        err.filename = str(path)  # not the random temp name, which means nothing to a user
        raise
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; when the block ends without an exception, the file
    written there is fsynced, given the default mode and renamed to `path`. Any exception
    (in the block or in those steps) removes the temp file and propagates."""
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.fchmod(fd, default_mode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename == str(tmp):
            err.filename = str(path)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """open(path, mode) that replaces `path` only once the block has finished without error."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_write writes new files; mode must start with 'w', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **open_kwargs) as f:
            yield f


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8", errors: str = "strict") -> None:
    with atomic_write(path, "w", encoding=encoding, errors=errors, newline="") as f:
        f.write(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def shared_temp_dir(path: str | os.PathLike) -> Path:
    """The temp folder beside `path` that several processes fill together, then `replace_dir`
    moves into place (a random name, as the other temp files have, would differ per process)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp")


def replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished folder `tmp` to `path`, its files fsynced first. A previous folder at
    `path` is moved aside and removed only once the new one is in place."""
    for file in tmp.rglob("*"):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    if not path.exists():
        os.replace(tmp, path)
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old.", suffix=".tmp"))
    os.replace(path, old)  # over the empty folder just made
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def folder_problem(folder: str | os.PathLike) -> str | None:
    """Why files cannot be written into `folder` (made if missing), or None. Checked before any
    work by making and removing a probe folder where the output will go, so a bad output path
    costs seconds, and nothing is left behind either way."""
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            return "exists and is not a directory"
        base = folder if folder.exists() else folder.parent
        while not base.exists() and base != base.parent:
            base = base.parent
        if not base.is_dir():
            return f"{base} is a file, not a directory"
        os.rmdir(tempfile.mkdtemp(prefix=".poseguide-probe-", dir=base))
    except OSError as err:
        return f"cannot write there ({err.strerror or err.__class__.__name__})"
    return None
