"""Running a network on a target: the backend from the registry, the placement pass for backends
that place (Lava), and a hybrid run when part of the network goes to the target's fallback."""

from __future__ import annotations

from ..core.errors import NotImplementedYet
from ..core.result import Result
from ..core.targets import Target
from ..ir.nodes import Network
from ..passes.estimate import check_run
from ..passes.place import Placement, place
from ..spec import verify
from ..spec.overrides import with_seed
from . import hybrid
from .base import fallback_unsupported, get_backend


def plan(net: Network, target: Target, allow_fallback: bool = True) -> Placement:
    """Where every node of ``net`` runs on ``target`` (all on the target for backends that do not
    place)."""
    backend = get_backend(target.backend)
    unsupported = (lambda n: backend.unsupported(n, target)) if backend.places else None
    return place(net, target, unsupported, fallback_unsupported(target), allow_fallback)


def simulate(net: Network, target: Target, options=None, *, seeds: tuple[int, ...] | None = None,
             allow_fallback: bool = True) -> list[Result]:
    """Simulate ``net`` on ``target``, one :class:`Result` per seed (``None``: the spec's seed).

    ``options``: the backend's options object or a dict of its field names. On a backend that
    places (Lava), what it cannot run goes to the target's fallback (torch) and the run is hybrid;
    ``allow_fallback=False`` (or ``fallback: null`` in the target) makes such nodes a
    :class:`~neurodeploy.core.errors.CompileError` instead."""
    verify(net)
    if net.blocks:
        raise NotImplementedYet(
            f"'{net.name}' has blocks ({', '.join(b.name for b in net.blocks)}): a coder is evaluated on "
            "images (`neurodeploy eval`, neurodeploy.evaluate), not simulated as a spiking netlist")
    backend = get_backend(target.backend)
    backend.check_target(target)
    opts = backend.options(options)
    check_run(net, target.backend, len(seeds or (0,)))  # memory bounded from the IR's counts before anything is built
    if backend.places:
        where = plan(net, target, allow_fallback)
        if where.on_fallback:
            return [hybrid.run(with_seed(net, s), target, where, progress=opts.progress)
                    for s in (seeds or (net.simulation.seed,))]
    return backend.run(net, target, opts, seeds)
