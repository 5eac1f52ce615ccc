"""Atomic output: a file is either completely written or not there at all.

Everything neurodeploy writes goes through here: data go to a temporary file in the same
directory, are flushed and fsync'ed, and are then renamed over the destination (``os.replace``
is atomic on POSIX). A crash or Ctrl-C leaves at most a stray ``.tmp`` file, never a
half-written artifact under the final name. A command's output directory is written all or
nothing through :func:`output_dir` (checked before any work, locked, staged, moved into place
when the command finished).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import UsageError

try:
    import fcntl
except ImportError:  # not POSIX: no lock (the staging still holds)
    fcntl = None  # type: ignore[assignment]


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


# --- output directories ------------------------------------------------------------------------
#
# Every command that writes a directory (run, eval, validate, compile, deploy, train) goes through
# :func:`output_dir`: the location is checked before any work (:func:`check_output_dir`), the
# directory is locked against a second neurodeploy process (``DIR/.neurodeploy.lock``), the files
# are written into a staging directory ``DIR/.partial-XXXX`` and moved into ``DIR`` only when the
# command finished, the previous run's marker (``summary.json``, ``report.json``, ...) removed
# first and the new one moved last. A crash or Ctrl-C discards the staging directory: ``DIR``
# keeps the previous run's files, complete, and a marker is present exactly when its run finished.

LOCK_NAME = ".neurodeploy.lock"
STAGE_PREFIX = ".partial-"

_active_stages: dict[Path, tuple[Path, Path]] = {}  # resolved staging dir -> (staging dir, output dir)
_active_lock = threading.Lock()


def check_output_dir(path, what: str = "output directory") -> Path:
    """``path`` as a :class:`Path` if it is a directory neurodeploy can write into (or create);
    otherwise :class:`~neurodeploy.core.errors.UsageError` naming the path and the reason. Cheap:
    called before any simulation."""
    raw = os.fspath(path) if path is not None else ""
    if not str(raw).strip():
        raise UsageError(f"{what} is an empty string: give a directory to write into, e.g. -o out/run")
    p = Path(raw)
    shown = repr(str(raw))
    if p.is_symlink() and not p.exists():
        raise UsageError(f"{what} {shown} is a dangling symbolic link")
    if p.exists():
        if not p.is_dir():
            raise UsageError(f"{what} {shown} is {_kind(p, 'an existing file')}, not a directory; give a "
                             "directory path (it is created if missing)")
        if not os.access(p, os.W_OK | os.X_OK):
            raise UsageError(f"{what} {shown} is not writable by this user")
        return p
    parent = p.absolute().parent
    while not parent.exists() and not parent.is_symlink():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {shown} cannot be created: {str(parent)!r} is {_kind(parent)}, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {shown} cannot be created: {str(parent)!r} is not writable by this user")
    return p


def _kind(p: Path, file: str = "a file") -> str:
    return file if p.is_file() else "a device or special file"


def check_output_file(path, what: str = "output file") -> Path:
    """``path`` as a :class:`Path` if neurodeploy can write a file there (creating missing
    directories); otherwise :class:`~neurodeploy.core.errors.UsageError` naming the path and the
    reason (an empty string, a directory, a path under a file or device, no write permission)."""
    raw = os.fspath(path) if path is not None else ""
    if not str(raw).strip():
        raise UsageError(f"{what} is an empty string: give a file name")
    p, shown = Path(raw), repr(str(raw))
    if p.is_dir():
        raise UsageError(f"{what} {shown} is a directory; give a file name")
    if p.exists() and not p.is_file():
        raise UsageError(f"{what} {shown} is a device or special file; give a regular file name")
    parent = p.absolute().parent
    while not parent.exists() and not parent.is_symlink():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {shown} cannot be written: {str(parent)!r} is {_kind(parent)}, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {shown} cannot be written: {str(parent)!r} is not writable by this user")
    return p


class Staged:
    """The staging area of one :func:`output_dir`: write into :attr:`path`; :meth:`final` maps a
    path (or a dict / list of them) written there to where it will be after the commit."""

    def __init__(self, final: Path, path: Path, markers: tuple[str, ...], owns: tuple[str, ...],
                 passthrough: bool = False):
        self.final_dir, self.path = final, path
        self.markers, self.owns, self.passthrough = markers, owns, passthrough
        self.committed = False

    def final(self, obj):
        """``obj`` (a path, or a dict / list / tuple of them) with the staging directory replaced
        by the output directory."""
        if isinstance(obj, dict):
            return {k: self.final(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.final(v) for v in obj)
        if isinstance(obj, (str, Path)):
            if self.passthrough:  # nested: where the enclosing staging directory goes
                q = _to_final_any(Path(obj))
            else:
                q = _to_final(Path(obj), self.path, self.final_dir)
            if q is None:
                return obj
            return str(q) if isinstance(obj, str) else q
        return obj

    def commit(self) -> None:
        """Move everything staged so far into the output directory: the previous markers
        removed first, the new ones moved last. Ctrl-C during the move is acted on after it."""
        if self.passthrough or not any(self.path.iterdir()):  # nothing staged: the directory stays as it is
            return
        first = not self.committed  # a second commit (after a partial one) keeps what the first moved
        with _sigint_deferred():
            _merge(self.path, self.final_dir, self.markers, self.owns if first else (), clear=first)
            _fsync_dir(self.final_dir)
        self.committed = True


@contextmanager
def output_dir(path, *, marker: str | tuple[str, ...] = (), owns: tuple[str, ...] = (),
               what: str = "output directory") -> Iterator[Staged]:
    """Write a command's outputs into directory ``path``, all or nothing (see the section comment
    above). Yields a :class:`Staged`: write under ``staged.path``; on a normal exit the staged
    files are moved into ``path`` (``marker``: the file(s) whose presence means the command
    finished, at any depth: removed from ``path`` first, moved last; ``owns``: names at the top
    of ``path`` that belong to this command and are removed when this run does not write them,
    so no stale file of an earlier run stays beside the new marker). On an exception (Ctrl-C
    included) the staged files are deleted and ``path`` is left as it was.

    Raises :class:`~neurodeploy.core.errors.UsageError` before any work when ``path`` cannot be
    written (:func:`check_output_dir`) or when another neurodeploy process is writing it. Nested
    use on a path inside an active staging directory writes straight there."""
    markers = (marker,) if isinstance(marker, str) else tuple(marker)
    if path is not None and os.fspath(path) and _inside_stage(Path(path)):
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        yield Staged(p, p, markers, tuple(owns), passthrough=True)
        return
    final = check_output_dir(path, what)
    shown = repr(str(os.fspath(path)))
    created = _missing_dirs(final)
    try:
        final.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{what} {shown} cannot be created: {e.strerror or e}") from None
    lock = None
    stage = None
    try:
        lock, locked = _acquire(final, what, shown)
        if locked:  # no other run writes here: staging directories left by a killed run are stale
            for stale in final.glob(STAGE_PREFIX + "*"):
                shutil.rmtree(stale, ignore_errors=True)
        try:
            stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=final))
        except OSError as e:
            raise UsageError(f"{what} {shown} is not writable: {e.strerror or e}") from None
        key = stage.resolve()
        with _active_lock:
            _active_stages[key] = (stage, final)
        staged = Staged(final, stage, markers, tuple(owns))
        try:
            yield staged
            staged.commit()
        finally:
            with _active_lock:
                _active_stages.pop(key, None)
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        if lock is not None:
            _release(final, lock, created)


def _inside_stage(p: Path) -> bool:
    try:
        r = p.resolve()
    except OSError:
        return False
    with _active_lock:
        return any(r == s or s in r.parents for s in _active_stages)


def _to_final(p: Path, stage: Path, final: Path) -> Path | None:
    for a, b in ((p, stage), (p.absolute(), stage.absolute())):
        try:
            return final / a.relative_to(b)
        except ValueError:
            pass
    return None


def _to_final_any(p: Path) -> Path | None:
    try:
        r = p.resolve()
    except OSError:
        return None
    with _active_lock:
        stages = list(_active_stages.items())
    for key, (_, final) in stages:
        q = _to_final(r, key, final)
        if q is not None:
            return q
    return None


def _missing_dirs(p: Path) -> list[Path]:
    """The directories ``mkdir(parents=True)`` will create for ``p``, deepest first."""
    out = []
    q = p.absolute()
    while not q.exists() and q != q.parent:
        out.append(q)
        q = q.parent
    return out


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
        return f" (pid {info['pid']}: `{info['command']}`, since {info['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _acquire(final: Path, what: str, shown: str) -> tuple[int, bool]:
    """An exclusive lock on ``final/.neurodeploy.lock`` (not waiting: a second run is refused):
    (the open lock file, whether it is locked; False on file systems without locks)."""
    path = final / LOCK_NAME
    for _ in range(10):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise UsageError(f"{what} {shown} is not writable: {e.strerror or e}") from None
        locked = fcntl is not None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                who = _holder(fd)
                os.close(fd)
                raise UsageError(f"{what} {shown} is being written by another neurodeploy run{who}; "
                                 "wait for it to finish or choose another directory") from None
            except OSError as e:
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    os.close(fd)
                    raise
                locked = False
                # a file system without locks (some network mounts): go on unlocked
        try:  # the holder before us may have unlinked the file while we waited for it
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        info = {"pid": os.getpid(), "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:])[:300],
                "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode())
        return fd, locked
    raise UsageError(f"{what} {shown}: could not take its lock file {LOCK_NAME}")


def _release(final: Path, fd: int, created: list[Path]) -> None:
    """Unlink the lock file (still holding it), close it, and remove the directories this run
    created if nothing was committed into them."""
    try:
        os.unlink(final / LOCK_NAME)
    except OSError:
        pass
    for d in created:  # deepest first; rmdir fails (and stops) on the first non-empty one
        try:
            d.rmdir()
        except OSError:
            break
    os.close(fd)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def _merge(src: Path, dst: Path, markers: tuple[str, ...], owns: tuple[str, ...], clear: bool = True) -> None:
    """Move the entries of ``src`` into ``dst``: markers in ``dst`` removed first (``clear``),
    ``owns`` not in ``src`` removed, files replaced (``os.replace``), directories merged, markers
    last."""
    dst.mkdir(parents=True, exist_ok=True)
    names = sorted(os.listdir(src))
    for m in markers if clear else ():
        if (dst / m).is_file() or (dst / m).is_symlink():
            (dst / m).unlink()
    for o in owns:
        if o not in names and not o.startswith((STAGE_PREFIX, LOCK_NAME)):
            _remove(dst / o)
    for n in sorted(names, key=lambda n: n in markers):
        s, d = src / n, dst / n
        if s.is_dir() and not s.is_symlink():
            if d.is_dir() and not d.is_symlink():
                _merge(s, d, markers, (), clear)
                continue
            _remove(d)
        elif d.is_dir() and not d.is_symlink():
            shutil.rmtree(d)
        os.replace(s, d)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def _sigint_deferred():
    """Hold a Ctrl-C back while the body runs (main thread only), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    if signal.getsignal(signal.SIGINT) is None:  # a handler not set from Python: cannot be restored
        yield
        return
    try:
        old = signal.signal(signal.SIGINT, lambda sig, frame: got.append(sig))
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if got:
        raise KeyboardInterrupt
