"""The delivery lock: one holder per file, across open files as across processes."""

from __future__ import annotations

import stat

from bridge.store.file_lock import FileLock


def test_one_holder_at_a_time(tmp_path):
    path = tmp_path / "outbox.sqlite3.deliver.lock"
    first, second = FileLock(path), FileLock(path)
    assert first.try_acquire() and first.held
    assert first.try_acquire()  # holding it already
    assert not second.try_acquire() and not second.held
    first.release()
    assert not first.held
    assert second.try_acquire()
    second.release()
    second.release()  # releasing a lock not held does nothing
    assert str(first) == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
