"""Advisory locks on output paths and run folders, so two postkit processes never write
the same place at once.

Why: two ``postkit run`` commands into one folder both used to exit 0 with the last
one silently winning, and a rerun could replace a run folder (and its coding store)
while the review app was still writing decisions into it. A lock makes the second
writer stop with a clear message instead.

How: ``fcntl.flock`` on a small lock file *beside* the target (``.NAME.lock-postkit``),
never inside it, because a run folder is replaced by renaming a new folder over it.
``flock`` locks die with the process, so a killed run (even SIGKILL) never leaves a
lock that blocks the next one; the file itself only records who holds it (pid, host,
what, since when) for the message. Two modes:

* **exclusive** (:data:`EXCLUSIVE`): the one process that creates or replaces the
  target (``postkit run``, any command writing an output file);
* **shared** (:data:`SHARED`): processes that may work side by side but must never
  overlap an exclusive holder (the review app and other writers of a coding store,
  which SQLite already keeps consistent among themselves).

The lock file is removed by the last holder. Removing a lock file has a classic race
(another process opened the old file just before it was removed and then locks a file
nobody else can see), so :meth:`PathLock.acquire` checks, after locking, that the
path still names the file it locked, and starts again when it does not.

The standard library's ``fcntl`` is used rather than a package such as ``filelock``:
we need shared locks, holder details in the message and the removal race handled,
which is a few lines here; ``filelock`` offers only exclusive locks.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import PostkitError
from .timestamps import iso, now_utc

SHARED = "shared"
EXCLUSIVE = "exclusive"
LOCK_SUFFIX = ".lock-postkit"

_process_purpose = "a postkit process"


def set_process_purpose(purpose: str) -> None:
    """Name this process in other processes' "in use by …" messages (the CLI sets
    ``postkit COMMAND``); locks taken without their own ``purpose`` use it."""
    global _process_purpose
    _process_purpose = purpose


def process_purpose() -> str:
    return _process_purpose


def lock_file_for(target: str | Path) -> Path:
    """Where the lock of ``target`` (a file or folder) lives: a hidden file beside it."""
    target = Path(target).absolute()
    # The folder is resolved so that two spellings of one place (a symlinked folder,
    # "a/../b") share one lock; the name is not, since the name itself is what a
    # writer replaces.
    return target.parent.resolve() / f".{target.name}{LOCK_SUFFIX}"


def run_folder_of(path: str | Path, levels: int = 3) -> Path | None:
    """The postkit run folder (it holds ``manifest.json``) that contains ``path``, if any.

    A coding store lives at ``RUN/tag/coding.sqlite``; writers of the store lock the
    run folder, because a rerun replaces the whole folder, store included.
    """
    current = Path(path).absolute()
    if current.is_file() or not current.exists():
        current = current.parent
    for folder in [current, *current.parents][: levels + 1]:
        if (folder / "manifest.json").is_file():
            return folder
    return None


def _holder(purpose: str, mode: str) -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose, "mode": mode,
            "since": iso(now_utc())}


def describe_holder(lock_path: Path) -> str:
    """Who holds a lock, from what its holder wrote; vague when the file says nothing useful."""
    try:
        info = json.loads(lock_path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another postkit process"
    what = info.get("purpose") or "postkit"
    return f"{what} (pid {info.get('pid')} on {info.get('host', '?')}, since {info.get('since', '?')})"


class PathLock:
    """An advisory lock on ``target``; use as a context manager or call acquire/release.

    ``purpose`` names the holder in other processes' messages, e.g. ``"postkit run"``
    (default: :func:`process_purpose`).
    Acquiring never waits: a held lock raises :class:`PostkitError` at once, naming the
    holder, because a researcher would rather be told than have a command hang.
    """

    def __init__(self, target: str | Path, *, mode: str = EXCLUSIVE, purpose: str | None = None) -> None:
        if mode not in (SHARED, EXCLUSIVE):
            raise ValueError(f"lock mode must be {SHARED!r} or {EXCLUSIVE!r}")
        self.target = Path(target)
        self.path = lock_file_for(target)
        self.mode = mode
        self.purpose = purpose or _process_purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "PathLock":
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        operation = (fcntl.LOCK_SH if self.mode == SHARED else fcntl.LOCK_EX) | fcntl.LOCK_NB
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, operation)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise PostkitError(
                    f"in use by {describe_holder(self.path)}",
                    path=self.target,
                    fix="wait for it to finish or stop it (a review app stops with Ctrl+C), then retry; "
                        "or write somewhere else",
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the last holder removed this file while we waited: lock the new one
        self._fd = fd
        record = json.dumps(_holder(self.purpose, self.mode)).encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # The last holder removes the file: only it can take the lock exclusively now.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # other shared holders remain; one of them removes it
        else:
            try:
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    self.path.unlink()
            except FileNotFoundError:
                pass
        finally:
            os.close(fd)

    def __enter__(self) -> "PathLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:  # a forgotten lock is released with its object, never leaked
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)  # type: ignore[arg-type]
            except OSError:
                pass
