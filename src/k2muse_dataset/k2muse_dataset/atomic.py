"""Atomic file output: write next to the target, then ``os.replace``; sweep what crashes left.

A crash or a killed batch leaves either the old file or the new one, never half a file, so a
rerun can trust every output that exists. Temporaries carry the writer's process id
(``.<name>.<pid>-<random>.part`` files, ``.<name>.staging-<pid>-<random>`` and
``.<name>.old-<pid>`` folders), so the next run can tell its own leftovers from a concurrent
writer's and remove those whose process is gone (``sweep_leftovers``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

_LEFTOVER = re.compile(r"^\..+\.(?:(\d+)-[^.]*\.part|(?:staging|old)-(\d+)(?:-.*)?)$")


def part_prefix(target: Path) -> str:
    """Name prefix of this process's temporary files for ``target`` (end it with ``.part``)."""
    return f".{target.name}.{os.getpid()}-"


def staging_prefix(target: Path, kind: str = "staging") -> str:
    """Name prefix of this process's temporary folder for ``target`` (kind: staging or old)."""
    return f".{target.name}.{kind}-{os.getpid()}-"


def _temporary_file(target: Path) -> tuple[int, str]:
    """An open temporary file beside ``target`` (its folder made if missing): (fd, path)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=part_prefix(target), suffix=".part", dir=target.parent)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; move it onto ``target`` on success."""
    target = Path(target)
    fd, tmp = _temporary_file(target)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def _named(error: OSError, target: str | Path) -> OSError:
    """The error named after the target, not the temporary file."""
    return OSError(error.errno, error.strerror, str(target))


class _Committer:
    """fsync + rename of written temporary files, in order, in one background thread."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.error: OSError | None = None
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="atomic-commits", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            handle, tmp, target = item
            try:
                if self.error is None:  # after a failure, nothing more is put in place
                    os.fsync(handle.fileno())
                    os.replace(tmp, target)
            except OSError as error:
                self.error = _named(error, target)
            finally:
                handle.close()
                Path(tmp).unlink(missing_ok=True)

    def submit(self, handle, tmp: str, target: Path) -> None:
        self._queue.put((handle, tmp, target))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


_committer: _Committer | None = None


@contextlib.contextmanager
def commits_in_background() -> Iterator[None]:
    """Let :func:`write_bytes_atomic` return once written; fsync and rename follow in a thread.

    The commits run in order while the caller goes on: for one process writing file after
    file, the disk wait then overlaps the next file's work. On exit (also by an exception or
    Ctrl-C) every write is on disk and in place; after a failed commit, later ones are not
    put in place, and the first failure (naming its target) is raised by the next write or
    on exit.
    """
    global _committer
    committer = _committer = _Committer()
    try:
        yield
    finally:
        _committer = None
        committer.close()
    if committer.error is not None:
        raise committer.error


def write_bytes_atomic(target: str | Path, data: bytes | memoryview) -> None:
    """Write bytes atomically and durably; a full disk raises OSError (ENOSPC), no partial file.

    The data is flushed and fsync'ed before the rename, so a reported success is on disk
    (inside :func:`commits_in_background`: once that ends). The OSError of a failed write
    names ``target``.
    """
    committer = _committer if _committer and _committer.pid == os.getpid() else None
    if committer is None:
        try:
            with atomic_path(target) as tmp, open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise _named(error, target) from None
        return
    if committer.error is not None:
        raise committer.error
    target = Path(target)
    try:
        fd, tmp = _temporary_file(target)
    except OSError as error:
        raise _named(error, target) from None
    handle = open(fd, "wb")
    try:
        handle.write(data)
        handle.flush()
    except BaseException as error:
        handle.close()
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _named(error, target) from None
        raise
    committer.submit(handle, tmp, target)


def write_text_atomic(target: str | Path, text: str) -> None:
    """Write a text file atomically."""
    write_bytes_atomic(target, text.encode("utf-8"))


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def sweep_leftovers(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Remove temporaries (``.part`` files, staging folders) whose writer process is gone.

    Returns what was removed. Leftovers of a live process (a concurrent run) are kept.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.rglob(".*") if recursive else folder.glob(".*")
    removed = []
    for path in sorted(candidates):
        match = _LEFTOVER.match(path.name)
        if match is None or _process_alive(int(match[1] or match[2])):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
