"""The Brian2 backend object (target ``brian2``): the reference simulator."""

from __future__ import annotations

import importlib.util
import shutil

from ...core.result import Result
from ...core.targets import Target
from ...ir.nodes import Network
from ...spec.overrides import with_seed
from ..base import Backend, BackendInfo, package_version
from . import simulator
from .simulator import Brian2Options, decide_codegen, supports


class Brian2Backend(Backend):
    name = "brian2"
    options_type = Brian2Options

    def statuses(self) -> list[BackendInfo]:
        v = package_version("brian2")
        if v is None:
            return [BackendInfo("brian2", False, "brian2 is not installed (pip install brian2==2.9.0, or make install)",
                                issue="Brian2 reference backend")]
        cython = importlib.util.find_spec("Cython") is not None
        cc = shutil.which("cc") or shutil.which("gcc")
        codegen = "cython" if (cython and cc) else "numpy (" + ("no Cython" if not cython else "no C compiler") + ")"
        return [BackendInfo("brian2", True, f"brian2 {v}; code generation: {codegen}", implemented=True,
                            issue="Brian2 reference backend")]

    def unsupported(self, net: Network, target: Target) -> dict[str, str]:
        out = {}
        for group in (net.populations, net.stimuli, net.projections, net.blocks):
            for node in group:
                ok, why = supports(net, node)
                if not ok:
                    out[node.name] = why
        return out

    def describe(self, target: Target, options, net: Network | None = None) -> str:
        """The code generation target and why (``--codegen auto`` estimates the run time in numpy
        against Cython's compilation for ``net``: :mod:`.codegen`)."""
        opts = self.options(options)
        if opts.device == "cpp_standalone":
            return "Brian2 cpp_standalone (compiling the whole run to C++ first)"
        return decide_codegen(opts.codegen, net, opts.poisson).describe()

    def run(self, net: Network, target: Target, options=None, seeds=None) -> list[Result]:
        opts = self.options(options)
        with simulator.interrupts_raise():  # Ctrl-C stops the run with KeyboardInterrupt, not a truncated Result
            return [simulator.run(with_seed(net, s), target.name, opts) for s in (seeds or (net.simulation.seed,))]

    def run_block(self, coder, X, Ts, target: Target, **kw) -> dict:
        with simulator.interrupts_raise():
            return super().run_block(coder, X, Ts, target, **kw)

    def build(self, net: Network, target: Target, options=None):
        """The Brian2 objects of ``net``, built and not run: ``.network`` (a ``brian2.Network``),
        ``.groups``, ``.synapses``, ``.spike_monitors``, ``.state_monitors``. Brian2's global
        preferences (code generation target) are left as they are."""
        return simulator.build(net, self.options(options))
