"""The single place through which neurodeploy imports Intel Lava (lava-nc 0.10.0).

Every neurodeploy module that needs Lava calls :func:`ensure_lava_importable` before its first
``import lava...``. Nothing else in the package imports Lava directly.

Why this module exists
----------------------
lava-nc 0.10.0 declares ``python >=3.10,<3.11`` and, on Python 3.11, fails to import:
``lava/magma/compiler/var_model.py`` defines the dataclasses ``CoreEncoder``, ``ChipEncoder`` and
``AxonEncoder``, whose fields default to ``ByteEncoder()`` instances. ``ByteEncoder`` is itself a
plain (``eq=True``, not frozen) dataclass, so its instances are unhashable, and since Python 3.11
:func:`dataclasses.dataclass` rejects *every* unhashable default ("mutable default ... use
default_factory"), not only ``list``/``dict``/``set`` as before. Almost all of Lava (process
definitions, run configurations, the compiler) imports that module, so nothing works.

The fix: while ``var_model`` is imported, :func:`dataclasses.dataclass` is temporarily replaced by
a wrapper that creates non-frozen, ``eq=True`` dataclasses *defined in ``lava.*`` modules* with
``unsafe_hash=True``. That gives ``ByteEncoder`` a field-based ``__hash__``, its instances pass
the 3.11 check, and the encoders get exactly the shared default instances they had on 3.10.
Dataclasses of every other module are passed to the original decorator unchanged, and the
original is always put back (in a ``finally``), so the global behaviour of :mod:`dataclasses` is
not changed. The fix is applied only when the plain import really fails with that error, at most
once per interpreter, under a lock.

A second, independent trap is handled here too: importing
``lava.magma.runtime.message_infrastructure.multiprocessing`` (done by every Lava process module)
calls ``multiprocessing.set_start_method('fork')`` without ``force``. If anything in the
interpreter already fixed the start method, even implicitly (``multiprocessing.get_start_method()``,
a ``ProcessPoolExecutor``, ``multiprocessing.Queue()`` ...), that call raises ``RuntimeError:
context has already been set`` and Lava cannot be imported at all. When the method already in
force is ``'fork'`` (the Linux default on 3.11) the repeated call is made a no-op; any other
method gives a :class:`~neurodeploy.core.errors.BackendError` that says so, because Lava's runtime
relies on ``fork``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import importlib.util
import multiprocessing
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from neurodeploy.core.errors import BackendError

__all__ = [
    "LAVA_INSTALL_HINT",
    "LOIHI_ABSENT_REASON",
    "ensure_lava_importable",
    "has_loihi_hardware",
    "lava_status",
]

#: How to install Lava into the project's environment.
LAVA_INSTALL_HINT = (
    "install it with `make install`, or by hand: "
    "`pip install 'asteval<0.10' 'networkx<=2.8.7'` followed by "
    "`pip install --no-deps --ignore-requires-python lava-nc==0.10.0` "
    "(lava-nc 0.10.0 declares Python <3.11, hence --ignore-requires-python; --no-deps keeps pip "
    "from replacing the pinned numpy/scipy)"
)

#: Reason returned by :func:`has_loihi_hardware` when Intel's hardware package is missing.
LOIHI_ABSENT_REASON = (
    "lava-loihi (Intel's non-public package for Loihi 2 hardware) is not installed"
)

_VAR_MODEL = "lava.magma.compiler.var_model"
_LAVA_MP = "lava.magma.runtime.message_infrastructure.multiprocessing"
_LAVA_DIST = "lava-nc"
_LOIHI_DIST = "lava-loihi"
_MUTABLE_DEFAULT_MARK = "mutable default"

_lock = threading.Lock()
_ready = False


# --------------------------------------------------------------------------- public API


def ensure_lava_importable() -> None:
    """Make ``import lava...`` work on this interpreter; call it before the first Lava import.

    Imports ``lava.magma.compiler.var_model`` (applying the dataclass fix described in the
    module docstring only if the plain import fails with the Python 3.11 "mutable default"
    error) and Lava's multiprocessing message infrastructure. Idempotent and thread-safe: the
    work is done at most once per interpreter; later calls return immediately. If a previous
    call failed, the next call tries again.

    Raises
    ------
    BackendError
        If lava-nc (or one of its dependencies) is not installed, with instructions to install
        it; or if importing Lava fails for any other reason, naming the original exception
        (which is also chained as ``__cause__``).
    """
    global _ready
    if _ready:
        return
    with _lock:
        if _ready:
            return
        _import_var_model()
        _import_lava_multiprocessing()
        _ready = True


def lava_status() -> tuple[bool, str]:
    """Whether Lava can be used in this interpreter, without raising.

    Returns
    -------
    tuple of (bool, str)
        ``(True, "lava-nc <version>")`` when :func:`ensure_lava_importable` succeeds, otherwise
        ``(False, reason)`` where ``reason`` is a one-paragraph explanation (including how to
        install Lava when it is missing).
    """
    try:
        ensure_lava_importable()
    except BackendError as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - this function must never raise
        return False, f"importing Lava failed: {type(exc).__name__}: {exc}"
    version = _distribution_version(_LAVA_DIST)
    return True, f"lava-nc {version}" if version else "lava-nc (version unknown)"


def has_loihi_hardware() -> tuple[bool, str]:
    """Whether the software needed to run on Loihi 2 hardware (``lava-loihi``) is installed.

    ``lava-loihi`` is Intel's non-public extension of Lava (NcProcessModels, the ``nc``
    sub-compiler, the board runtime), available to INRC members only. Without it Lava can only
    simulate on the CPU. Installation is detected from the ``lava-loihi`` distribution metadata,
    or, for source checkouts without metadata, from the presence of the
    ``lava.magma.compiler.subcompilers.nc`` package. (``lava.utils.loihi`` is *not* a signal: it
    ships with public lava-nc.) Nothing is imported, and no board is contacted: whether a Loihi
    system is actually reachable is only known when a run starts. Never raises.

    Returns
    -------
    tuple of (bool, str)
        ``(True, description)`` when found, otherwise ``(False, reason)`` with
        :data:`LOIHI_ABSENT_REASON`.
    """
    try:
        version = _distribution_version(_LOIHI_DIST)
        if version is not None:
            return True, f"lava-loihi {version}"
        if _nc_subcompiler_present():
            return True, "lava-loihi (found module lava.magma.compiler.subcompilers.nc)"
    except Exception as exc:  # noqa: BLE001 - this function must never raise
        return False, f"{LOIHI_ABSENT_REASON} (check failed: {type(exc).__name__}: {exc})"
    return False, LOIHI_ABSENT_REASON


# --------------------------------------------------------------------------- the dataclass fix


def _lava_dataclass_kwargs(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments to create ``cls`` with: ``unsafe_hash=True`` added where needed.

    Only classes defined in ``lava`` / ``lava.*`` modules are touched, and only those that the
    stock decorator would make unhashable: ``eq=True`` (the default), not frozen, no
    ``unsafe_hash`` given and no ``__hash__`` written in the class body (``unsafe_hash=True``
    would raise ``TypeError`` for those).
    """
    module = getattr(cls, "__module__", None) or ""
    if module != "lava" and not module.startswith("lava."):
        return kwargs
    if kwargs.get("frozen") or kwargs.get("unsafe_hash") or not kwargs.get("eq", True):
        return kwargs
    body = cls.__dict__
    if "__hash__" in body and not (body["__hash__"] is None and "__eq__" in body):
        return kwargs
    return {**kwargs, "unsafe_hash": True}


def _make_lava_dataclass(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``original`` (:func:`dataclasses.dataclass`) with :func:`_lava_dataclass_kwargs`.

    Supports both decorator forms, ``@dataclass`` and ``@dataclass(...)``.
    """

    @functools.wraps(original)
    def dataclass(cls: type | None = None, /, **kwargs: Any) -> Any:
        def wrap(c: type) -> type:
            return original(c, **_lava_dataclass_kwargs(c, kwargs))

        return wrap if cls is None else wrap(cls)

    return dataclass


def _is_mutable_default_error(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and _MUTABLE_DEFAULT_MARK in str(exc)


def _import_var_model() -> None:
    """Import ``lava.magma.compiler.var_model``, with the dataclass fix only if it is needed."""
    if _VAR_MODEL in sys.modules:  # imported already (natively, or by an earlier fix)
        return
    try:
        importlib.import_module(_VAR_MODEL)
        return  # a Python/Lava combination that needs no fix
    except Exception as exc:  # noqa: BLE001 - classified below
        if not _is_mutable_default_error(exc):
            raise _as_backend_error(exc) from exc
    # The failed attempt left var_model out of sys.modules (the import system removes a module
    # whose execution raised); the modules it had imported before failing are complete and stay.
    original = dataclasses.dataclass
    dataclasses.dataclass = _make_lava_dataclass(original)
    try:
        importlib.import_module(_VAR_MODEL)
    except Exception as exc:  # noqa: BLE001
        raise _as_backend_error(exc) from exc
    finally:
        dataclasses.dataclass = original


# --------------------------------------------------------------------------- multiprocessing


def _import_lava_multiprocessing() -> None:
    """Import Lava's multiprocessing message infrastructure (see the module docstring).

    Lava calls ``multiprocessing.set_start_method('fork')`` (no ``force``) when this module is
    imported. For the duration of the import that function is replaced by one that does nothing
    when the requested method is already in force, instead of raising "context has already been
    set". Any other situation is passed to the real function unchanged.
    """
    if _LAVA_MP in sys.modules:
        return
    original = multiprocessing.set_start_method

    @functools.wraps(original)
    def set_start_method(method: str | None, force: bool = False) -> None:
        if not force and method is not None:
            if multiprocessing.get_start_method(allow_none=True) == method:
                return
        original(method, force=force)

    multiprocessing.set_start_method = set_start_method  # type: ignore[assignment]
    try:
        importlib.import_module(_LAVA_MP)
    except RuntimeError as exc:
        current = multiprocessing.get_start_method(allow_none=True)
        if "context has already been set" in str(exc):
            raise BackendError(
                "Lava's runtime needs the 'fork' multiprocessing start method, but this process "
                f"already uses {current!r} (set before Lava was imported). Import Lava "
                "(neurodeploy.core.compat.lava.ensure_lava_importable()) before choosing a start "
                "method, or leave the platform default ('fork' on Linux)."
            ) from exc
        raise _as_backend_error(exc) from exc
    except Exception as exc:  # noqa: BLE001
        raise _as_backend_error(exc) from exc
    finally:
        multiprocessing.set_start_method = original  # type: ignore[assignment]


# --------------------------------------------------------------------------- helpers


def _as_backend_error(exc: BaseException) -> BackendError:
    """Turn an exception raised while importing Lava into a :class:`BackendError`."""
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, ModuleNotFoundError):
        missing = exc.name or ""
        if missing == "lava" or missing.startswith("lava."):
            if _distribution_version(_LAVA_DIST) is None:
                return BackendError(f"Lava (lava-nc) is not installed; {LAVA_INSTALL_HINT}.")
            return BackendError(
                f"lava-nc is installed but module {missing!r} is missing (a broken or partial "
                f"installation?); reinstall it: {LAVA_INSTALL_HINT}."
            )
        if missing:
            return BackendError(
                f"lava-nc is installed but its dependency {missing!r} is not (it was probably "
                f"installed with --no-deps); {LAVA_INSTALL_HINT}."
            )
    return BackendError(f"importing Lava failed: {type(exc).__name__}: {exc}")


def _distribution_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nc_subcompiler_present() -> bool:
    """Whether ``lava.magma.compiler.subcompilers.nc`` exists, found without importing it.

    ``importlib.util.find_spec`` on the dotted name would import the parent packages, i.e. Lava
    itself; the top-level ``lava`` namespace package is only looked up, not imported.
    """
    spec = importlib.util.find_spec("lava")
    if spec is None or not spec.submodule_search_locations:
        return False
    for location in spec.submodule_search_locations:
        sub = Path(location, "magma", "compiler", "subcompilers")
        if (sub / "nc").is_dir() or any(sub.glob("nc.*")):
            return True
    return False
