"""Validation metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurodeploy.validation import metrics as M


def test_coincidence_factor_hand_computed():
    # one coincidence (10 ~ 11) within 1 step; m = 3 steps per window, p = 2/100
    # expected chance coincidences 3 * 0.02 * 2 = 0.12; norm 1 - 0.06 = 0.94
    g = M.coincidence_factor([10, 50], [11, 80], window=1, n_steps=100)
    assert g == pytest.approx((1 - 0.12) / (0.5 * 4 * 0.94))
    assert M.coincidence_factor([10, 50], [10, 50], window=0, n_steps=100) == pytest.approx(1.0)
    assert M.coincidence_factor([10, 50], [12, 52], window=1, n_steps=100) < 0  # no coincidence: below chance
    assert M.coincidence_factor([], [], 1, 100) == 1.0
    assert M.coincidence_factor([5], [], 1, 100) == 0.0


def test_coincidences_are_matched_one_to_one():
    # two target spikes near one reference spike count once
    assert M._coincidences(np.array([10]), np.array([9, 11]), 1) == 1
    assert M._coincidences(np.array([10, 11]), np.array([10, 11]), 1) == 2


def test_van_rossum_hand_computed():
    assert M.van_rossum_distance([0.0], [], tau=10.0) == pytest.approx(1.0)
    assert M.van_rossum_distance([3.0], [3.0], tau=10.0) == pytest.approx(0.0)
    # D^2 = 1 + 1 - 2 exp(-ln 2) = 1
    assert M.van_rossum_distance([0.0], [10.0 * math.log(2)], tau=10.0) == pytest.approx(1.0)
    # two spikes 10 apart against nothing: 2 + 2 e^-1
    assert M.van_rossum_distance([0.0, 10.0], [], tau=10.0) == pytest.approx(math.sqrt(2 + 2 * math.exp(-1)))


def test_van_rossum_chunked_sum_equals_the_direct_one(monkeypatch):
    rng = np.random.default_rng(0)
    a, b = np.sort(rng.uniform(0, 1000, 300)), np.sort(rng.uniform(0, 1000, 200))
    direct = M.van_rossum_distance(a, b, 5.0)
    monkeypatch.setattr(M, "_PAIRWISE_MAX", 1000)
    assert M.van_rossum_distance(a, b, 5.0) == pytest.approx(direct, rel=1e-12)


def test_rmse_and_masks_hand_computed():
    ref = np.array([[0.0], [1.0], [2.0], [3.0]])
    tgt = np.array([[0.0], [2.0], [2.0], [5.0]])
    e = M.subthreshold_rmse(ref, tgt)
    assert e["rmse"] == pytest.approx(math.sqrt(5 / 4))
    assert e["nrmse"] == pytest.approx(math.sqrt(5 / 4) / 3)
    mask = np.array([[True], [True], [True], [False]])
    assert M.subthreshold_rmse(ref, tgt, mask)["rmse"] == pytest.approx(math.sqrt(1 / 3))
    spk = np.zeros((4, 1), bool)
    spk[1] = True
    np.testing.assert_array_equal(M.subthreshold_mask(spk, np.zeros_like(spk))[:, 0], [True, False, False, True])
    other = np.zeros_like(spk)
    other[2] = True
    np.testing.assert_array_equal(M.synchronous_mask(spk, other)[:, 0], [True, False, False, False])


def test_rates_latency_agreement_and_task_metrics():
    r = M.rate_metrics(np.array([1, 2, 3]), np.array([1, 2, 4]), duration=0.5)
    assert r["rate_ref_hz"] == pytest.approx(4.0) and r["rate_target_hz"] == pytest.approx(14 / 3)
    assert r["rate_rel_error"] == pytest.approx((14 / 3 - 4) / 4)
    assert r["rate_correlation"] == pytest.approx(np.corrcoef([1, 2, 3], [1, 2, 4])[0, 1])
    fs = M.first_spike_latency([np.array([5, 9]), np.array([]), np.array([3])], [np.array([7]), np.array([2]), np.array([])])
    assert fs["first_spike_max_abs_steps"] == 2 and fs["fired_in_target_only"] == 1 and fs["fired_in_reference_only"] == 1
    a = M.spike_raster([0, 1], [0, 1], 4, 2)
    b = M.spike_raster([0, 2], [0, 1], 4, 2)
    assert M.cell_agreement(a, b) == pytest.approx(6 / 8)
    assert M.r2_score([1, 2, 3], [1, 2, 3]) == 1.0
    assert M.r2_score([1, 2, 3], [2, 2, 2]) == pytest.approx(0.0)
    assert M.sparsity([0, 0, 1, 0]) == 0.75
    assert M.accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
