"""The fused CPU kernel of the torch fallback (backends/torch/fused.py) against the eager loop.

The eager loop is the reference: in float64 the fused kernel gives the same spikes (steps and
neurons), the same counts, and ``v``/``I`` traces within 1e-9 (only the order in which one step's
synaptic inputs are summed differs), on every shipped model it runs and on a hand-written network
with several delays, both reset modes, refractoriness, a big CSR connection and sampled probes.
Where it does not apply (plasticity, a batch, Loihi integers, ...) ``auto`` runs the eager loop
and says why in ``Result.options["kernel"]``; ``kernel="eager"`` and the environment variable
force the eager loop. The compile is cached on disk: the first test pays it (a few seconds on
a fresh machine), the rest load it.
"""

from __future__ import annotations

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.backends.torch import fused
from neurodeploy.backends.torch.simulator import TorchOptions, run
from neurodeploy.core.errors import BackendError, UsageError
from neurodeploy.core.targets import load_target

from ..conftest import MODELS, rel
from .helpers import shorten, with_all_spike_probes

pytest.importorskip("numba")


def torch_run(net, target="torch", **kw):
    kw.setdefault("dtype", "float64")
    return run(net, load_target(target), TorchOptions(device="cpu", progress=False, **kw))


def assert_same(a, b):
    assert a.counts.keys() == b.counts.keys()
    for k in a.counts:
        np.testing.assert_array_equal(a.counts[k], b.counts[k], err_msg=k)
    assert a.spikes.keys() == b.spikes.keys()
    for k in a.spikes:
        np.testing.assert_array_equal(a.spikes[k].i, b.spikes[k].i, err_msg=k)
        np.testing.assert_array_equal(a.spikes[k].steps(a.dt), b.spikes[k].steps(b.dt), err_msg=k)
    assert a.traces.keys() == b.traces.keys()
    for k in a.traces:
        np.testing.assert_array_equal(a.traces[k].t, b.traces[k].t, err_msg=k)
        np.testing.assert_array_equal(a.traces[k].index, b.traces[k].index, err_msg=k)
        np.testing.assert_allclose(a.traces[k].values, b.traces[k].values, rtol=0, atol=1e-9, err_msg=k)


def _qualifies(net) -> bool:
    from neurodeploy.backends.torch.simulator import varying_currents

    return not varying_currents(net) and not any(p.plasticity for p in net.projections)


QUALIFYING = [m for m in MODELS if _qualifies(nd.load(rel(m)))]


def test_some_shipped_models_qualify():
    assert {m.stem for m in QUALIFYING} >= {"ei_network", "cuba_chain", "single_lif"}


@pytest.mark.parametrize("model", QUALIFYING, ids=lambda p: p.stem)
def test_fused_equals_eager_spike_for_spike_on_shipped_models(model):
    net = with_all_spike_probes(shorten(nd.load(rel(model)), 1000))
    eager = torch_run(net, kernel="eager")[0]
    got = torch_run(net, kernel="fused")[0]
    assert eager.options["kernel"].startswith("eager") and got.options["kernel"] == "fused-numba"
    assert sum(int(c.sum()) for c in eager.counts.values()) > 0
    assert_same(got, eager)


HAND = """
neurodeploy: 1
name: fused_hand
simulation: {dt: 0.1 ms, steps: 400, seed: 11}
populations:
  - name: big
    size: 4100
    model: lif
    params: {tau_m: 10 ms, v_rest: -65 mV, v_reset: -70 mV, v_th: -55 mV, t_ref: 1.3 ms}
    init: {v: {uniform: [-70 mV, -55 mV]}}
  - name: small
    size: 60
    model: lif
    params: {tau_m: 15 ms, v_rest: -65 mV, v_reset: -65 mV, v_th: -58 mV}
  - name: cuba
    size: 30
    model: cuba_lif
    params: {tau_syn: 2 ms, tau_m: 8 ms, v_th: 10 mV, R_m: 10 Mohm, reset_mode: subtract, I_bias: 0.4 nA}
stimuli:
  - {name: noise, kind: poisson, size: 300, rate: 40 Hz}
  - name: cue
    kind: spike_times
    size: 3
    spikes:
      - {neuron: 0, times: [1 ms, 5 ms]}
      - {neuron: 2, times: [2.3 ms, 20 ms]}
projections:
  - {name: noise_big, source: noise, target: big, connectivity: {kind: random, p: 0.1}, weights: 2.5 mV, delay: 0.1 ms}
  - name: big_big
    source: big
    target: big
    connectivity: {kind: random, p: 0.01, allow_self: false}
    weights: {init: uniform, low: 0.1 mV, high: 0.6 mV}
    delay: 2.7 ms
  - {name: big_small, source: big, target: small, connectivity: {kind: random, p: 0.02}, weights: 0.4 mV, delay: 3.3 ms}
  - {name: small_big, source: small, target: big, connectivity: dense, weights: 0.3 mV, delay: 1 ms, sign: inhibitory}
  - {name: cue_cuba, source: cue, target: cuba, connectivity: dense, weights: 3 nA, delay: 0.5 ms}
  - {name: small_cuba, source: small, target: cuba, connectivity: {kind: random, p: 0.3}, weights: 2 nA, delay: 0.2 ms}
  - {name: cuba_small, source: cuba, target: small, connectivity: {kind: random, p: 0.3}, weights: 4 mV, delay: 1.2 ms}
probes:
  - {target: big, record: spikes, indices: [0, 5, 17, 4000, 4099]}
  - {target: small, record: spikes}
  - {target: cuba, record: spikes}
  - {target: big, record: v, indices: [1, 2, 3], period: 0.3 ms}
  - {target: small, record: v}
  - {target: cuba, record: I, indices: [0, 7]}
  - {target: cuba, record: v, period: 0.2 ms}
"""


@pytest.fixture(scope="module")
def hand_net(tmp_path_factory):
    p = tmp_path_factory.mktemp("fused") / "hand.yaml"
    p.write_text(HAND)
    return nd.load(str(p))


def test_fused_equals_eager_on_a_network_with_delays(hand_net):
    eager = torch_run(hand_net, kernel="eager")[0]
    got = torch_run(hand_net)[0]  # auto
    assert got.options["kernel"] == "fused-numba"
    for name in ("big", "small", "cuba"):
        assert eager.counts[name].sum() > 0, name  # every population takes part
    assert_same(got, eager)


def test_a_full_spike_buffer_grows(hand_net, monkeypatch):
    monkeypatch.setattr(fused, "SPIKE_BUFFER", 8)
    monkeypatch.setattr(fused, "CHUNK_STEPS", 7)
    eager = torch_run(hand_net, kernel="eager")[0]
    got = torch_run(hand_net, kernel="fused")[0]
    assert got.options["kernel"] == "fused-numba"
    assert_same(got, eager)


def test_float32_runs_fused_and_agrees(hand_net):
    eager = torch_run(hand_net, kernel="eager", dtype="float32")[0]
    got = torch_run(hand_net, dtype="float32")[0]
    assert got.options["kernel"] == "fused-numba"
    # float32 sums in another order may flip a threshold crossing: agree on >= 98 % of cells
    for k in eager.counts:
        a = np.zeros((eager.steps, len(eager.counts[k])), bool)
        b = a.copy()
        a[eager.spikes[k].steps(eager.dt), eager.spikes[k].i] = True
        b[got.spikes[k].steps(got.dt), got.spikes[k].i] = True
        assert (a == b).mean() >= 0.98, k


def test_unsupported_cases_run_eager_and_say_why(hand_net):
    batch = torch_run(shorten(hand_net, 20), trial_seeds=(1, 2))
    assert all(r.options["kernel"].startswith("eager (a batch of 2 trials") for r in batch)
    net = shorten(nd.load(rel(next(m for m in MODELS if m.stem == "local_rules"))), 50)
    r = torch_run(net)[0]
    assert r.options["kernel"].startswith("eager (plastic projections")
    chain = shorten(nd.load(rel(next(m for m in MODELS if m.stem == "cuba_chain"))), 50)
    r = torch_run(chain, target="loihi2-torch", dtype=None)[0]
    assert r.options["kernel"] == "eager (Loihi 2 integer arithmetic (the fused kernel runs float arithmetic))"
    with pytest.raises(BackendError, match="torch kernel 'fused' cannot run this network: plastic projections"):
        torch_run(net, kernel="fused")


def test_forcing_the_eager_loop(hand_net, monkeypatch):
    net = shorten(hand_net, 20)
    assert torch_run(net, kernel="eager")[0].options["kernel"] == "eager (asked for)"
    monkeypatch.setenv(fused.ENV, "eager")
    assert torch_run(net, kernel="auto")[0].options["kernel"] == "eager (asked for)"
    monkeypatch.setenv(fused.ENV, "quick")
    with pytest.raises(UsageError, match="expected one of auto, fused, eager"):
        torch_run(net)


def test_options_from_the_cli_names():
    from neurodeploy.backends.base import get_backend

    opts = get_backend("torch").options({"torch_kernel": "eager"}, strict=False)
    assert opts.kernel == "eager"


def test_other_schedules_run_eager(hand_net):
    import dataclasses

    from neurodeploy.ir.nodes import SCHEDULES

    for schedule in [s for s in SCHEDULES if s != "exact"]:
        net = shorten(dataclasses.replace(hand_net, simulation=dataclasses.replace(hand_net.simulation,
                                                                                   schedule=schedule)), 20)
        r = torch_run(net)[0]
        assert r.options["kernel"] == f"eager (schedule '{schedule}' (the fused kernel runs the exact schedule))"


def test_recorded_spikes_are_bounded_as_they_arrive(hand_net, monkeypatch):
    import torch

    import neurodeploy.backends.torch.simulator as tb
    from neurodeploy.core.errors import CompileError

    planned = tb.TorchSim(hand_net, load_target("torch"), torch.device("cpu"), "float64", (11,)).planned_bytes
    monkeypatch.setattr(tb, "MAX_RECORD_BYTES", planned + 12 * 5)  # room for 5 recorded spikes
    monkeypatch.setattr(fused, "CHUNK_STEPS", 16)
    with pytest.raises(CompileError, match="spike probe .* recorded .* of spike indices by step"):
        torch_run(hand_net, kernel="fused")
