"""The non-spiking ``li`` and ``cuba_li`` models (NIR's LI and CubaLI): reference steps against
closed forms, Brian2 against the reference, and NIR read-out layers imported with them."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest

from neurodeploy.backends.reference import simulator as reference
from neurodeploy.core.errors import NeurodeployError, NotImplementedYet
from neurodeploy.interop.nir import export_nir, import_nir
from neurodeploy.ir import to_json
from neurodeploy.library.neurons import get_neuron
from neurodeploy import simulate
from neurodeploy.core.targets import load_target
from tests.backends.test_brian2 import _driven_network, assert_same, b2

DT = 1e-4


def test_li_reference_step_is_the_exact_exponential_and_never_spikes():
    m = get_neuron("li")
    p = m.make_params({"tau_m": 10e-3, "v_leak": -0.01, "R_m": 1e6})
    state = m.initial_state(p, 1)
    I = 5e-6  # v_inf = -0.01 + 5 V: far above any threshold
    for k in range(1, 201):
        state, s = m.reference_step(p, state, {"I_ext": np.array([I])}, DT)
        assert not s.any()
    v_inf = -0.01 + 1e6 * I
    assert state["v"][0] == pytest.approx(v_inf + (-0.01 - v_inf) * np.exp(-200 * DT / 10e-3), rel=1e-12)
    state, _ = m.reference_step(p, state, {"syn": np.array([0.5]), "I_ext": np.array([I])}, DT)
    v_before = v_inf + (-0.01 - v_inf) * np.exp(-201 * DT / 10e-3)
    assert state["v"][0] == pytest.approx(v_before + 0.5, rel=1e-12)  # a spike's weight is a jump


def test_cuba_li_reference_step_matches_the_matrix_exponential():
    from scipy.linalg import expm

    m = get_neuron("cuba_li")
    p = m.make_params({"tau_syn": 2e-3, "tau_m": 10e-3, "R_m": 1e6, "v_leak": 0.0})
    state = dict(m.initial_state(p, 1), I=np.array([3e-6]))
    for _ in range(50):
        state, s = m.reference_step(p, state, {}, DT)
        assert not s.any()
    A = np.array([[-1 / p.tau_syn, 0.0], [p.R_m / p.tau_m, -1 / p.tau_m]])
    want = expm(A * 50 * DT) @ np.array([3e-6, 0.0])
    np.testing.assert_allclose([state["I"][0], state["v"][0]], want, rtol=1e-10)


@pytest.mark.parametrize("model, params", [("li", {}), ("cuba_li", {"R_m": 10e6})])
def test_brian2_equals_the_reference(model, params):
    net = _driven_network(model, **params)
    ref = reference.simulate(net)
    assert ref.counts["p"].sum() == 0
    assert np.ptp(ref.traces["p.v"].values) > 1e-3, "the test network should move v"
    assert_same(ref, b2(net))


def test_lava_and_torch_refuse_them_clearly():
    net = _driven_network("li")
    for target in ("lava", "torch"):
        with pytest.raises(NeurodeployError, match="'li' has no Lava lowering"):
            simulate(net, load_target(target))


def _readout_graph(kind="LI"):
    rng = np.random.default_rng(5)
    out = (nir.LI(tau=np.full(3, 0.02), r=np.full(3, 2.0), v_leak=np.zeros(3)) if kind == "LI" else
           nir.CubaLI(tau_syn=np.full(3, 0.005), tau_mem=np.full(3, 0.02), r=np.full(3, 2.0), v_leak=np.zeros(3),
                      w_in=np.full(3, 1.5)))
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([4])), "fc": nir.Affine(rng.normal(size=(5, 4)) + 1.5, np.full(5, 0.5)),
               "hidden": nir.LIF(tau=np.full(5, 0.01), r=np.ones(5), v_leak=np.zeros(5), v_threshold=np.full(5, 0.1),
                                 v_reset=np.zeros(5)),
               "ro": nir.Linear(rng.normal(size=(3, 5))), "readout": out, "output": nir.Output(np.array([3]))},
        edges=[("input", "fc"), ("fc", "hidden"), ("hidden", "ro"), ("ro", "readout"), ("readout", "output")])


@pytest.mark.parametrize("kind", ["LI", "CubaLI"])
def test_a_nir_readout_layer_imports_runs_and_round_trips(kind, tmp_path):
    nir.write(tmp_path / "g.nir", _readout_graph(kind))
    inputs = (np.random.default_rng(0).random((200, 4)) < 0.2).astype(np.int8)
    net, _ = import_nir(tmp_path / "g.nir", tmp_path / "a" / "g.yaml", inputs=inputs, steps=200)
    readout = net.node("readout")
    assert readout.model == {"LI": "li", "CubaLI": "cuba_li"}[kind]
    assert [(pb.target, pb.variable) for pb in net.probes] == [("hidden", "spikes"), ("readout", "v")]
    ref = reference.simulate(net)
    assert ref.counts["hidden"].sum() > 0 and np.ptp(ref.traces["readout.v"].values) > 0
    assert_same(ref, b2(net))
    export_nir(net, tmp_path / "back.nir")
    assert isinstance(nir.read(tmp_path / "back.nir").nodes["readout"], getattr(nir, kind))
    back, _ = import_nir(tmp_path / "back.nir", tmp_path / "b" / "g.yaml")
    a, b = json.loads(to_json(net)), json.loads(to_json(back))
    a["network"].pop("origin"), b["network"].pop("origin")
    assert a == b


def test_a_graded_output_feeding_a_neuron_is_refused(tmp_path):
    g = nir.NIRGraph(nodes={"input": nir.Input(np.array([2])),
                            "li": nir.LI(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2)),
                            "lif": nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2),
                                           v_threshold=np.ones(2), v_reset=np.zeros(2)),
                            "output": nir.Output(np.array([2]))},
                     edges=[("input", "li"), ("li", "lif"), ("lif", "output")])
    nir.write(tmp_path / "g.nir", g)
    with pytest.raises(NotImplementedYet, match=r"'li' \(LI\) has a graded output"):
        import_nir(tmp_path / "g.nir", tmp_path / "g.yaml")
