"""Advisory locks on outputs and run folders: who holds them, what conflicts, what is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postkit import locks
from postkit.errors import PostkitError
from postkit.locks import EXCLUSIVE, SHARED, PathLock, lock_file_for, run_folder_of


def test_the_lock_file_lives_beside_the_target_and_goes_with_the_last_holder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with PathLock(run, purpose="postkit run") as lock:
        assert lock.path == tmp_path / ".run.lock-postkit" and lock.path.exists()
        assert list(run.iterdir()) == []  # nothing inside the folder that is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_second_exclusive_holder_is_told_who_holds_it(tmp_path):
    target = tmp_path / "kept.parquet"
    with PathLock(target, purpose="postkit consent filter"):
        with pytest.raises(PostkitError) as error:
            PathLock(target).acquire()
    message = str(error.value)
    assert message.startswith(f"{target}: in use by postkit consent filter (pid {os.getpid()} on ")
    assert "retry" in message
    PathLock(target).acquire().release()  # free again once released


def test_shared_holders_coexist_and_exclude_an_exclusive_one(tmp_path):
    run = tmp_path / "run"
    first = PathLock(run, mode=SHARED, purpose="postkit review serve").acquire()
    second = PathLock(run, mode=SHARED, purpose="postkit code decide").acquire()
    with pytest.raises(PostkitError, match="in use by"):
        PathLock(run, mode=EXCLUSIVE).acquire()
    first.release()
    with pytest.raises(PostkitError, match="in use by"):
        PathLock(run, mode=EXCLUSIVE).acquire()
    second.release()
    assert not lock_file_for(run).exists()  # the last holder removed it
    with PathLock(run, mode=EXCLUSIVE):
        with pytest.raises(PostkitError, match="in use by"):
            PathLock(run, mode=SHARED).acquire()


def test_two_spellings_of_one_folder_share_one_lock(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with PathLock(tmp_path / "real" / "run"):
        with pytest.raises(PostkitError, match="in use by"):
            PathLock(tmp_path / "link" / "sub" / ".." / "run").acquire()


def test_locks_without_a_purpose_name_the_process(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "_process_purpose", "a postkit process")
    locks.set_process_purpose("postkit sample")
    with PathLock(tmp_path / "x.csv"):
        with pytest.raises(PostkitError, match=r"in use by postkit sample \(pid"):
            PathLock(tmp_path / "x.csv", purpose="other").acquire()


def test_a_killed_holder_never_blocks_the_next_one(tmp_path):
    """flock dies with its process: SIGKILL leaves at most a lock file, never a held lock."""
    target = tmp_path / "run"
    code = (f"import sys, time; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r}); "
            "from postkit.locks import PathLock; "
            f"lock = PathLock({str(target)!r}, purpose='postkit run').acquire(); print('held', flush=True); "
            "time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PostkitError, match=f"in use by postkit run \\(pid {holder.pid} "):
            PathLock(target).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    assert lock_file_for(target).exists()  # left behind by the kill, but not held
    deadline = time.monotonic() + 5
    while True:
        try:
            PathLock(target).acquire().release()
            break
        except PostkitError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert not lock_file_for(target).exists()


def test_run_folder_of_finds_the_folder_with_the_manifest(tmp_path):
    run = tmp_path / "run"
    (run / "tag").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    assert run_folder_of(run / "tag" / "coding.sqlite") == run
    assert run_folder_of(tmp_path / "elsewhere" / "coding.sqlite") is None
