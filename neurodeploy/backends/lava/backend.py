"""The Lava backend object: what Lava can host, its targets' checks, runs and compiles."""

from __future__ import annotations

from ...core.compat.lava import has_loihi_hardware, lava_status
from ...core.errors import CompileError, NotImplementedYet
from ...core.result import Result
from ...core.targets import Target
from ...ir.nodes import Network
from ...lowering.learning_engine import canonical_encoding, third_factor_encoding
from ...lowering.loihi import lower, unsupported_nodes, weight_scale
from ...passes.pipeline import compile_network
from ...passes.quantize import quantize
from ...spec.overrides import with_seed
from ..base import Backend, BackendInfo, fallback_unsupported
from . import simulator
from .simulator import LavaOptions


def fixed_rule_problems(net: Network) -> dict[str, str]:
    """Plastic projections whose canonical rule has no fixed-point encoding (their constants,
    after the quantize pass picked the weight scale, are out of the learning engine's range)."""
    if not any(p.plasticity is not None for p in net.projections):
        return {}
    try:
        low = lower(net)
        q = quantize(low)
    except Exception:  # noqa: BLE001 - something else is unsupported; compile reports it
        return {}
    out = {}
    for pr in low.projections.values():
        if pr.canonical is None:
            continue
        try:
            if pr.modulator is not None:
                third_factor_encoding(pr.canonical, pr.modulator, low.dt, pr.factor, True, weight_scale(q, pr))
            else:
                canonical_encoding(pr.canonical, low.dt, pr.factor, True, weight_scale(q, pr))
        except (CompileError, NotImplementedYet) as e:
            out[pr.name] = f"'{pr.plasticity['rule']}' in fixed point: {e}"
    return out


def require_loihi2_hardware() -> None:
    """Raise NotImplementedYet with what is missing for the Loihi 2 hardware path."""
    ok, why = has_loihi_hardware()
    if not ok:
        raise NotImplementedYet(
            f"Loihi 2 hardware is not available here: {why}. The bit-accurate CPU stand-in is "
            "--target loihi2-sim (same integers, same arithmetic for Lava's LIF)")


class LavaBackend(Backend):
    name = "lava"
    options_type = LavaOptions
    places = True

    def statuses(self) -> list[BackendInfo]:
        ok, detail = lava_status()
        hw_ok, hw_detail = has_loihi_hardware()
        return [BackendInfo("lava", ok, detail, implemented=True, issue="Lava backend and the Loihi 2 conversion layer"),
                BackendInfo("loihi2", hw_ok, hw_detail, implemented=True,
                            issue="deploy writes the artifact; running it needs lava-loihi and is untested")]

    def unsupported(self, net: Network, target: Target) -> dict[str, str]:
        """What the Loihi form cannot express (:func:`neurodeploy.lowering.loihi.unsupported_nodes`),
        rules whose constants do not fit the fixed-point learning engine, and populations larger
        than all the target's cores together. The placement pass asks this once per network."""
        out = {u.node: u.reason for u in reversed(unsupported_nodes(net))}  # the first reason wins
        if target.number_format == "fixed":
            out.update({k: v for k, v in fixed_rule_problems(net).items() if k not in out})
        limits = target.limits
        per_core, cores, chips = (limits.get(k) for k in ("neurons_per_core", "cores_per_chip", "chips"))
        if per_core and cores and chips:
            for pop in net.populations:
                if pop.name not in out and pop.size > per_core * cores * chips:
                    out[pop.name] = (f"{pop.size} neurons exceed the chip ({per_core} per core x {cores} cores x "
                                     f"{chips} chip(s) = {per_core * cores * chips})")
        return out

    def check_target(self, target: Target) -> None:
        if target.device == "loihi2":
            require_loihi2_hardware()

    def run(self, net: Network, target: Target, options=None, seeds=None) -> list[Result]:
        opts = self.options(options)
        return [simulator.run(with_seed(net, s), target, opts) for s in (seeds or (net.simulation.seed,))]

    def compiles(self, target: Target) -> bool:
        return True

    def compile(self, net: Network, target: Target, allow_fallback: bool = True):
        return compile_network(net, target, unsupported=lambda n: self.unsupported(n, target),
                               fallback_unsupported=fallback_unsupported(target), allow_fallback=allow_fallback)
