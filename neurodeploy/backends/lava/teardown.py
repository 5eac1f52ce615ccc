"""Ending a Lava run, also when it is interrupted.

Lava's ``Process.stop()`` sends STOP to the runtime service and waits for the answers and for its
worker processes. After Ctrl-C those are broken (the interrupt reaches them, or the runtime's side
of the channel), and ``stop()`` waits forever: the command would hang instead of exiting 130
(issue 16). :func:`stopped_after` stops a run normally, and on :class:`KeyboardInterrupt`
:func:`abandon` s it instead: the worker processes are terminated and the shared memory released.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from contextlib import contextmanager


#: the standard library's at-fork callbacks that run in the forking process (logging's lock): an
#: exception raised in them is printed with a traceback and ignored
_AT_FORK_HOOKS = frozenset({"_acquireLock", "_releaseLock", "_at_fork_reinit", "_after_fork"})


@contextmanager
def stopped_after(proc):
    """Run the body, then ``proc.stop()``. A Ctrl-C meanwhile raises :class:`KeyboardInterrupt`
    in this process only: Lava's worker processes, forked during the body, inherit a handler that
    ignores it (a terminal sends SIGINT to the whole process group; a worker that dies of it while
    the runtime is being built leaves Lava waiting forever, and each prints a traceback). The run
    is then :func:`abandon` ed and the interrupt re-raised. Where Lava swallows the
    KeyboardInterrupt (it can land in an at-fork hook, where exceptions are ignored), the signal is
    sent again every half second until it reaches code that lets it through."""
    owner, interrupted, done = os.getpid(), [], threading.Event()
    resend: list[threading.Timer] = []

    def on_sigint(sig, frame):
        if os.getpid() != owner:  # a forked Lava worker: this process tears it down
            return
        interrupted.append(sig)
        if not done.is_set() and not any(t.is_alive() for t in resend):
            t = threading.Timer(0.5, lambda: done.is_set() or os.kill(owner, signal.SIGINT))
            t.daemon = True
            resend.append(t)
            t.start()
        if frame is not None and frame.f_code.co_name in _AT_FORK_HOOKS:
            return  # raised there it would be printed and ignored; the resend comes in 0.5 s
        raise KeyboardInterrupt

    previous = _install(on_sigint)
    try:
        try:
            yield
        except KeyboardInterrupt:
            done.set()
            abandon(proc)
            raise
        except BaseException:
            done.set()
            if interrupted:  # the interrupt surfaced as another error inside Lava
                abandon(proc)
                raise KeyboardInterrupt from None
            proc.stop()
            raise
        done.set()
        if interrupted:
            abandon(proc)
            raise KeyboardInterrupt
        proc.stop()
    finally:
        done.set()
        for t in resend:
            t.cancel()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _install(handler):
    """Install ``handler`` for SIGINT; the previous one (None where this thread cannot)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # installed outside Python: could not be restored
        return None
    signal.signal(signal.SIGINT, handler)
    return previous


def abandon(proc) -> None:
    """Tear down the Lava run of ``proc`` without Lava's ``stop()``: terminate its worker
    processes (kill those still alive after 5 s) and release its shared memory. Best effort."""
    runtime = getattr(proc, "runtime", None)
    infra = getattr(runtime, "_messaging_infrastructure", None)
    actors = list(getattr(infra, "actors", None) or [])
    for a in actors:
        try:
            if a.is_alive():
                a.terminate()
        except (OSError, ValueError, AssertionError):
            pass
    for a in actors:
        try:
            mp.Process.join(a, 5)  # Lava's SystemProcess.join takes no timeout
            if a.is_alive():
                a.kill()
                mp.Process.join(a, 5)
        except (OSError, ValueError, AssertionError):
            pass
    for stop in (lambda: infra.smm.shutdown(), lambda: runtime._watchdog_manager.stop()):
        try:
            stop()
        except Exception:  # noqa: BLE001, S110 - best effort while the command is being interrupted
            pass
