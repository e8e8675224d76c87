"""Atomic writes whose fsync and rename run in a background thread (commits_in_background)."""

import errno
import os

import pytest
from k2muse_dataset.atomic import commits_in_background, write_bytes_atomic


def test_writes_are_in_place_and_complete_on_exit(tmp_path):
    targets = [tmp_path / "a" / f"{i}.bin" for i in range(5)]
    (tmp_path / "a").mkdir()
    targets[0].write_bytes(b"old")
    with commits_in_background():
        for i, target in enumerate(targets):
            write_bytes_atomic(target, bytes([i]) * 100_000)
    assert [t.read_bytes() for t in targets] == [bytes([i]) * 100_000 for i in range(5)]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"{i}.bin" for i in range(5)]


def test_a_failed_commit_is_raised_names_its_target_and_stops_later_ones(tmp_path,
                                                                        monkeypatch):
    real_fsync = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr("k2muse_dataset.atomic.os.fsync", fsync)
    with pytest.raises(OSError, match=r"No space left on device: '.*1\.bin'") as caught:
        with commits_in_background():
            for i in range(50):
                write_bytes_atomic(tmp_path / f"{i}.bin", b"x" * 1000)
    assert caught.value.errno == errno.ENOSPC
    assert [p.name for p in tmp_path.iterdir()] == ["0.bin"]  # no later file, no .part left


def test_an_interrupt_inside_keeps_the_finished_writes(tmp_path):
    with pytest.raises(KeyboardInterrupt), commits_in_background():
        write_bytes_atomic(tmp_path / "done.bin", b"finished")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["done.bin"]
    assert (tmp_path / "done.bin").read_bytes() == b"finished"


def test_outside_the_context_writes_commit_before_returning(tmp_path, monkeypatch):
    with commits_in_background():
        pass
    monkeypatch.setattr("k2muse_dataset.atomic.os.fsync",
                        lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(OSError, match="x.bin"):
        write_bytes_atomic(tmp_path / "x.bin", b"data")
    assert list(tmp_path.iterdir()) == []
