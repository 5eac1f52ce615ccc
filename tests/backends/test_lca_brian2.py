"""Rozell's LCA on Brian2 (neurodeploy.backends.brian2.blocks.lca) against the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")

from neurodeploy.backends.brian2.blocks.lca import run_lca_brian2  # noqa: E402
from neurodeploy.library.blocks.lca.reference import lca_step  # noqa: E402
from tests.backends.helpers import LCA_DT_TAU as DT_TAU, LCA_LAM as LAM, lca_dictionary  # noqa: E402


@pytest.fixture(scope="module")
def Phi():
    return lca_dictionary()


@pytest.fixture(scope="module")
def X5():
    """Five held-out digits."""
    from neurodeploy.core.data import train_test

    return np.asarray(train_test("digits")[1][:5], np.float64)


def _reference(Phi, X, T):
    v = np.zeros((len(X), Phi.shape[1]))
    a = np.zeros_like(v)
    for _ in range(T):
        v, a = lca_step(v, X, Phi, LAM, DT_TAU)
    return v, a


def test_lca_brian2_equals_lca_step(Phi, X5):
    """T = 30 iterations in T = 30 steps: the update of step n sees the lateral input of a_{n-1}."""
    T = 30
    r = run_lca_brian2(Phi, X5, T, LAM, DT_TAU)
    v, a = _reference(Phi, X5, T)
    assert r["a"].shape == (5, Phi.shape[1]) and r["a"].dtype == np.float64
    np.testing.assert_allclose(r["v"], v, rtol=0, atol=1e-10)
    np.testing.assert_allclose(r["a"], a, rtol=0, atol=1e-10)
    # one iteration more or less would differ by far more than the tolerance
    assert np.abs(_reference(Phi, X5, T - 1)[1] - r["a"]).max() > 1e-6
    names = [name for name, _, _ in r["schedule"]]
    assert names.index("lca_lateral_summed_variable_lat_post") < names.index("lca_iteration"), r["schedule"]


def test_lca_brian2_nonzero_v0_uses_initial_activities(Phi, X5):
    """From v0 != 0 the first step already needs the lateral input of a_0 = max(v0 - lam, 0)
    (an update scheduled before the summed variable would see lat = 0 there)."""
    v0 = np.random.default_rng(3).uniform(0.0, 1.0, (5, Phi.shape[1]))
    r = run_lca_brian2(Phi, X5, 5, LAM, DT_TAU, v0=v0)
    v = v0.copy()
    for _ in range(5):
        v, a = lca_step(v, X5, Phi, LAM, DT_TAU)
    np.testing.assert_allclose(r["a"], a, rtol=0, atol=1e-10)


def test_lca_brian2_chunks_equal_one_batch(Phi, X5):
    """Two chunks (3 + 2 images) give the same codes as one network of 5 images."""
    one = run_lca_brian2(Phi, X5, 20, LAM, DT_TAU, batch=50)
    two = run_lca_brian2(Phi, X5, 20, LAM, DT_TAU, batch=3)
    np.testing.assert_allclose(two["a"], one["a"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(two["v"], one["v"], rtol=0, atol=1e-12)


def test_lca_brian2_codes_are_sparse_and_nonzero(Phi, X5):
    """Measured (5 held-out digits, T = 30): 88.5 % zeros, largest activity 1.07."""
    a = run_lca_brian2(Phi, X5, 30, LAM, DT_TAU)["a"]
    assert np.all(a >= 0)
    assert np.all((a > 0).sum(1) > 0)  # every image has active units
    assert (a == 0).mean() > 0.5


def test_lca_brian2_rejects_bad_input(Phi, X5):
    with pytest.raises(ValueError, match="T must be"):
        run_lca_brian2(Phi, X5, 0, LAM, DT_TAU)
    with pytest.raises(ValueError, match="pixels"):
        run_lca_brian2(Phi, X5[:, :10], 5, LAM, DT_TAU)
