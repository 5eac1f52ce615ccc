"""Neuron registry: every model is well formed, and each numpy reference step is checked
against an independent oracle (closed-form solutions, matrix exponentials, statistics)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from neurodeploy.library.neurons import NEURONS, get_neuron
from neurodeploy.core.params import REQUIRED
from neurodeploy.core.units import dim_of_unit

DT = 1e-4


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_model_is_well_formed(name):
    m = NEURONS[name]
    assert m.name == name
    assert m.doc(), "the ODE belongs in the docstring"
    for pname, (info, default) in m.param_infos().items():
        assert info.doc, f"{name}.{pname} has no description"
        if info.kind == "quantity":
            dim_of_unit(info.unit)  # a real Brian2 unit
            assert default is REQUIRED or isinstance(default, float)
    for var, unit in m.state.items():
        dim_of_unit(unit)
    for var, p in m.state_defaults.items():
        assert var in m.state and p in m.param_infos()
    if m.graded:  # graded models take the weighted sum of their sources' outputs as "graded"
        assert m.synaptic_target == "graded" and m.weight_unit == "1"
        assert m.output_var in m.state and m.equations
    elif not m.is_source:
        assert m.synaptic_target in m.state
        assert m.weight_unit == m.state[m.synaptic_target]
        assert m.equations


@pytest.mark.parametrize("name", [n for n in sorted(NEURONS) if not NEURONS[n].is_source])
def test_equations_parse_in_brian2_and_use_only_declared_names(name):
    from brian2 import Equations

    m = NEURONS[name]
    eqs = Equations(m.equations)
    declared = set(m.state) | set(m.param_infos()) | {"t", "dt"}
    used = set(eqs.identifiers) | set(eqs.names)
    assert used <= declared, f"undeclared names in {name}'s equations: {used - declared}"
    assert set(eqs.diff_eq_names) <= set(m.state)


def _run(model, params, steps, inputs, v0=None, size=1):
    p = model.make_params(params)
    init = {"v": np.full(size, v0)} if v0 is not None else None
    state = model.initial_state(p, size, init)
    vs, spikes = [], []
    for k in range(steps):
        inp = inputs(k) if callable(inputs) else inputs
        state, s = model.reference_step(p, state, inp, DT)
        vs.append(state["v"].copy())
        spikes.append(s.copy())
    return p, np.array(vs), np.array(spikes)


def test_lif_subthreshold_matches_closed_form_exactly():
    lif = get_neuron("lif")
    i_ext = 1.0e-9  # v_inf = -55 mV, below threshold
    p, vs, spikes = _run(lif, {}, 500, {"I_ext": np.array([i_ext])})
    t = DT * np.arange(1, 501)
    v_inf = p.v_rest + p.R_m * i_ext
    expected = v_inf + (p.v_rest - v_inf) * np.exp(-t / p.tau_m)
    np.testing.assert_allclose(vs[:, 0], expected, rtol=0, atol=1e-12)
    assert not spikes.any()


@pytest.mark.parametrize("i_ext", [1.6e-9, 2e-9, 5e-9])
def test_lif_first_spike_time_matches_analytic_within_one_step(i_ext):
    lif = get_neuron("lif")
    p, vs, spikes = _run(lif, {}, 2000, {"I_ext": np.array([i_ext])})
    first = (np.flatnonzero(spikes[:, 0])[0] + 1) * DT
    t_star = lif.first_spike_time(p, i_ext)
    assert 0 <= first - t_star < DT


def test_lif_refractory_and_reset():
    lif = get_neuron("lif")
    p, vs, spikes = _run(lif, {"t_ref": 2e-3}, 1000, {"I_ext": np.array([5e-9])})
    k = np.flatnonzero(spikes[:, 0])
    assert len(k) >= 2
    n_ref = round(p.t_ref / DT)
    # a neuron that spiked in step s is held at v_reset until step s + n_ref, where it integrates
    np.testing.assert_array_equal(vs[k[0]:k[0] + n_ref, 0], p.v_reset)
    assert vs[k[0] + n_ref, 0] > p.v_reset
    # inter-spike interval = refractory period + analytic time to threshold from reset
    isi = (k[1] - k[0]) * DT
    expected = p.t_ref + lif.first_spike_time(p, 5e-9, v0=p.v_reset)
    assert abs(isi - expected) <= DT


def test_zero_refractory_allows_consecutive_spikes():
    cuba = get_neuron("cuba_lif")
    p = cuba.make_params({"v_th": 1e-3, "R_m": 1e6, "t_ref": 0.0})
    state = cuba.initial_state(p, 1)
    fired = []
    for _ in range(3):
        state, s = cuba.reference_step(p, state, {"I_ext": np.array([1e-3])}, DT)
        fired.append(bool(s[0]))
    assert fired == [True, True, True]


def test_lif_synaptic_input_is_a_voltage_jump():
    lif = get_neuron("lif")
    p, vs, _ = _run(lif, {}, 3, lambda k: {"syn": np.array([2e-3 if k == 1 else 0.0])})
    decay = np.exp(-DT / p.tau_m)
    assert vs[1, 0] == pytest.approx(p.v_rest + 2e-3)
    assert vs[2, 0] == pytest.approx(p.v_rest + 2e-3 * decay)


@pytest.mark.parametrize("tau_syn", [5e-3, 20e-3])  # 20 ms = tau_m exercises the degenerate case
def test_cuba_lif_matches_matrix_exponential(tau_syn):
    cuba = get_neuron("cuba_lif")
    params = {"tau_syn": tau_syn, "tau_m": 20e-3, "R_m": 1e6, "v_th": 1.0}  # no spikes
    p = cuba.make_params(params)
    state = cuba.initial_state(p, 1, {"v": np.array([0.0])})
    state["I"] = np.array([5e-9])
    bias = 0.0
    vs = []
    for _ in range(300):
        state, _ = cuba.reference_step(p, state, {"I_ext": np.array([bias])}, DT)
        vs.append((state["I"][0], state["v"][0]))
    A = np.array([[-1 / p.tau_syn, 0.0], [p.R_m / p.tau_m, -1 / p.tau_m]])
    x0 = np.array([5e-9, 0.0])
    for k in (1, 10, 299):
        expected = expm(A * DT * (k + 1)) @ x0
        assert vs[k][0] == pytest.approx(expected[0], rel=1e-9)
        assert vs[k][1] == pytest.approx(expected[1], rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("mode", ["to_value", "subtract"])
def test_cuba_lif_reset_modes(mode):
    cuba = get_neuron("cuba_lif")
    p = cuba.make_params({"reset_mode": mode, "v_th": 10e-3, "v_reset": 0.0, "R_m": 1e6})
    state = cuba.initial_state(p, 1, {"v": np.array([9.99e-3])})
    state, s = cuba.reference_step(p, state, {"I_ext": np.array([1e-6])}, DT)  # big push over threshold
    assert s[0]
    v_before = p.v_leak + p.R_m * 1e-6 + (9.99e-3 - p.R_m * 1e-6) * np.exp(-DT / p.tau_m)
    want = 0.0 if mode == "to_value" else v_before - 10e-3
    assert state["v"][0] == pytest.approx(want, abs=1e-12)


def test_poisson_source_rate_statistics():
    src = get_neuron("poisson_source")
    p = src.make_params({"rate": 50.0})
    rng = np.random.default_rng(0)
    n, steps = 200, 2000
    counts = np.zeros(n)
    for _ in range(steps):
        _, s = src.reference_step(p, {}, {"size": n}, DT, rng)
        counts += s
    expected = 50.0 * steps * DT  # 10 spikes per neuron
    sem = np.sqrt(expected / n)
    assert abs(counts.mean() - expected) < 5 * sem


def test_spike_source_emits_the_given_indices():
    src = get_neuron("spike_source")
    _, s = src.reference_step(src.make_params(), {}, {"size": 5, "indices": [1, 3]}, DT)
    np.testing.assert_array_equal(s, [False, True, False, True, False])
