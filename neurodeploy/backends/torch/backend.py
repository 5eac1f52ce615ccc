"""The torch backend object (targets ``torch``: float; ``loihi2-torch``: Loihi 2 integers)."""

from __future__ import annotations

import dataclasses

from ...core.result import Result
from ...core.targets import Target
from ...ir.nodes import Network
from ...passes.pipeline import compile_network
from ..base import Backend, BackendInfo, package_version
from . import simulator
from .simulator import TorchOptions, TorchSim, float_dtype, pick_device, unsupported_nodes


class TorchBackend(Backend):
    name = "torch"
    options_type = TorchOptions

    def statuses(self) -> list[BackendInfo]:
        v = package_version("torch")
        if v is None:
            return [BackendInfo("torch", False, "torch is not installed (pip install torch==2.13.0, or make install)",
                                issue="GPU fallback backend")]
        try:
            import torch

            if torch.cuda.is_available():
                dev = f"CUDA ({torch.cuda.get_device_name(0)})"
            else:
                dev = "CPU only (no CUDA device visible)"
        except Exception as e:  # a broken torch install must not break `info`
            return [BackendInfo("torch", False, f"torch {v} fails to import: {e}", issue="GPU fallback backend")]
        return [BackendInfo("torch", True, f"torch {v}; device: {dev}", implemented=True, issue="GPU fallback backend")]

    def unsupported(self, net: Network, target: Target) -> dict[str, str]:
        out: dict[str, str] = {}
        for u in unsupported_nodes(net, target.number_format == "fixed"):
            out.setdefault(u.node, u.reason)
        return out

    def run(self, net: Network, target: Target, options=None, seeds=None) -> list[Result]:
        opts = self.options(options)
        if seeds:
            opts = dataclasses.replace(opts, trial_seeds=tuple(int(s) for s in seeds))
        return simulator.run(net, target, opts)

    def build(self, net: Network, target: Target, options=None) -> TorchSim:
        """A :class:`~neurodeploy.backends.torch.simulator.TorchSim`: ``sim.step(m)`` for Lava steps
        ``m = 1 .. sim.steps``, then ``sim.results(wall, dtype)``."""
        opts = self.options(options)
        seeds = tuple(opts.trial_seeds) if opts.trial_seeds else (net.simulation.seed,)
        return TorchSim(net, target, pick_device(opts.device), float_dtype(opts, target), seeds)

    def compiles(self, target: Target) -> bool:
        return target.number_format == "fixed"

    def compile(self, net: Network, target: Target, allow_fallback: bool = True):
        if not self.compiles(target):
            return super().compile(net, target, allow_fallback)
        return compile_network(net, target)
