"""Durable file operations: write to a temp file, fsync, rename, fsync the directory."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO

from athar.errors import DiskFull

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_mkdir(path: Path) -> None:
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR)


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_EXCL) -> int:
    return os.open(path, flags, PRIVATE_FILE)


def write_fd(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a full disk first shortens, then fails)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@contextmanager
def _atomic_fd(path: Path) -> Iterator[int]:
    """A private temp file's descriptor; on success it is fsynced and renamed onto *path*
    (a crash leaves the old file or the new one, whole); on any failure it is removed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            yield fd
            os.fsync(fd)
        finally:
            with suppress(OSError):
                os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise_if_disk_full(exc)
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes) -> None:
    """Replace *path* with *data*, whole or not at all."""
    with _atomic_fd(path) as fd:
        write_fd(fd, data)


@contextmanager
def atomic_write_text(path: Path) -> Iterator[TextIO]:
    """A UTF-8 text file that appears at *path* whole, or not at all."""
    with _atomic_fd(path) as fd, open(fd, "w", encoding="utf-8", newline="", closefd=False) as f:
        yield f
        f.flush()


def raise_if_disk_full(exc: OSError) -> None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFull(
            "the disk is full; nothing was half-written, free some space and run the command again"
        ) from exc
