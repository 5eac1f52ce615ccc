"""Canonical trace form: pair STDP equals PairSTDP.window; Bengio's spiking trace rule has the
analytic window (integral zero); rate-form rules (Oja -> first PC, Bengio rate rule = gradient)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy.learn.rules import bengio_rate_dw, hebbian_dw, oja_dw
from neurodeploy.library.plasticity import RULES
from neurodeploy.library.plasticity.bengio import BengioSTDP, BengioSTDPParams
from neurodeploy.library.plasticity.canonical import Term
from neurodeploy.library.plasticity.stdp import PairSTDP

torch.set_num_threads(1)  # 2 shared CPU cores; these problems are tiny

DT = 1e-4
DELTAS_MS = [-50, -20, -5, -0.3, 0.3, 5, 20, 50]


def test_spec_level_registry():
    # the rules a spec can name; the third-factor building blocks have no spec-level source yet
    assert {"stdp", "bengio_stdp", "hebbian", "oja"} <= set(RULES)
    assert not {"eqprop_coactivity", "error_third_factor"} & set(RULES)


@pytest.mark.parametrize("delta_ms", DELTAS_MS + [0])
def test_canonical_pair_stdp_equals_window(delta_ms):
    p = PairSTDP.Params(tau_pre=20e-3, tau_post=10e-3, a_plus=0.01, a_minus=0.012, w_min=-1.0, w_max=1.0)
    rule = PairSTDP.canonical(p)
    got = rule.pair_dw(delta_ms * 1e-3, DT, tail=1e-3)
    want = float(PairSTDP.window(p, delta_ms * 1e-3))
    assert got == pytest.approx(want, rel=1e-9, abs=1e-15)
    if delta_ms:
        assert np.sign(got) == np.sign(delta_ms)


def test_canonical_pair_stdp_multiplicative_and_bounds():
    p = PairSTDP.Params(a_plus=0.1, a_minus=0.1, w_min=0.0, w_max=1.0, multiplicative=True)
    rule = PairSTDP.canonical(p)
    w0 = 0.8
    got = rule.pair_dw(5e-3, DT, tail=1e-3, w0=w0)
    assert got == pytest.approx(0.1 * np.exp(-5 / 20) * (1.0 - w0), rel=1e-9)
    got = rule.pair_dw(-5e-3, DT, tail=1e-3, w0=w0)
    assert got == pytest.approx(-0.1 * np.exp(-5 / 20) * (w0 - 0.0), rel=1e-9)
    hard = PairSTDP.canonical(PairSTDP.Params(a_plus=0.5, a_minus=0.5, w_min=0.0, w_max=0.6))
    w = hard.simulate([0, 10, 20], [1, 11, 21], 30, DT, w0=0.5)
    assert w.max() == pytest.approx(0.6) and w[-1] == pytest.approx(0.6)


def test_canonical_rejects_unknown_factor():
    with pytest.raises(ValueError, match="unknown factor"):
        Term(1.0, ("x1", "z9"))


@pytest.mark.parametrize("tau_pre,tau_s", [(20e-3, 20e-3), (10e-3, 30e-3)])
def test_bengio_trace_window_matches_analytic_and_integrates_to_zero(tau_pre, tau_s):
    p = BengioSTDPParams(eta=1.0, tau_pre=tau_pre, tau_s=tau_s)
    rule = BengioSTDP.canonical(p, DT)
    sim = np.array([rule.pair_dw(d * 1e-3, DT, tail=12 * max(tau_pre, tau_s)) for d in DELTAS_MS])
    ana = BengioSTDP.window(p, np.array(DELTAS_MS) * 1e-3)
    np.testing.assert_allclose(sim, ana, rtol=0.02)
    assert np.all(np.sign(sim) == np.sign(DELTAS_MS))
    # the analytic window integrates to zero ...
    d = np.linspace(-0.6, 0.6, 240001)
    w = BengioSTDP.window(p, d)
    assert abs(np.trapz(w, d)) < 1e-3 * np.trapz(np.abs(w), d)
    # ... and so does the simulated rule: a constant post rate (regular post spikes, pre spikes at
    # random phases) gives no drift, while the one-sided pair rule would drift
    rng = np.random.default_rng(0)
    n = 40000
    post = np.arange(50, n, 100)
    pre = np.sort(rng.choice(n, 400, replace=False))
    w_b = rule.simulate(pre, post, n, DT)[-1]
    single = rule.pair_dw(5e-3, DT)
    assert abs(w_b) < 0.05 * single * len(pre)


def test_bengio_window_is_pair_stdp_with_derived_amplitudes():
    p = BengioSTDPParams(eta=0.02, tau_pre=10e-3, tau_s=30e-3)
    q = PairSTDP.Params(**BengioSTDP.as_pair_stdp(p, -1.0, 1.0))
    d = np.array(DELTAS_MS) * 1e-3
    np.testing.assert_allclose(PairSTDP.window(q, d), BengioSTDP.window(p, d), rtol=1e-12)
    assert q.a_plus / q.a_minus == pytest.approx(p.tau_s / p.tau_pre)


def test_bengio_rate_rule_is_gradient_of_the_prediction_loss():
    # section 1.3: l = 1/2 |s_next - s_hat|^2 with s_hat = s + eps (W rho(s_pre) + b - s);
    # -dl/dW = eps rho(pre) (s_next - s_hat); at a fixed point s_hat = s, giving the rate rule
    torch.manual_seed(0)
    pre = torch.rand(8, 5, dtype=torch.float64)
    W = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    eps = 0.1
    s = (pre @ W.T).detach()                 # free fixed point of s' = W rho(pre) - s
    s_next = s + torch.randn(8, 3, dtype=torch.float64) * 0.01
    s_hat = s + eps * (pre.clamp(0, 1) @ W.T - s)
    loss = 0.5 * (s_next - s_hat).pow(2).sum() / 8
    loss.backward()
    dw = bengio_rate_dw(pre, s, s_next, eta=eps)
    torch.testing.assert_close(dw, -W.grad)


def test_oja_converges_to_first_principal_component():
    g = torch.Generator().manual_seed(1)
    n = 4000
    cov_dirs = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))[0]
    scales = torch.tensor([3.0, 1.5, 1.0, 0.7, 0.5, 0.3], dtype=torch.float64)
    x = (torch.randn(n, 6, generator=g, dtype=torch.float64) * scales) @ cov_dirs.T
    x = x - x.mean(0)
    W = torch.randn(1, 6, generator=g, dtype=torch.float64) * 0.1
    for epoch in range(5):
        for k in range(0, n, 50):
            W += oja_dw(W, x[k:k + 50], eta=0.01)
    pc1 = torch.linalg.eigh(x.T @ x / n)[1][:, -1]
    assert float(W.norm()) == pytest.approx(1.0, abs=0.02)
    assert abs(float(W[0] @ pc1)) > 0.999
    # Sanger with two outputs recovers the first two components in order
    W2 = torch.randn(2, 6, generator=g, dtype=torch.float64) * 0.1
    for epoch in range(10):
        for k in range(0, n, 50):
            W2 += oja_dw(W2, x[k:k + 50], eta=0.01, sanger=True)
    ev = torch.linalg.eigh(x.T @ x / n)[1]
    assert abs(float(W2[0] @ ev[:, -1])) > 0.995 and abs(float(W2[1] @ ev[:, -2])) > 0.99
    # plain Hebbian grows without bound along the same direction (no normalisation)
    W3 = W.clone()
    for k in range(0, n, 50):
        W3 += hebbian_dw(x[k:k + 50], x[k:k + 50] @ W3.T, eta=0.01)
    assert float(W3.norm()) > 10 * float(W.norm())


def test_eqprop_coactivity_rule_integrates_to_the_change_of_coactivity():
    from neurodeploy.library.plasticity.local_rules import eqprop_coactivity

    dt, tx, ty, n = 1e-3, 20e-3, 30e-3, 600
    rng = np.random.default_rng(2)
    pre = np.flatnonzero(rng.random(n) < 0.05)
    post = np.flatnonzero(rng.random(n) < 0.08)
    r = np.zeros(n)
    r[200:450] = 1.0                                   # "nudged phase": steps 200..449
    w = eqprop_coactivity(2.0, tx, ty, dt).simulate(pre, post, n, dt, w0=0.0, r=r)

    def traces_after(step):                            # x1, y1 after the impulses of `step`
        x = sum(np.exp(-(step - s) * dt / tx) for s in pre if s <= step)
        y = sum(np.exp(-(step - s) * dt / ty) for s in post if s <= step)
        return x * y

    assert w[-1] == pytest.approx(2.0 * (traces_after(449) - traces_after(199)), rel=1e-9)
    assert w[199] == 0.0


def test_other_canonical_rules_are_well_formed():
    from neurodeploy.library.plasticity.local_rules import error_third_factor, hebbian, oja

    # Hebbian with a constant post rate grows w; Oja's w-dependent term bounds it
    post = np.arange(0, 5000, 20)
    pre = np.arange(3, 5000, 10)
    wh = hebbian(5.0, 20e-3, 20e-3).simulate(pre, post, 5000, 1e-4, w0=0.1)
    wo = oja(5.0, 20e-3, 20e-3).simulate(pre, post, 5000, 1e-4, w0=0.1)
    assert wh[-1] > wo[-1] > 0.1
    assert abs(wo[-1] - wo[-2000]) < 0.05 * abs(wh[-1] - wh[-2000])   # Oja has settled, Hebb has not
    e = error_third_factor(0.5, 20e-3).simulate([10], [], 200, 1e-3, w0=0.0, r=-1.0)
    assert e[-1] > 0                                                # negative error -> potentiation
    assert "x1 * r * dt" in error_third_factor(0.5, 20e-3).dw_string()


def test_stdp_window_experiment_on_the_reference_backend():
    from neurodeploy.learn.experiments import jsonable, run_stdp_window

    out = run_stdp_window(deltas_ms=[-10, 5], backends=("reference",), progress=False)
    assert out["errors"] == {}
    assert out["max_rel_error"]["reference"] < 1e-9
    assert out["max_rel_error"]["canonical (numpy, Bengio trace form)"] < 0.01
    assert all(out["sign_ok"].values())
    assert jsonable({"a": [float("nan"), 1.0]}) == {"a": [None, 1.0]}


def _membrane_rule_dw(t_pre, t_post, eta, tau_pre, tau_s, t_end, h=2e-6):
    """Bengio's rule integrated directly, dW = eta x_pre(t) ds/dt dt, with the presynaptic rate
    x_pre and the postsynaptic activity s ("membrane": tau_s ds/dt = -s + tau_s sum delta(t - t_post))
    integrated as ODEs by forward Euler on a fine grid h (no exponentials, no window formula, no
    pair amplitudes): the increment of s over each step times the x_pre at its start."""
    n = int(round(t_end / h))
    i_pre, i_post = int(round(t_pre / h)), int(round(t_post / h))
    x = s = dw = 0.0
    for i in range(n):
        if i == i_pre:
            x += 1.0
        ds = -s / tau_s * h + (1.0 if i == i_post else 0.0)
        dw += eta * x * ds
        s += ds
        x -= x / tau_pre * h
    return dw


@pytest.mark.parametrize("backend", ["reference", "torch"])
def test_bengio_spec_rule_on_a_backend_equals_the_membrane_form_of_the_rule(backend):
    """The spec rule ``bengio_stdp`` run on a backend (a pre spike, a post neuron forced to fire
    at Delta = t_post - t_pre) changes the weight by what integrating eta x_pre ds_post/dt directly
    gives for the spike times the backend produced, within 1 % (Euler on a 2 us grid; the
    coincident-pair convention does not enter at |Delta| >= 5 ms)."""
    import dataclasses

    from neurodeploy.ir import PlasticityRule
    from neurodeploy.learn.experiments import _simulate
    from neurodeploy.library.plasticity.stdp import stdp_window_net

    eta, tau_pre, tau_s = 2e-5, 10e-3, 30e-3
    rule = PlasticityRule("bengio_stdp", {"eta": eta, "tau_pre": tau_pre, "tau_s": tau_s, "w_min": 0.0,
                                          "w_max": 1e-3})
    for delta_ms in (-20, -5, 5, 20):
        net = stdp_window_net({}, delta_ms * 1e-3)
        plastic = dataclasses.replace(net.projections[0], plasticity=rule)
        net = dataclasses.replace(net, projections=(plastic,) + net.projections[1:])
        res = _simulate(net, backend)
        w = np.asarray(res.traces["w"].values)[:, 0]
        t_post = float(res.spikes["post"].t[0])
        t_pre = float(res.spikes["pre"].t[0])
        assert t_post - t_pre == pytest.approx(delta_ms * 1e-3, abs=2e-4)
        t_end = net.simulation.dt * net.simulation.steps
        want = _membrane_rule_dw(t_pre, t_post, eta, tau_pre, tau_s, t_end)
        got = float(w[-1] - w[0])
        assert np.sign(got) == np.sign(delta_ms)
        assert got == pytest.approx(want, rel=0.01), f"Delta = {delta_ms} ms"
