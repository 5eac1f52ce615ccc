"""Shared helpers for the backend tests."""

from __future__ import annotations

import dataclasses

#: Lava's CPU simulator is slow (~25-90 ms per step for the E/I network's 13 processes on 2
#: cores): backend tests run short
STEPS = {"ei_network": 150}


def shorten(net, steps=None):
    """``net`` with at most ``steps`` steps (default: STEPS for the model, else 600)."""
    steps = steps or STEPS.get(net.name, 600)
    return dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, steps=min(steps, net.simulation.steps)))


def with_all_spike_probes(net):
    """``net`` with a spike probe on every population that has none."""
    from neurodeploy.ir import Probe

    extra = tuple(Probe(f"{p.name}.all_spikes", p.name, "spikes") for p in net.populations
                  if not any(pb.target == p.name and pb.variable == "spikes" for pb in net.probes))
    return dataclasses.replace(net, probes=net.probes + extra)
