"""The backend contract, and the registries of backends and of block lowerings.

A backend is an object of a :class:`Backend` subclass, registered with :func:`register_backend`
by its package (``backends/<name>/__init__.py``); it keeps its heavy imports (brian2, lava, torch)
inside functions and reports whether it can run here, and why not, without raising. A block kind
(``ipvae``, ``lca``) runs on a backend through a :class:`BlockLowering` registered with
:func:`register_block_lowering` in ``backends/<name>/blocks/<kind>.py``. Nothing outside asks
which backend it is talking to: the CLI, the API, validation and block evaluation go through
these two registries.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
from dataclasses import dataclass
from typing import ClassVar

from ..core.errors import NotImplementedYet, UsageError
from ..core.result import Result
from ..core.targets import Target, load_target
from ..ir.nodes import Network
from ..library.blocks import BLOCKS


@dataclass(frozen=True)
class BackendInfo:
    name: str
    available: bool
    detail: str  # version or the reason it is unavailable
    implemented: bool = False
    issue: str = ""  # what it is for


def package_version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


class Backend:
    """Where a model runs. Subclasses set the class attributes and override what they support."""

    name: ClassVar[str]
    #: the dataclass of this backend's run options; its ``CLI`` dict maps command-line option
    #: names (``codegen``, ``torch_device``, ...) to its field names
    options_type: ClassVar[type]
    #: runs go through the placement pass: nodes this backend cannot host run on the target's
    #: fallback (a hybrid run, :mod:`neurodeploy.backends.hybrid`)
    places: ClassVar[bool] = False

    def statuses(self) -> list[BackendInfo]:
        """What ``neurodeploy info`` shows for this backend (never raises)."""
        raise NotImplementedError

    def available(self) -> tuple[bool, str]:
        s = self.statuses()[0]
        return s.available, s.detail

    def unsupported(self, net: Network, target: Target) -> dict[str, str]:
        """Node name -> why this backend cannot run it on ``target`` (empty when it runs all)."""
        return {}

    def supports(self, node: str, net: Network, target: Target) -> tuple[bool, str]:
        why = self.unsupported(net, target).get(node)
        return why is None, why or ""

    def check_target(self, target: Target) -> None:
        """Raise when ``target`` cannot be used here at all (e.g. hardware that is not present)."""

    def describe(self, target: Target, options, net: Network | None = None) -> str:
        """A few words for the ``running ...`` line (e.g. Brian2's code generation, which depends
        on ``net``: its size and whether its compiled code is cached)."""
        return ""

    def run(self, net: Network, target: Target, options=None, seeds: tuple[int, ...] | None = None) -> list[Result]:
        """Simulate ``net`` once per seed (``None``: the spec's seed); one :class:`Result` each."""
        raise NotImplementedError

    def build(self, net: Network, target: Target, options=None):
        """The backend's own simulator object for ``net``, built and not run."""
        raise NotImplementedYet(f"backend '{self.name}' has no simulator object to hand out")

    def run_block(self, coder, X, Ts, target: Target, **kw) -> dict:
        """Run a coder (:class:`~neurodeploy.library.blocks.coder.Coder`) on images ``X`` for every
        number of iterations in ``Ts`` through this backend's lowering of its block kind."""
        low = block_lowering(target, coder.kind)
        low.check(target, coder)
        return low.run(coder, X, Ts, target, **kw)

    def compiles(self, target: Target) -> bool:
        """Whether :meth:`compile` has an artifact to write for ``target``."""
        return False

    def compile(self, net: Network, target: Target, allow_fallback: bool = True):
        """The compiled artifact (:class:`neurodeploy.passes.base.Compilation`) for ``target``."""
        raise NotImplementedYet(f"compiling for target '{target.name}' ({target.backend}, {target.number_format}) "
                                "is not implemented yet (`neurodeploy run` simulates it directly)")

    # -- options ---------------------------------------------------------------------------

    def options(self, values=None, *, strict: bool = True, **more):
        """An ``options_type`` from ``values`` (a dict of field names, or an ``options_type`` that
        ``more`` updates). ``strict``: an unknown name is a :class:`UsageError`; otherwise names
        are the command line's (``options_type.CLI``) and those of other backends are ignored."""
        if isinstance(values, self.options_type):
            return dataclasses.replace(values, **more) if more else values
        if values is not None and not isinstance(values, dict):
            raise UsageError(f"options for backend '{self.name}' must be a dict or {self.options_type.__name__}, "
                             f"got {type(values).__name__}")
        values = {**(values or {}), **more}
        fields = {f.name for f in dataclasses.fields(self.options_type)}
        if strict:
            bad = sorted(set(values) - fields)
            if bad:
                raise UsageError(f"{', '.join(repr(b) for b in bad)}: not an option of backend '{self.name}' "
                                 f"(its options: {', '.join(sorted(fields))})")
            return self.options_type(**values)
        cli = getattr(self.options_type, "CLI", {})
        return self.options_type(**{field: values[flag] for flag, field in cli.items()
                                    if values.get(flag) is not None})


BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    if backend.name in BACKENDS:
        raise ValueError(f"backend {backend.name!r} registered twice")
    BACKENDS[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise NotImplementedYet(f"there is no backend '{name}' (backends: {', '.join(sorted(BACKENDS))})") from None


def fallback_unsupported(target: Target):
    """The ``unsupported`` of ``target``'s fallback (its backend, for the fallback target), or None."""
    if not target.fallback:
        return None
    fb = load_target(target.fallback)
    backend = get_backend(fb.backend)
    return lambda net: backend.unsupported(net, fb)


def backend_statuses() -> list[BackendInfo]:
    return [s for b in BACKENDS.values() for s in b.statuses()]


# --- block lowerings -------------------------------------------------------------------------

class BlockLowering:
    """How one backend runs one block kind (a coder recognised in an expanded network:
    :class:`neurodeploy.library.blocks.coder.Coder`).

    ``run`` returns, per number of iterations T, what the block's definition turns into its
    metrics (:meth:`neurodeploy.library.blocks.base.BlockDef.row`)."""

    backend: ClassVar[str]
    kind: ClassVar[str]

    def check(self, target: Target, coder) -> None:
        """Raise :class:`NotImplementedYet` (why, and where it runs instead) if ``target`` cannot."""

    def describe(self, target: Target, coder, device: str = "auto") -> str:
        """What runs, in words (``metrics.json``'s ``runner``; ``device``: the torch device asked for)."""
        return f"{self.backend} ({self.kind})"

    def form_computed(self, target: Target, coder) -> str:
        """The network form that actually runs (the block's ``form`` where it has one)."""
        return str(coder.params.get("form", ""))

    def run(self, coder, X, Ts, target: Target, *, seed: int = 0, batch: int | None = None,
            progress: bool = False, device: str = "auto") -> dict:
        raise NotImplementedError

    def compiles(self, target: Target) -> bool:
        """Whether :meth:`compile` writes an artifact for ``target`` (``deploy`` compiles first then)."""
        return False

    def summary(self, report: dict) -> str:
        """The compile report in words (``neurodeploy compile`` prints it)."""
        return f"compiled {self.kind} block '{report.get('block', '?')}' for {report.get('target', '?')}"

    def compile(self, net: Network, coder, target: Target, out_dir, log=None) -> tuple[dict, dict]:
        """(report, files) of the deployable artifact under ``out_dir``."""
        raise NotImplementedYet(f"compiling a{'n' if self.kind[0] in 'aeiou' else ''} {self.kind} block for "
                                f"'{target.name}' ({target.backend}, {target.number_format}) is not implemented "
                                f"yet: {BLOCKS[self.kind].compile_hint}".rstrip(": "))


BLOCK_LOWERINGS: dict[tuple[str, str], BlockLowering] = {}


def register_block_lowering(cls: type[BlockLowering]) -> type[BlockLowering]:
    key = (cls.backend, cls.kind)
    if key in BLOCK_LOWERINGS:
        raise ValueError(f"block lowering {key} registered twice")
    BLOCK_LOWERINGS[key] = cls()
    return cls


def block_lowering(target: Target, kind: str) -> BlockLowering:
    """The lowering of block ``kind`` for ``target``'s backend (NotImplementedYet if none)."""
    low = BLOCK_LOWERINGS.get((target.backend, kind))
    if low is None:
        where = sorted(b for b, k in BLOCK_LOWERINGS if k == kind)
        raise NotImplementedYet(f"the {kind} block has no lowering for target '{target.name}' ({target.backend}, "
                                f"{target.number_format}); it runs on the backends {', '.join(where) or 'none'}")
    return low
