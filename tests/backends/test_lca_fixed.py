"""Fixed-point LCA: the numpy integer reference (neurodeploy.library.blocks.lca.fixed)
and the ``fixed_pt`` Lava model (``run_lca_lava(..., fixed=True)``) against it and against float."""

from __future__ import annotations


import numpy as np
import pytest

from neurodeploy.library.blocks.lca.fixed import (
    LCAFixedFormat,
    lca_fixed_iterate,
    lca_fixed_program,
    lca_fixed_run,
    lca_fixed_step,
)
from neurodeploy.library.blocks.lca.reference import lca_step
from neurodeploy.library.blocks.coder import r2_per_image

from tests.backends.helpers import LCA_DT_TAU as DT_TAU, LCA_LAM as LAM, lca_dictionary


@pytest.fixture(scope="module")
def Phi():
    return lca_dictionary()


@pytest.fixture(scope="module")
def X_test():
    from neurodeploy.core.data import train_test

    return np.asarray(train_test("digits")[1], np.float64)


def _float_lca(Phi, X, T, v0=None):
    v = np.zeros((len(X), Phi.shape[1])) if v0 is None else np.array(v0, np.float64)
    a = np.maximum(v - LAM, 0.0)
    for _ in range(T):
        v, a = lca_step(v, X, Phi, LAM, DT_TAU)
    return v, a


# --- numpy reference ---------------------------------------------------------------------------

def test_dt_tau_is_a_shift_for_powers_of_two_else_a_rounded_multiplier():
    fmt = LCAFixedFormat(dt_bits=12)
    assert fmt.dt(0.125) == (1, 3) and fmt.dt(1.0) == (1, 0) and fmt.dt(0.5) == (1, 1)
    assert fmt.dt(0.1) == (410, 12)  # round(409.6)
    assert fmt.dt(0.3) == (1229, 12)  # round(1228.8)
    with pytest.raises(ValueError):
        fmt.dt(0.0)
    with pytest.raises(ValueError):
        LCAFixedFormat(dt_bits=4).dt(0.01)  # 0.16 rounds to 0


def test_step_by_hand():
    """lat = a_in 2^lat_shift (right shift rounded half up), dv = (m e + 2^(sh-1)) >> sh, v
    saturated to v_bits, a = max(v - lam, 0) clipped to the payload, flags per neuron."""
    fmt = LCAFixedFormat(frac_bits=4, payload_bits=4, v_bits=8)
    v = np.array([0, 10, -5, 100, 120])
    drive = np.array([16, 40, -100, 400, 0])
    a_in = np.array([6, -6, 0, 0, 0])
    # lat = round-half-up(a_in / 4) = [2, -1, 0, 0, 0]; e = drive - v - lat = [14, 31, -95, 300, -120]
    # dv = (3 e + 4) >> 3 = [5, 12, -36, 113, -45]; v = [5, 22, -41, 213 -> 127 (sat), 75]
    v1, a1, clipped, sat = lca_fixed_step(v, drive, a_in, lam_q=8, dt_mult=3, dt_shift=3, lat_shift=-2, fmt=fmt)
    assert v1.tolist() == [5, 22, -41, 127, 75]
    # a = max(v - 8, 0) = [0, 14, 0, 119, 67] -> clipped to 15
    assert a1.tolist() == [0, 14, 0, 15, 15]
    assert clipped.tolist() == [False, False, False, True, True]
    assert sat.tolist() == [False, False, False, True, False]


def test_program_weights_are_even_8bit_mantissas_of_G(Phi):
    prog = lca_fixed_program(Phi, LAM, DT_TAU)
    G = Phi.T @ Phi - np.eye(Phi.shape[1])
    W = prog.weights
    assert W.dtype == np.int32 and np.all(W % 2 == 0) and np.abs(W).max() <= 254
    assert np.abs(W).max() > 127  # the exponent uses the 8-bit range
    # weights 2^(s-1) reproduce G to half an LSB
    assert np.abs(W * 2.0 ** prog.lat_shift - G).max() <= 2.0 ** prog.weight_exponent / 2 + 1e-12
    assert prog.lam_q == round(LAM * 1024) and prog.dt_tau == 410 / 4096


def test_fixed_reference_converges_to_float_with_more_bits(Phi, X_test):
    """The integer step is a quantized lca_step: the activity error shrinks as the format grows
    (weights stay 8-bit, so it does not vanish)."""
    X = X_test[:8]
    _, af = _float_lca(Phi, X, 30)
    errs = [np.abs(lca_fixed_run(Phi, X, 30, LAM, DT_TAU, LCAFixedFormat(frac_bits=fb, dt_bits=fb + 4))["a"]
                   - af).max() for fb in (6, 10)]
    assert errs[1] < errs[0] and errs[1] < 0.05, errs


def test_payload_clip_is_counted(Phi, X_test):
    """A 6-bit payload at Q.10 (a <= 63/1024) clips most active units; a 16-bit one none."""
    X = X_test[:4]
    small = lca_fixed_run(Phi, X, 20, LAM, DT_TAU, LCAFixedFormat(payload_bits=6))
    assert small["a_q"].max() == 63 and small["clipped"].sum() > 0
    assert small["clipped"].dtype == np.int64 and small["clipped"].max() <= 20  # per-neuron counts of the 20 steps
    full = lca_fixed_run(Phi, X, 20, LAM, DT_TAU)
    assert full["clipped"].sum() == 0 and full["saturated"].sum() == 0
    assert 0 < full["a_in_peak"] < 2 ** 23  # fits Loihi's 24-bit dendritic accumulator


# --- Lava --------------------------------------------------------------------------------------

def test_lava_fixed_equals_numpy_reference_bit_for_bit(Phi, X_test):
    """5 held-out digits, T = 30: integer potentials and activities identical; also through a
    Dense in chunks of 2, with a 6-bit payload (clip counters identical) and from v0 != 0."""
    pytest.importorskip("lava")
    from neurodeploy.backends.lava.blocks.lca import run_lca_lava

    X, T = X_test[:5], 30
    ref = lca_fixed_run(Phi, X, T, LAM, DT_TAU)
    r = run_lca_lava(Phi, X, T, LAM, DT_TAU, fixed=True)
    assert np.array_equal(r["v_q"], ref["v_q"]) and np.array_equal(r["a_q"], ref["a_q"])
    assert np.array_equal(r["clipped"], ref["clipped"]) and np.array_equal(r["saturated"], ref["saturated"])
    assert np.array_equal(r["a"], ref["a"]) and r["format"] == ref["format"]
    assert 0 < (r["a_q"] > 0).mean() < 1

    fmt = LCAFixedFormat(payload_bits=6)
    v0 = np.random.default_rng(3).normal(0.0, 0.5, (3, Phi.shape[1]))
    ref = lca_fixed_run(Phi, X[:3], 6, LAM, DT_TAU, fmt, v0=v0)
    r = run_lca_lava(Phi, X[:3], 6, LAM, DT_TAU, fixed=True, fmt=fmt, v0=v0, connection="dense", batch=2)
    assert np.array_equal(r["v_q"], ref["v_q"]) and np.array_equal(r["a_q"], ref["a_q"])
    assert np.array_equal(r["clipped"], ref["clipped"]) and r["clipped"].sum() > 0


def test_lava_fixed_vs_float_64_digits(Phi, X_test):
    """64 held-out digits, T = 200: the fixed-point codes reconstruct as well as float and are as
    sparse (measured |delta R^2| = 0.00012, |delta zeros| = 0.0018)."""
    pytest.importorskip("lava")
    from neurodeploy.backends.lava.blocks.lca import run_lca_lava

    X, T = X_test[:64], 200
    r = run_lca_lava(Phi, X, T, LAM, DT_TAU, fixed=True, batch=64)
    _, af = _float_lca(Phi, X, T)
    r2_fixed, r2_float = r2_per_image(X, r["a"] @ Phi.T).mean(), r2_per_image(X, af @ Phi.T).mean()
    z_fixed, z_float = (r["a"] == 0).mean(), (af == 0).mean()
    assert r2_float > 0.85 and z_float > 0.8
    assert abs(r2_fixed - r2_float) < 0.002, (r2_fixed, r2_float)
    assert abs(z_fixed - z_float) < 0.005, (z_fixed, z_float)
    assert r["clipped"].sum() == 0 and r["saturated"].sum() == 0


def test_iterate_matches_run_and_rejects_bad_input(Phi, X_test):
    X = X_test[:2]
    prog = lca_fixed_program(Phi, LAM, DT_TAU)
    out = lca_fixed_iterate(np.zeros((2, Phi.shape[1]), np.int64), prog.fmt.q(X @ Phi), prog, 5)
    assert np.array_equal(out["a_q"], lca_fixed_run(Phi, X, 5, LAM, DT_TAU)["a_q"])
    with pytest.raises(ValueError):
        lca_fixed_run(Phi, X, 0, LAM, DT_TAU)
    with pytest.raises(ValueError):
        lca_fixed_program(Phi, -0.1, DT_TAU)
    with pytest.raises(ValueError):
        LCAFixedFormat(payload_bits=0)
