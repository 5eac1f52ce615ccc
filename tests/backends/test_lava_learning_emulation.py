"""The torch emulation of Lava's fixed-point learning engine
(:mod:`neurodeploy.backends.torch.lava_learning`) against lava-nc 0.10.0 itself, integer for integer.

Network (one Lava run per case): a RingBuffer of random pre spikes -> LearningDense (``fixed_pt``,
rule from :func:`stdp_rule`) -> a LIF that never fires; a second RingBuffer of random post spikes
drives ``s_in_bap`` directly, so every pair timing occurs (pre before post, post before pre,
coincident) and the post spikes are known. Monitors read the weights and the traces x1, y1, y2
after every step; the emulator, fed the same spikes, must give the same integers at every step.
Initial weights span the whole 8-bit range, so the sign-mode floor (0) and the 8-bit ceiling (255)
are hit. Each Lava run takes about 1-2 s on 2 cores.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from neurodeploy.backends.lava.learning import stdp_rule
from neurodeploy.backends.torch.lava_learning import (
    LavaFixedLearning,
    LavaTraceRandom,
    LavaWeightRandom,
    parse_dw,
    truncate_weights,
)
from neurodeploy.core.errors import NotImplementedYet
from neurodeploy.lowering.learning_engine import stdp_bounds, stdp_encoding

pytestmark = pytest.mark.lava

torch = pytest.importorskip("torch")

DT = 1e-3
N_PRE, N_POST = 3, 2


@pytest.fixture(scope="module")
def lava() -> types.SimpleNamespace:
    from neurodeploy.core.compat.lava import ensure_lava_importable

    ensure_lava_importable()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import LearningDense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor
    from lava.utils.weightutils import SignMode

    return types.SimpleNamespace(RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, LearningDense=LearningDense,
                                 RingBuffer=RingBuffer, LIF=LIF, Monitor=Monitor, SignMode=SignMode)


def _spikes(rng, n, steps, rate):
    return (rng.random((n, steps)) < rate).astype(int)


def run_lava(lava, rule, W0, sign_mode, pre, post, num_weight_bits=8, weight_exp=0):
    """Weights (steps, n_post, n_pre) and traces x1 (steps, n_pre), y1, y2 (steps, n_post) after
    every Lava step; RingBuffer column c is emitted in Lava step c + 1."""
    steps = pre.shape[1]
    mode = {"excitatory": lava.SignMode.EXCITATORY, "inhibitory": lava.SignMode.INHIBITORY}[sign_mode]
    src, bap = lava.RingBuffer(data=pre), lava.RingBuffer(data=post)
    conn = lava.LearningDense(weights=W0.copy(), learning_rule=rule, sign_mode=mode,
                              num_weight_bits=num_weight_bits, weight_exp=weight_exp)
    sink = lava.LIF(shape=(W0.shape[0],), du=4095, dv=0, vth=2**20)  # never fires
    src.s_out.connect(conn.s_in)
    bap.s_out.connect(conn.s_in_bap)
    conn.a_out.connect(sink.a_in)
    mons = {}
    for var in ("weights", "x1", "y1", "y2"):
        m = lava.Monitor()
        m.probe(getattr(conn, var), steps)
        mons[var] = m
    try:
        sink.run(condition=lava.RunSteps(num_steps=steps), run_cfg=lava.Loihi2SimCfg(select_tag="fixed_pt"))
        out = {var: np.asarray(m.get_data()[conn.name][var]) for var, m in mons.items()}
    finally:
        sink.stop()
    out["weights"] = out["weights"].reshape(steps, *W0.shape)
    return {k: np.rint(v).astype(np.int64) for k, v in out.items()}


def run_emulator(enc, W0, sign_mode, pre, post, num_weight_bits=8, rng_seed=0, batch=1):
    eng = LavaFixedLearning.from_stdp_encoding(enc, W0, sign_mode, num_weight_bits=num_weight_bits,
                                               rng_seed=rng_seed, batch=batch)
    steps = pre.shape[1]
    out = {k: [] for k in ("weights", "x1", "y1", "y2")}
    P = torch.as_tensor(pre.T, dtype=torch.bool)
    Q = torch.as_tensor(post.T, dtype=torch.bool)
    for s in range(steps):
        eng.learn(P[s].expand(batch, -1), Q[s].expand(batch, -1))
        out["weights"].append(eng.w.numpy().copy())
        for k in ("x1", "y1", "y2"):
            out[k].append(eng.trace(k).numpy().copy())
    return {k: np.stack(v, axis=1) for k, v in out.items()}  # (batch, steps, ...)


CASES = {
    # f: the projection's weight factor (sign: excitatory / inhibitory); scale: integer units per
    # Lava-float unit; amplitudes large enough that the weights cross their whole range
    "excitatory": {"f": 0.9, "scale": 5000.0, "bits": 8, "seed": 0,
                       "params": {"tau_pre": 20e-3, "tau_post": 20e-3, "a_plus": 0.004, "a_minus": 0.0045,
                                   "w_min": 0.0, "w_max": 0.05}},
    "inhibitory": {"f": -0.8, "scale": 3000.0, "bits": 8, "seed": 7,
                       "params": {"tau_pre": 10e-3, "tau_post": 30e-3, "a_plus": 0.006, "a_minus": 0.005,
                                   "w_min": 0.0, "w_max": 0.1}},
    # 6 weight bits: the initial weights are truncated to multiples of 4 (learning keeps 8 bits);
    # small amplitudes (impulses below max_impulse, constants 2**-7..)
    "excitatory-6bit-small": {"f": 0.95, "scale": 400.0, "bits": 6, "seed": 3,
                                  "params": {"tau_pre": 15e-3, "tau_post": 8e-3, "a_plus": 0.003, "a_minus": 0.0036,
                                              "w_min": 0.0, "w_max": 0.5}},
}


@pytest.mark.parametrize("case", list(CASES))
def test_emulator_equals_lava_fixed_pt_every_step(lava, case):
    c = CASES[case]
    steps = 200
    rng = np.random.default_rng(100 + c["seed"])
    pre = _spikes(rng, N_PRE, steps, 0.12)
    post = _spikes(rng, N_POST, steps, 0.10)
    pre[:, 5] = post[:, 5] = 1  # coincident spikes of every pair
    sign = 1 if c["f"] > 0 else -1
    mode = stdp_bounds(c["params"], c["f"], True, c["scale"]).sign_mode
    assert mode == ("excitatory" if sign > 0 else "inhibitory")
    # the whole 8-bit range, both ends included
    W0 = sign * np.array([[0, 3, 255], [128, 250, 7]], dtype=np.int64)
    enc = stdp_encoding(c["params"], DT, c["f"], True, c["scale"])
    rule = stdp_rule(c["params"], DT, c["f"], True, c["scale"], rng_seed=c["seed"])
    ref = run_lava(lava, rule, W0, mode, pre, post, num_weight_bits=c["bits"])
    emu = run_emulator(enc, W0, mode, pre, post, num_weight_bits=c["bits"], rng_seed=c["seed"], batch=2)
    for b in range(2):  # every trial of a batch is the same run
        for k in ("x1", "y1", "y2"):
            np.testing.assert_array_equal(emu[k][b], ref[k], err_msg=f"trace {k}, trial {b}")
        np.testing.assert_array_equal(emu["weights"][b], ref["weights"], err_msg=f"weights, trial {b}")
    # the run exercised what it claims: weights moved both ways, and hit the bounds
    w = sign * ref["weights"]
    d = np.diff(w, axis=0)
    assert (d > 0).any() and (d < 0).any()
    assert (w == 0).any() and ref["x1"].max() > 0 and ref["y1"].max() > 0
    if case != "excitatory-6bit-small":
        assert (w == 255).any()
    else:
        assert not np.array_equal(truncate_weights(W0, mode, 6), W0)


@pytest.mark.parametrize("mode", ["excitatory", "inhibitory"])
def test_emulator_equals_lava_on_a_general_rule(lava, mode):
    """Beyond what stdp_encoding emits: fractional impulses (Lava's impulse rounding draws),
    two-trace products (right-shifted by 3 bits), all five traces, several literal forms."""
    from lava.magma.core.learning.learning_rule import Loihi2FLearningRule

    dw = "2 * y0 * x1 * x2 - 5 * 2^-4 * x0 * y1 * y3 + 2^-2 * x0 * y2 - 3*2^-3 * y0 * y1"
    if mode == "inhibitory":
        dw = "-" + dw.replace(" - ", " # ").replace(" + ", " - ").replace(" # ", " + ")
    imp = {"x1": 10.3, "x2": 7.75, "y1": 20.6, "y2": 12.0, "y3": 5.5}
    taus = {"x1": 8.0, "x2": 30.0, "y1": 5.5, "y2": 3.0, "y3": 40.0}
    kw = {f"{k}_impulse": v for k, v in imp.items()} | {f"{k}_tau": v for k, v in taus.items()}
    rule = Loihi2FLearningRule(dw=dw, t_epoch=1, rng_seed=5, **kw)
    assert [p.shift for p in parse_dw(dw)] == [3, 3, 0, 0]
    rng = np.random.default_rng(9)
    steps = 200
    pre, post = _spikes(rng, N_PRE, steps, 0.2), _spikes(rng, N_POST, steps, 0.2)
    sign = 1 if mode == "excitatory" else -1
    W0 = sign * np.array([[0, 90, 255], [128, 250, 7]], dtype=np.int64)
    ref = run_lava(lava, rule, W0, mode, pre, post)
    eng = LavaFixedLearning(dw, imp, taus, W0, mode, rng_seed=5)
    got = []
    for s in range(steps):
        eng.learn(torch.as_tensor(pre[:, s])[None], torch.as_tensor(post[:, s])[None])
        got.append(eng.w[0].numpy().copy())
    np.testing.assert_array_equal(np.stack(got), ref["weights"])
    d = np.diff(sign * ref["weights"], axis=0)
    assert (d > 0).any() and (d < 0).any()


def test_parse_dw_matches_lava_product_series(lava):
    """The product series (dependency, traces, mantissa, exponent) Lava builds from the strings
    stdp_encoding emits, and a few more literal forms."""
    from lava.magma.core.learning.learning_rule import Loihi2FLearningRule

    rules = [stdp_encoding(CASES[c]["params"], DT, CASES[c]["f"], True, CASES[c]["scale"]).dw for c in CASES]
    rules += ["3 * 2^-2 * y0 * x1 - 2^-7 * x0 * y1 + 5 * 2^3 * x0 * y2",
              "-12 * x0 * y1 * x2 + y0 * x1 * y3", "2 * 2^-3 * y0 * x1 - 16 * x0 * y1"]
    for dw in rules:
        lr = Loihi2FLearningRule(dw=dw, x1_impulse=10, x1_tau=5, y1_impulse=10, y1_tau=5, t_epoch=1)
        lava_ps = [(p.dependency, tuple(f.state_var for f in p.factors), p.s_mantissa, p.s_exp - 7)
                   for p in lr.active_product_series["dw"].products]
        ours = [(p.dependency, p.traces, p.mantissa, p.exponent) for p in parse_dw(dw)]
        assert ours == lava_ps, dw


def test_parse_dw_refuses_what_is_not_emulated():
    for dw in ("u0 * w", "x0 * (y2 - 3)", "y0 * x1 * w", "x0 * sgn(w)", "x0 * y0", "y0 * x1 * x1 * x2 * x2 * y1"):
        with pytest.raises(NotImplementedYet):
            parse_dw(dw)
    with pytest.raises(ValueError):
        parse_dw("2 * x1")  # no dependency


def test_random_streams_are_lavas(lava):
    from lava.magma.core.learning.random import ConnVarRandom, TraceRandom

    ours, theirs = LavaTraceRandom(5, 6), TraceRandom(seed_trace_decay=5, seed_impulse_addition=6)
    w_ours, w_theirs = LavaWeightRandom(), ConnVarRandom()
    for _ in range(50):
        assert (ours.decay, ours.impulse) == (theirs.random_trace_decay, theirs.random_impulse_addition)
        assert w_ours.value == w_theirs.random_stochastic_round
        for g in (ours, theirs, w_ours, w_theirs):
            g.advance()
