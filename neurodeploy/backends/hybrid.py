"""Hybrid runs: the target part of a network in Lava, the fallback part in torch, every step.

The placement pass (:mod:`neurodeploy.passes.place`) splits the network; here the target part
is built exactly as a plain Lava run (:func:`neurodeploy.backends.lava.simulator._simulate`), and the
fallback part is one Lava Process, :class:`~.bridge.process.TorchPart`, whose Python
ProcessModel steps a :class:`~neurodeploy.backends.torch.simulator.TorchSim` once per Lava step (in
float64, on the CPU: Lava runs every process model in a forked child, where CUDA cannot start).

Spikes cross at the exchange points with the timing every Lava connection has, so the hybrid run
equals an all-Lava (or all-torch, or reference) run spike for spike in float:

* torch -> Lava: ``TorchPart.out_k`` sends the torch emitter's spikes of step ``m`` in step ``m``;
  the projection's own Lava ``Dense``/``Sparse`` (with its delay) delivers them in step
  ``m + 1 + delay``, as from a Lava neuron;
* Lava -> torch: the Lava emitter's ``s_out`` feeds an identity ``Dense`` whose ``a_out`` reaches
  ``TorchPart.in_k``; it delivers the spikes of step ``m - 1`` in step ``m``, and the torch part
  applies the projection (weights, delay) to them as to its own emitters.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from ..core.compat.lava import ensure_lava_importable
from ..core.errors import NotImplementedYet
from ..core.result import Result
from ..core.targets import Target, load_target
from ..core.versions import versions
from ..ir.nodes import Network
from ..lowering.loihi_result import loihi_result
from ..passes.pipeline import lower_for
from ..passes.place import FALLBACK, TARGET, external_emitters, split
from .lava import bridge
from .lava.simulator import LavaOptions, _simulate_or_fail, run as lava_run
from .torch.simulator import TorchOptions, TorchSim, pick_device, run as torch_run


class Bridge:
    """The torch part as seen by :func:`neurodeploy.backends.lava.simulator._simulate`."""

    def __init__(self, sim, listens: dict[str, int], speaks: dict[str, int]):
        TorchPart = bridge.TorchPart
        self.sim, self.listens, self.speaks = sim, listens, speaks
        self.proc = TorchPart(inputs=listens, outputs=speaks, record_size=sim.record_size(), sim=sim,
                              steps=sim.steps, name="nd_torch_part")
        self.model_map = {TorchPart: bridge.make_model(TorchPart, len(listens), len(speaks))}
        self.outputs = {name: SimpleNamespace(s_out=getattr(self.proc, f"out_{k}")) for k, name in enumerate(speaks)}
        self.flat = None

    def attach(self, procs: dict, probes: dict, monitors: list) -> None:
        from lava.proc.dense.process import Dense

        for k, (name, size) in enumerate(self.listens.items()):
            ident = Dense(weights=np.eye(size), name=f"nd_to_torch_{name}")
            procs[name].s_out.connect(ident.s_in)
            ident.a_out.connect(getattr(self.proc, f"in_{k}"))

    def collect(self, out: dict) -> None:
        self.flat = np.asarray(self.proc.record.get(), dtype=float)


def run(net: Network, target: Target, plan, progress: bool = True) -> Result:
    """Run ``net`` on Lava target ``target`` with the nodes ``plan`` puts on the fallback in torch."""
    fb_target = load_target(target.fallback or "torch")
    lava_net, torch_net = split(net, plan)
    if lava_net is None:  # nothing left for Lava: the whole network runs on the fallback
        res = torch_run(net, fb_target, TorchOptions(device="cpu", dtype="float64", progress=progress))[0]
        res.options["placement"] = plan.to_json()
        return res
    if torch_net is None:
        return lava_run(net, target, LavaOptions(progress=progress))
    listens = {n: next(s.size for s in torch_net.stimuli if s.name == n)
               for n in external_emitters(torch_net, plan, FALLBACK)}
    speaks = {n: next(s.size for s in lava_net.stimuli if s.name == n)
              for n in external_emitters(lava_net, plan, TARGET)}
    sim = TorchSim(torch_net, fb_target, pick_device("cpu"), "float64", (net.simulation.seed,),
                   external=frozenset(listens), record_all_spikes=True)
    low, q = lower_for(lava_net, target)
    if target.device == "loihi2":
        raise NotImplementedYet("hybrid runs on Loihi 2 hardware need lava-loihi (not installed); "
                                "use --target loihi2-sim")
    ensure_lava_importable()
    t0 = time.perf_counter()
    link = Bridge(sim, listens, speaks)
    data = _simulate_or_fail(f"the hybrid Lava + torch run of '{net.name}' failed", low, q, lava_net,
                             hybrid=link, progress=progress)
    wall = time.perf_counter() - t0
    res = loihi_result(lava_net, low, q, target, data, wall)
    sim.load(link.flat[: sim.record_size()])
    part = sim.results(wall, "float64")[0]
    res.network = net.name
    res.counts.update(part.counts)
    res.spikes.update(part.spikes)
    res.traces.update(part.traces)
    res.counts = {p.name: res.counts[p.name] for p in net.populations}
    res.backend = "lava+torch"
    res.versions = versions()
    res.options = {"select_tag": "fixed_pt" if q else "floating_pt", "fallback": fb_target.name,
                   "fallback_arithmetic": "float64 (CPU, inside Lava's process)",
                   "processes": {p.name: p.process for p in low.populations.values()},
                   "placement": plan.to_json(), "warnings": low.warnings}
    return res
