"""Stopping signals (SIGINT, SIGTERM, SIGHUP) unwind a command instead of killing it.

Why: a ``postkit`` command writes temporary files beside its outputs and removes them
when it fails (see :class:`postkit.io.OutputSet`). Python turns only SIGINT (Ctrl+C)
into an exception; SIGTERM (``kill``, a scheduler's time limit, a closing container)
and SIGHUP (a closed terminal or SSH session) ended the process on the spot and left
megabytes of kept posts with raw user ids in hidden temporary files.

:func:`stop_on_signals` makes each of the three raise :class:`Stopped` (a
``KeyboardInterrupt``, so every ``except KeyboardInterrupt`` and ``finally`` that
already cleans up after Ctrl+C cleans up after them too). The CLI installs it around
each command; library callers keep their own signal handling.

:func:`deferred` holds catchable stopping signals back for a few lines that must not be
cut in half (renaming a set of outputs into place): a signal that arrives meanwhile
takes effect as soon as the block ends. Nothing can hold back SIGKILL; callers order
their steps so that a SIGKILL at any point leaves a safe state (see
:meth:`postkit.io.OutputSet.commit`).
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Any, Iterator

#: The signals a command treats as "stop now, but clean up first".
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A stopping signal arrived; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code_for(exc: KeyboardInterrupt) -> int:
    """128 + the signal number, the shell's convention (130 for Ctrl+C, 143 for SIGTERM)."""
    return exc.exit_code if isinstance(exc, Stopped) else 128 + signal.SIGINT


def signal_name_for(exc: KeyboardInterrupt) -> str:
    """``SIGTERM``, …; a plain KeyboardInterrupt came from Ctrl+C (SIGINT)."""
    return exc.name if isinstance(exc, Stopped) else "SIGINT"


class _State:
    """Shared by the handler and :func:`deferred` (the handler always runs in the main thread)."""

    owner_pid: int | None = None  # the process that installed the handlers
    depth = 0  # nesting of deferred() blocks in the main thread
    pending: int | None = None  # a signal that arrived inside a deferred() block
    stopping = False  # a Stopped was raised: later signals must not cut the cleanup short


def _handler(signum: int, _frame: FrameType | None) -> None:
    if os.getpid() != _State.owner_pid:
        # A forked child (a multiprocessing worker) inherited this handler: it must die
        # as it would have without postkit, not raise inside the worker's loop.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    if _State.depth:
        if _State.pending is None:
            _State.pending = signum
        return
    if _State.stopping:
        return  # already unwinding; cleanup runs to its end (SIGKILL still stops it)
    _State.stopping = True
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside the block, SIGINT/SIGTERM/SIGHUP raise :class:`Stopped` in the main thread.

    A signal that was ignored when the block began (``nohup`` ignores SIGHUP, a
    non-interactive shell's background jobs ignore SIGINT) stays ignored. The previous
    handlers are restored on the way out. Outside the main thread this does nothing
    (Python only lets the main thread set handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    saved = (_State.owner_pid, _State.stopping, _State.pending)
    _State.owner_pid, _State.stopping, _State.pending = os.getpid(), False, None
    try:
        for signum in STOP_SIGNALS:
            current = signal.getsignal(signum)
            if current is signal.SIG_IGN:
                continue
            previous[signum] = current
            signal.signal(signum, _handler)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _State.owner_pid, _State.stopping, _State.pending = saved


@contextmanager
def deferred() -> Iterator[None]:
    """Hold back SIGINT/SIGTERM/SIGHUP until the block ends; then act on the first one.

    Two mechanisms, because either alone leaves a gap: the signals are blocked for the
    main thread (``pthread_sigmask``), which covers Python's own Ctrl+C handler in a
    single-threaded program; and postkit's handler (see :func:`stop_on_signals`) only
    records a signal that another thread received meanwhile. Outside the main thread
    this does nothing: signal handlers never interrupt other threads.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
        pending = None
        if _State.depth == 0:
            pending, _State.pending = _State.pending, None
        # Unblocking delivers a signal the mask held back: its handler runs (and raises) here.
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if pending is not None and not _State.stopping and os.getpid() == _State.owner_pid:
            _State.stopping = True
            raise Stopped(pending)
