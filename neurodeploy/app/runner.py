"""Running a network on a target: dispatch to the backend, then write the Result files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import NotImplementedYet
from ..ir.nodes import Network
from ..spec import verify
from ..core.result import Result
from ..core.targets import Target


@dataclass
class RunOutputs:
    result: Result
    result_path: Path | None = None
    summary_path: Path | None = None
    plot_path: Path | None = None


def simulate(net: Network, target: Target, no_fallback: bool = False, **backend_options) -> Result:
    """Simulate ``net`` on ``target`` and return the :class:`Result`.

    On a Lava target, the placement pass puts what Lava cannot run onto the target's fallback
    (torch) and the run is hybrid (:mod:`neurodeploy.backends.hybrid`); ``no_fallback``
    (or ``fallback: null`` in the target) makes such nodes a CompileError instead."""
    verify(net)
    if net.blocks:
        raise NotImplementedYet(
            f"'{net.name}' has blocks ({', '.join(b.name for b in net.blocks)}); block expansion is not "
            "implemented yet (it lands with the iP-VAE issue)")
    if target.backend == "brian2":
        from ..backends.brian2.simulator import Brian2Options, run

        return run(net, target.name, Brian2Options(**backend_options))
    if target.backend == "lava":
        from ..backends.lava.simulator import LavaOptions, run as lava_run

        from ..passes.place import place

        if target.device == "loihi2":
            require_loihi2_hardware()
        plan = place(net, target, allow_fallback=not no_fallback)
        if plan.on_fallback:
            from ..backends import hybrid

            return hybrid.run(net, target, plan, **backend_options)
        return lava_run(net, target, LavaOptions(**backend_options))
    if target.backend == "torch":
        from ..backends.torch.simulator import TorchOptions, run as torch_run

        return torch_run(net, target, TorchOptions(**backend_options))[0]
    from ..backends.base import require_backend

    require_backend(target.backend, f"running '{net.name}' on target '{target.name}'")
    raise AssertionError("unreachable")


def require_loihi2_hardware() -> None:
    """Raise NotImplementedYet with what is missing for the Loihi 2 hardware path."""
    from ..core.compat.lava import has_loihi_hardware

    ok, why = has_loihi_hardware()
    if not ok:
        raise NotImplementedYet(
            f"Loihi 2 hardware is not available here: {why}. The bit-accurate CPU stand-in is "
            "--target loihi2-sim (same integers, same arithmetic for Lava's LIF)")


def run_to_dir(net: Network, target: Target, out_dir: str | Path, plot: bool = False, no_fallback: bool = False,
               **backend_options) -> RunOutputs:
    """Simulate and write ``result.npz``, then ``summary.json`` (written last: its presence means
    the run finished) and, with ``plot``, ``raster.png`` into ``out_dir``."""
    result = simulate(net, target, no_fallback=no_fallback, **backend_options)
    out = Path(out_dir)
    outputs = RunOutputs(result)
    outputs.result_path = result.save(out / "result.npz")
    if plot:
        from ..core.plot import raster_and_traces

        outputs.plot_path = raster_and_traces(result, out / "raster.png")
    outputs.summary_path = result.save_summary(out / "summary.json")
    return outputs
