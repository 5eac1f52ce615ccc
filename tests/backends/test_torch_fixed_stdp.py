"""Pair STDP on target ``loihi2-torch`` (Lava's fixed-point learning engine emulated in torch,
:mod:`neurodeploy.backends.torch.lava_learning`) against ``loihi2-sim`` (Lava 0.10.0 itself):
the same spikes and the same learned integer weights.

The network is the shipped ``models/hybrid_ramp_stdp.yaml`` made Lava-runnable: the ramp current
held constant at its middle value, ``driven_learner``'s STDP additive (the shipped soft-bound rule
has no Lava lowering), plus an inhibitory plastic projection ``noise_learner`` so that both sign
modes learn. Weight probes record every step.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.core.errors import NotImplementedYet
from neurodeploy.ir import CurrentStimulus, PlasticityRule, Probe, Projection, Weights

pytestmark = pytest.mark.lava

pytest.importorskip("torch")

MODELS = Path(__file__).resolve().parents[2] / "models"


def stdp_net(duration: float = 0.3):
    from neurodeploy.spec import verify

    net = nd.load(MODELS / "hybrid_ramp_stdp.yaml", duration=duration)
    stimuli = tuple(CurrentStimulus("ramp", "driven", amplitude=2.2e-9) if s.name == "ramp" else s
                    for s in net.stimuli)
    projections = []
    for p in net.projections:
        if p.name == "driven_learner":
            params = dict(p.plasticity.params, multiplicative=False)
            p = dataclasses.replace(p, plasticity=PlasticityRule("stdp", params))
        projections.append(p)
    projections.append(Projection(
        "noise_learner", "noise", "learner", Weights("constant", {"value": 0.4e-9}, unit="ampere"),
        sign="inhibitory", plasticity=PlasticityRule("stdp", {"tau_pre": 10e-3, "tau_post": 30e-3, "a_plus": 0.06e-9,
                                                              "a_minus": 0.05e-9, "w_max": 1e-9})))
    probes = tuple(pb for pb in net.probes if pb.variable != "weights") + (
        Probe("w_driven", "driven_learner", "weights"), Probe("w_noise", "noise_learner", "weights", period=2e-3))
    return verify(dataclasses.replace(net, stimuli=stimuli, projections=tuple(projections), probes=probes))


def _same(a, b):
    assert set(a.spikes) == set(b.spikes)
    for name in a.spikes:
        np.testing.assert_array_equal(a.spikes[name].i, b.spikes[name].i, err_msg=name)
        np.testing.assert_array_equal(a.spikes[name].t, b.spikes[name].t, err_msg=name)
    # the weights (both plastic projections) and the membrane potentials, exactly
    assert {"w_driven", "w_noise", "learner.v", "out.v"} <= set(a.traces) == set(b.traces)
    for name in a.traces:
        np.testing.assert_array_equal(a.traces[name].t, b.traces[name].t, err_msg=name)
        np.testing.assert_array_equal(a.traces[name].values, b.traces[name].values, err_msg=name)


def test_stdp_on_loihi2_torch_equals_loihi2_sim():
    net = stdp_net()
    sim = nd.simulate(net, "loihi2-sim", allow_fallback=False, progress=False)
    tor = nd.simulate(net, "loihi2-torch", progress=False)
    assert tor.backend == "torch" and sim.backend == "lava"
    _same(sim, tor)
    # the learning engine's limits are reported as loihi2-sim reports them (w_max above the ceiling)
    assert tor.options["warnings"] == [w for w in sim.options["warnings"] if w.startswith("projection")]
    assert any("w_max" in w for w in tor.options["warnings"])
    # the run learned something, in both sign modes, and the learner fired
    assert sim.spikes["learner"].t.size > 0
    for name in ("w_driven", "w_noise"):
        w = np.abs(sim.traces[name].values)
        assert np.any(w[-1] != w[0]), name
        assert np.any(np.diff(w, axis=0) > 0) and np.any(np.diff(w, axis=0) < 0), name
        assert len(np.unique(w)) > 10, name  # many weight values went by, not one step up and down


def seed_free_structure(net):
    """``net`` with its random connectivity and weights drawn here, once (explicit pairs, constant
    weights): a torch batch takes the structure from the spec's seed and only the inputs and
    initial state from each trial's seed, a Lava run everything from its one seed."""
    from neurodeploy.ir import Connectivity

    rng = np.random.default_rng(1)
    size = {x.name: x.size for x in net.populations + net.stimuli if hasattr(x, "size")}
    out = []
    for p in net.projections:
        if p.connectivity.kind == "random":
            mask = rng.random((size[p.source], size[p.target])) < p.connectivity.p
            i, j = np.nonzero(mask)
            p = dataclasses.replace(p, connectivity=Connectivity("sparse", i=tuple(int(x) for x in i),
                                                                 j=tuple(int(x) for x in j)))
        if p.weights.kind == "uniform":
            mid = (p.weights.params["low"] + p.weights.params["high"]) / 2
            p = dataclasses.replace(p, weights=Weights("constant", {"value": mid}, unit=p.weights.unit))
        out.append(p)
    return dataclasses.replace(net, projections=tuple(out))


def test_stdp_on_loihi2_torch_batch_equals_loihi2_sim_per_seed():
    """Two trials in one torch batch: each equals the loihi2-sim run with its seed."""
    net = seed_free_structure(stdp_net(duration=0.15))
    tor = nd.simulate(net, "loihi2-torch", trials=2, progress=False)
    for k, r in enumerate(tor):
        sim = nd.simulate(net, "loihi2-sim", seed=net.simulation.seed + k, allow_fallback=False, progress=False)
        _same(sim, r)
    assert not np.array_equal(tor[0].spikes["out"].t, tor[1].spikes["out"].t)  # two different trials
    assert not np.array_equal(tor[0].traces["w_noise"].values, tor[1].traces["w_noise"].values)


def test_shipped_bengio_stdp_on_loihi2_torch_equals_loihi2_sim():
    """models/local_rules.yaml's Bengio rule (it lowers to pair STDP), the other two rules made
    static (loihi2-torch refuses them, see below)."""
    net = nd.load(MODELS / "local_rules.yaml", duration=0.3)
    net = dataclasses.replace(net, projections=tuple(
        p if p.name == "bengio" else dataclasses.replace(p, plasticity=None) for p in net.projections))
    sim = nd.simulate(net, "loihi2-sim", allow_fallback=False, progress=False)
    tor = nd.simulate(net, "loihi2-torch", progress=False)
    for name in sim.spikes:
        np.testing.assert_array_equal(sim.spikes[name].i, tor.spikes[name].i, err_msg=name)
        np.testing.assert_array_equal(sim.spikes[name].t, tor.spikes[name].t, err_msg=name)
    assert set(sim.traces) == set(tor.traces) and "bengio" in {t.target for t in sim.traces.values()}
    for name in sim.traces:
        np.testing.assert_array_equal(sim.traces[name].values, tor.traces[name].values, err_msg=name)
    w = next(t for t in sim.traces.values() if t.target == "bengio").values
    assert sim.spikes["post"].t.size > 0 and len(np.unique(w)) > 10


def test_loihi2_torch_refuses_other_rules_clearly():
    net = nd.load(MODELS / "local_rules.yaml", duration=0.02)
    with pytest.raises(NotImplementedYet, match="pair STDP"):
        nd.simulate(net, "loihi2-torch", progress=False)
    soft = nd.load(MODELS / "hybrid_ramp_stdp.yaml", duration=0.02)
    with pytest.raises(NotImplementedYet, match="multiplicative"):
        nd.simulate(soft, "loihi2-torch", progress=False)
