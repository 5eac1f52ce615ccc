"""The NDLIF Lava neuron (neurodeploy/backends/lava/procs): against Lava's own LIF, against the
numpy reference (procs/reference.py), and import hygiene.

Every network is RingBuffer -> Dense -> neuron, simulated with ``Loihi2SimCfg`` on the CPU, and
recorded with one Monitor per probe. Timing (checked here): Monitor row m holds the state / spikes
after Lava step m + 1, and the neuron receives at step m + 1 the Dense output of the RingBuffer
column m - 1 (one step of Dense delay; nothing at the first step).

Tolerances: fixed_pt must be bit-exact; floating_pt equal to Lava's LIF exactly and to the numpy
reference within 1e-12 (seen: exact); spikes identical.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from neurodeploy.backends.lava.procs.reference import (
    SINCE_NEVER,
    ndlif_fixed_step,
    ndlif_float_step,
    ndlif_initial_state,
    ndlif_run,
)

pytestmark = pytest.mark.lava

N_IN, N, T = 50, 20, 200
P_SPIKE = 0.1
F_TOL = 1e-12

# Float parameters and their fixed-point images (mapping of research/loihi_lava.md §2.4).
DU_F, DV_F, VTH_F = 0.2, 0.1, 1.0
DU_I, DV_I = 818, 410  # round(0.2*4096) - 1 (Lava adds 1 to du), round(0.1*4096)


@pytest.fixture(scope="module")
def lava() -> types.SimpleNamespace:
    """Lava classes, imported here (not at module import) so collecting this file is Lava-free."""
    from neurodeploy.core.compat.lava import ensure_lava_importable

    ensure_lava_importable()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    from neurodeploy.backends.lava.procs import NDLIF

    return types.SimpleNamespace(
        RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, Dense=Dense, RingBuffer=RingBuffer,
        LIF=LIF, Monitor=Monitor, NDLIF=NDLIF,
    )


@pytest.fixture(scope="module")
def data() -> types.SimpleNamespace:
    rng = np.random.default_rng(1234)
    spikes = (rng.random((N_IN, T)) < P_SPIKE).astype(int)
    w_f = rng.normal(0.0, 0.12, (N, N_IN))
    s = 254.0 / np.max(np.abs(w_f))  # weight LSB scale; even weights survive Lava's truncation
    w_i = np.clip(2 * np.round(w_f * s / 2), -256, 254).astype(int)
    k = s * 64  # v_fixed ~= K * v_float (weight_exp = 0, activation << 6)
    bias_f = rng.uniform(0.0, 0.05, N)
    bias_exp_i = rng.integers(4, 7, N)  # per-neuron exponents exercise the bias scaling
    bias_i = np.round(bias_f * k / 2.0**bias_exp_i).astype(int)
    return types.SimpleNamespace(
        spikes=spikes, w_f=w_f, w_i=w_i, k=k, bias_f=bias_f, bias_i=bias_i,
        bias_exp_i=bias_exp_i, vth_i=int(round(VTH_F * s)),
        u0_f=rng.uniform(-0.2, 0.2, N), v0_f=rng.uniform(-0.5, 0.9, N),
    )


def _float_params(d, **extra) -> dict:
    return dict(du=DU_F, dv=DV_F, vth=VTH_F, bias_mant=d.bias_f, bias_exp=0, **extra)


def _fixed_params(d, **extra) -> dict:
    return dict(du=DU_I, dv=DV_I, vth=d.vth_i, bias_mant=d.bias_i, bias_exp=d.bias_exp_i, **extra)


def _fixed_init(d) -> dict:
    return dict(u=np.round(d.u0_f * d.k).astype(int), v=np.round(d.v0_f * d.k).astype(int))


def _a_in(d, tag: str) -> np.ndarray:
    """What the neuron receives at each step: row m = Dense output of RingBuffer column m - 1."""
    w = d.w_f if tag == "floating_pt" else d.w_i
    a = np.zeros((T, N), dtype=float if tag == "floating_pt" else np.int64)
    a[1:] = (w @ d.spikes[:, : T - 1]).T  # weight_exp = 0, even weights: Dense is W @ s
    return a


def _simulate(lava, d, tag: str, neurons: dict) -> dict:
    """Run RingBuffer -> Dense -> each neuron in ``neurons`` (name -> Process) for T steps.

    Returns name -> (v, spikes), both (T, N), from Monitors; processes are always stopped.
    """
    src = lava.RingBuffer(data=d.spikes)
    dense_kw = {"weights": d.w_f} if tag == "floating_pt" else {
        "weights": d.w_i, "weight_exp": 0, "num_weight_bits": 8}
    monitors = {}
    for key, neuron in neurons.items():
        dense = lava.Dense(**dense_kw)
        src.s_out.connect(dense.s_in)
        dense.a_out.connect(neuron.a_in)
        mv, ms = lava.Monitor(), lava.Monitor()  # one probe per Monitor (multi-probe is broken)
        mv.probe(neuron.v, T)
        ms.probe(neuron.s_out, T)
        monitors[key] = (neuron, mv, ms)
    try:
        src.run(condition=lava.RunSteps(num_steps=T), run_cfg=lava.Loihi2SimCfg(select_tag=tag))
        out = {}
        for key, (neuron, mv, ms) in monitors.items():
            v = np.asarray(mv.get_data()[neuron.name]["v"])
            s = np.asarray(ms.get_data()[neuron.name]["s_out"]) != 0
            out[key] = (v, s)
    finally:
        src.stop()
    return out


# --------------------------------------------------------------------------- defaults == Lava LIF


@pytest.mark.parametrize("tag", ["floating_pt", "fixed_pt"])
def test_defaults_reproduce_lava_lif(lava, data, tag):
    if tag == "floating_pt":
        params = _float_params(data)
        init = dict(u=data.u0_f, v=data.v0_f)
        step = ndlif_float_step
    else:
        params = _fixed_params(data)
        init = _fixed_init(data)
        step = ndlif_fixed_step
    kw = dict(shape=(N,), **init, **params)
    out = _simulate(lava, data, tag, {"lif": lava.LIF(**kw), "ndlif": lava.NDLIF(**kw)})
    (v_lif, s_lif), (v_nd, s_nd) = out["lif"], out["ndlif"]

    assert 0.02 < s_lif.mean() < 0.5, "test data should make the neurons fire"
    np.testing.assert_array_equal(s_nd, s_lif)
    np.testing.assert_array_equal(v_nd, v_lif)  # exact in both tags (float: same operations)

    # The reference agrees as well (and so pins down the Dense timing described above).
    ref = ndlif_run(step, _a_in(data, tag), ndlif_initial_state(N, **init), params)
    np.testing.assert_array_equal(ref["spikes"], s_lif)
    if tag == "fixed_pt":
        np.testing.assert_array_equal(ref["v"], v_lif)
    else:
        np.testing.assert_allclose(ref["v"], v_lif, rtol=F_TOL, atol=F_TOL)


# --------------------------------------------------------------------------- refractoriness


def _pre_reset_since(since_after: np.ndarray) -> np.ndarray:
    """``since`` as seen by the masks at each step (after the increment, before the spike reset)."""
    prev = np.vstack([np.full((1, since_after.shape[1]), SINCE_NEVER), since_after[:-1]])
    return np.minimum(prev, SINCE_NEVER - 1) + 1


@pytest.mark.parametrize("reset_mode", [0, 1])
@pytest.mark.parametrize("input_drop", [0, 1, 2])
@pytest.mark.parametrize("tag", ["floating_pt", "fixed_pt"])
def test_refractory_and_reset_match_reference(lava, data, tag, input_drop, reset_mode):
    refractory = 3
    if tag == "floating_pt":
        init = dict(u=data.u0_f, v=data.v0_f)
        extra = dict(v_reset=-0.3)
        params = _float_params(data, refractory_steps=refractory, input_drop=input_drop,
                               reset_mode=reset_mode, **extra)
        step = ndlif_float_step
    else:
        init = _fixed_init(data)
        extra = dict(v_reset=int(round(-0.3 * data.k)))
        params = _fixed_params(data, refractory_steps=refractory, input_drop=input_drop,
                               reset_mode=reset_mode, **extra)
        step = ndlif_fixed_step
    a_in = _a_in(data, tag)
    ref = ndlif_run(step, a_in, ndlif_initial_state(N, **init), params)

    # The data must exercise what is tested: spikes, input arriving while u is dropped, and a
    # trace that refractoriness visibly changes.
    dropped = _pre_reset_since(ref["since"]) < refractory + input_drop
    assert ref["spikes"].sum() > 50
    assert (dropped & (a_in != 0)).sum() > 20
    plain = ndlif_run(step, a_in, ndlif_initial_state(N, **init),
                      {**params, "refractory_steps": 0, "input_drop": 0})
    assert not np.array_equal(plain["spikes"], ref["spikes"])
    for n in range(N):  # no spike within refractory - 1 steps after a spike
        times = np.flatnonzero(ref["spikes"][:, n])
        assert times.size < 2 or np.diff(times).min() >= refractory

    proc = lava.NDLIF(shape=(N,), **init, **params)
    v, s = _simulate(lava, data, tag, {"ndlif": proc})["ndlif"]

    np.testing.assert_array_equal(s, ref["spikes"])
    if tag == "fixed_pt":
        np.testing.assert_array_equal(v, ref["v"])
    else:
        np.testing.assert_allclose(v, ref["v"], rtol=F_TOL, atol=F_TOL)


# --------------------------------------------------------------------------- reference details


def test_reference_fixed_arithmetic_edges():
    """Wrap of u, saturation of v, truncation toward zero and negative bias exponents."""
    state = ndlif_initial_state(4, u=[2**23 - 10, -(2**23) + 10, -100, 0],
                                v=[2**23 - 5, -(2**23) + 5, -1000, 0], fixed=True)
    params = dict(du=4095, dv=0, vth=2**17 - 1, bias_mant=[0, 0, -5, 7], bias_exp=[0, 0, -1, 2],
                  reset_mode=1)
    new, spikes = ndlif_fixed_step(state, np.array([1, -1, 0, 0]), params)
    # du=4095 (+1) decays u fully; a_in << 6
    np.testing.assert_array_equal(new["u"], [64, -64, 0, 0])
    # dv=0 keeps v; -5 >> 1 == -3 (floors); 7 << 2 == 28; saturation at +-(2**23 - 1): neuron 0
    # saturates at 2**23 - 1 > vth << 6 = 2**23 - 64, spikes, and keeps the excess 63 (mode 1)
    np.testing.assert_array_equal(spikes, [True, False, False, False])
    np.testing.assert_array_equal(new["v"], [63, -(2**23) + 1, -1003, 28])
    # u wraps once into 24 bits: (2**23 - 64) decays (du=0 -> factor 4095/4096) to 8386496,
    # + (40 << 6) = 8389056 > 2**23 -> 8389056 - 2**24
    state = ndlif_initial_state(1, u=2**23 - 64, fixed=True)
    new, _ = ndlif_fixed_step(state, np.array([40]), dict(du=0, dv=0, vth=10))
    assert new["u"][0] == 8389056 - 2**24
    # negative products truncate toward zero, not down
    new, _ = ndlif_fixed_step(ndlif_initial_state(1, u=-4097, fixed=True), np.array([0]),
                              dict(du=2047, dv=0, vth=10))
    assert new["u"][0] == -2048  # -4097 * 2048 / 4096 = -2048.5 -> -2048


def test_reference_since_saturates_and_refractory_gates():
    params = dict(du=0.0, dv=0.0, vth=0.5, bias_mant=0.0, refractory_steps=3, input_drop=1,
                  reset_mode=1)
    state = ndlif_initial_state(1)
    assert state["since"][0] == SINCE_NEVER
    new, s = ndlif_float_step(state, np.array([0.0]), params)
    assert new["since"][0] == SINCE_NEVER and not s.any()  # saturates, no overflow
    # Constant input 1.0 with du=0 (u accumulates): spike at step 1, frozen at since 1, 2;
    # since 3 integrates without u (input_drop); since 4 integrates with u.
    a = np.array([[0.6], [0.0], [0.0], [0.0], [0.0]])
    out = ndlif_run(ndlif_float_step, a, ndlif_initial_state(1), params)
    np.testing.assert_array_equal(out["spikes"][:, 0], [True, False, False, False, True])
    np.testing.assert_allclose(out["v"][:, 0], [0.1, 0.1, 0.1, 0.1, 0.2], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(out["since"][:, 0], [0, 1, 2, 3, 0])


# --------------------------------------------------------------------------- process interface


def test_ndlif_validates_parameters(lava):
    with pytest.raises(ValueError, match="input_drop"):
        lava.NDLIF(shape=(2,), input_drop=3)
    with pytest.raises(ValueError, match="reset_mode"):
        lava.NDLIF(shape=(2,), reset_mode=-1)
    with pytest.raises(ValueError, match="refractory_steps"):
        lava.NDLIF(shape=(2,), refractory_steps=-1)
    with pytest.raises(TypeError, match="refractory_steps"):
        lava.NDLIF(shape=(2,), refractory_steps=2.5)
    proc = lava.NDLIF(shape=(3,), refractory_steps=np.int64(4), v_reset=-1.5)
    assert proc.since.shape == (3,) and proc.since.init == SINCE_NEVER
    assert proc.refractory_steps.shape == (1,) and proc.refractory_steps.init == 4
    assert type(proc.refractory_steps.init) is int
    assert proc.v_reset.init == -1.5 and proc.vth.shape == (1,)


def test_import_neurodeploy_is_lava_free():
    """``import neurodeploy`` (and the procs package) must not import Lava; NDLIF loads it."""
    code = textwrap.dedent(
        """
        import sys
        def lava_mods():
            return sorted(m for m in sys.modules if m == "lava" or m.startswith("lava."))
        import neurodeploy, neurodeploy.backends
        assert lava_mods() == [], lava_mods()[:5]
        import neurodeploy.backends.lava.procs as procs
        import neurodeploy.backends.lava.procs.reference
        assert lava_mods() == [], lava_mods()[:5]
        NDLIF = procs.NDLIF  # lazy: imports Lava through neurodeploy.core.compat.lava
        from lava.magma.core.process.process import AbstractProcess
        assert issubclass(NDLIF, AbstractProcess)
        assert "lava.proc.lif.process" in sys.modules
        print("ok")
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "ok"
