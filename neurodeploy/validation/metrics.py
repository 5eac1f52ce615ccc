"""Agreement metrics between a reference run and a target run (pure numpy, hand-checkable).

Spike trains are compared on the step grid (both runs share ``dt``): a spike is the index of
the step in which it was emitted. Definitions (the unit tests check each against hand-computed
values):

* :func:`coincidence_factor` - Kistler et al. (1997)'s Gamma on the step grid: a reference
  spike is *coincident* when a target spike lies within ``window`` steps (each target spike
  matches at most one reference spike). With ``N_r``, ``N_t`` spikes in ``T`` steps,
  ``p = N_t / T`` and ``m = 2 window + 1`` steps in a window, chance coincidences are
  ``E = m p N_r`` and ``Gamma = (N_c - E) / (0.5 (N_r + N_t) (1 - m p))``: 1 for identical
  trains, about 0 for independent ones. Two empty trains score 1; one empty train scores 0.
* :func:`van_rossum_distance` - van Rossum (2001) with a causal exponential kernel of time
  constant ``tau`` (steps), normalised so that one unmatched spike contributes 1 to ``D**2``:
  ``D**2 = sum_ij e^{-|a_i - a_j|/tau} + sum_ij e^{-|b_i - b_j|/tau} - 2 sum_ij e^{-|a_i - b_j|/tau}``
  (exact for the continuous kernel; no discretisation of the filtered trains).
* :func:`rate_metrics` - per-neuron spike-count Pearson correlation, and the relative error of
  the population's mean rate ``|r_t - r_r| / max(r_r, floor)``.
* :func:`subthreshold_rmse` - RMSE of a state trace over the samples where neither run spiked in
  that step or the step before (so a reset that happens one step apart does not count as a
  100 % voltage error), and the same RMSE normalised by the reference trace's range. The
  validation uses it over the *synchronous* period (:func:`synchronous_mask`: before the
  neuron's first spike mismatch) and reports the RMSE over every sample as well.
* :func:`first_spike_latency` - per neuron, target first-spike step minus reference first-spike
  step, over neurons that fire in both runs; neurons that fire in only one are counted apart.
* :func:`cell_agreement` - fraction of (neuron, step) cells where both runs agree on spiking
  (the backend tests' historical metric).
* :func:`r2_score`, :func:`sparsity`, :func:`accuracy` - task metrics for blocks (iP-VAE / LCA
  reconstructions, classifiers).
"""

from __future__ import annotations

import numpy as np

#: the van Rossum pair sums are evaluated in chunks of at most this many pairs
_PAIRWISE_MAX = 250_000


def spike_raster(steps: np.ndarray, neurons: np.ndarray, n_steps: int, size: int) -> np.ndarray:
    """Boolean (n_steps, size) matrix from spike step / neuron index arrays."""
    m = np.zeros((n_steps, size), dtype=bool)
    steps = np.asarray(steps, dtype=np.int64)
    neurons = np.asarray(neurons, dtype=np.int64)
    ok = (steps >= 0) & (steps < n_steps) & (neurons >= 0) & (neurons < size)
    m[steps[ok], neurons[ok]] = True
    return m


def trains_by_neuron(steps: np.ndarray, neurons: np.ndarray, size: int) -> list[np.ndarray]:
    """Sorted spike steps of each neuron."""
    steps = np.asarray(steps, dtype=np.int64)
    neurons = np.asarray(neurons, dtype=np.int64)
    order = np.lexsort((steps, neurons))
    steps, neurons = steps[order], neurons[order]
    bounds = np.searchsorted(neurons, np.arange(size + 1))
    return [steps[bounds[k]:bounds[k + 1]] for k in range(size)]


def _coincidences(a: np.ndarray, b: np.ndarray, window: int) -> int:
    """Greedy one-to-one matching of sorted trains ``a`` and ``b`` within ``window`` steps."""
    i = j = n = 0
    while i < len(a) and j < len(b):
        d = b[j] - a[i]
        if abs(d) <= window:
            n += 1
            i += 1
            j += 1
        elif d < 0:
            j += 1
        else:
            i += 1
    return n


def coincidence_factor(ref: np.ndarray, tgt: np.ndarray, window: int, n_steps: int) -> float:
    """Kistler's coincidence factor Gamma of two spike trains (step indices); see the module doc."""
    a = np.sort(np.asarray(ref, dtype=np.int64))
    b = np.sort(np.asarray(tgt, dtype=np.int64))
    if len(a) == 0 and len(b) == 0:
        return 1.0
    if len(a) == 0 or len(b) == 0:
        return 0.0
    nc = _coincidences(a, b, int(window))
    m = 2 * int(window) + 1
    p = len(b) / float(n_steps)
    expected = m * p * len(a)
    norm = 1.0 - m * p
    if norm <= 0:  # the window covers the whole run at this rate: coincidence carries no information
        return 1.0 if np.array_equal(a, b) else 0.0
    return float((nc - expected) / (0.5 * (len(a) + len(b)) * norm))


def _exp_pair_sum(x: np.ndarray, y: np.ndarray, tau: float) -> float:
    """sum_ij exp(-|x_i - y_j| / tau) for sorted float arrays."""
    if len(x) == 0 or len(y) == 0:
        return 0.0
    total = 0.0
    step = max(1, _PAIRWISE_MAX // len(y))  # bounded memory: chunks of x against all of y
    for k in range(0, len(x), step):
        total += float(np.exp(-np.abs(x[k:k + step, None] - y[None, :]) / tau).sum())
    return total


def van_rossum_distance(ref: np.ndarray, tgt: np.ndarray, tau: float) -> float:
    """van Rossum distance (one unmatched spike -> 1) of two spike trains, ``tau`` in the same unit."""
    a = np.sort(np.asarray(ref, dtype=float))
    b = np.sort(np.asarray(tgt, dtype=float))
    d2 = _exp_pair_sum(a, a, tau) + _exp_pair_sum(b, b, tau) - 2.0 * _exp_pair_sum(a, b, tau)
    return float(np.sqrt(max(d2, 0.0)))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; 1.0 when both are constant and equal, 0.0 when only one is constant."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    sx, sy = x.std(), y.std()
    if sx == 0 or sy == 0:
        return 1.0 if (sx == 0 and sy == 0 and np.allclose(x, y)) else 0.0
    return float(np.corrcoef(x, y)[0, 1])


def rate_metrics(ref_counts: np.ndarray, tgt_counts: np.ndarray, duration: float, floor_hz: float = 1.0) -> dict:
    """Per-neuron rate correlation and the population mean-rate relative error."""
    ref_counts = np.asarray(ref_counts, dtype=float)
    tgt_counts = np.asarray(tgt_counts, dtype=float)
    r_ref = ref_counts.mean() / duration if len(ref_counts) else 0.0
    r_tgt = tgt_counts.mean() / duration if len(tgt_counts) else 0.0
    per = (tgt_counts - ref_counts) / duration
    return {
        "rate_ref_hz": float(r_ref),
        "rate_target_hz": float(r_tgt),
        "rate_rel_error": float(abs(r_tgt - r_ref) / max(r_ref, floor_hz)),
        "rate_correlation": pearson(ref_counts, tgt_counts) if len(ref_counts) > 1 else
        (1.0 if np.array_equal(ref_counts, tgt_counts) else 0.0),
        "per_neuron_rate_error_hz": per,
    }


def subthreshold_mask(ref_spk: np.ndarray, tgt_spk: np.ndarray) -> np.ndarray:
    """(T, n) mask of samples where neither run spiked in that step or the one before."""
    s = ref_spk | tgt_spk
    near = s.copy()
    near[1:] |= s[:-1]
    return ~near


def synchronous_mask(ref_spk: np.ndarray, tgt_spk: np.ndarray) -> np.ndarray:
    """(T, n) mask of the samples before each neuron's first raster mismatch (the period in which
    the two runs are in step; after it, a spike-time shift makes trace differences reflect the
    shift, which the spike metrics already measure)."""
    diff = ref_spk != tgt_spk
    T = diff.shape[0]
    first = np.where(diff.any(axis=0), diff.argmax(axis=0), T)
    return np.arange(T)[:, None] < first[None, :]


def subthreshold_rmse(ref: np.ndarray, tgt: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """RMSE of two (T, n) traces over ``mask`` (all samples if None), and normalised by the
    reference's range; also the RMSE over every sample."""
    ref = np.asarray(ref, dtype=float)
    tgt = np.asarray(tgt, dtype=float)
    if ref.shape != tgt.shape:
        raise ValueError(f"trace shapes differ: {ref.shape} vs {tgt.shape}")
    err = tgt - ref
    m = np.ones(ref.shape, dtype=bool) if mask is None else mask
    sel = err[m]
    rmse = float(np.sqrt(np.mean(sel ** 2))) if sel.size else 0.0
    span = float(ref.max() - ref.min()) if ref.size else 0.0
    return {
        "rmse": rmse,
        "nrmse": rmse / span if span > 0 else (0.0 if rmse == 0 else float("inf")),
        "rmse_all_samples": float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0,
        "samples": int(sel.size),
        "range": span,
        "errors": sel,
    }


def first_spike_latency(ref_trains: list[np.ndarray], tgt_trains: list[np.ndarray]) -> dict:
    """First-spike step differences (target - reference) per neuron."""
    diffs, only_ref, only_tgt = [], 0, 0
    for a, b in zip(ref_trains, tgt_trains):
        if len(a) and len(b):
            diffs.append(int(b[0]) - int(a[0]))
        elif len(a):
            only_ref += 1
        elif len(b):
            only_tgt += 1
    d = np.asarray(diffs, dtype=np.int64)
    return {
        "first_spike_max_abs_steps": int(np.abs(d).max()) if d.size else 0,
        "first_spike_mean_steps": float(d.mean()) if d.size else 0.0,
        "first_spike_neurons": int(d.size),
        "fired_in_reference_only": only_ref,
        "fired_in_target_only": only_tgt,
    }


def cell_agreement(ref_spk: np.ndarray, tgt_spk: np.ndarray) -> float:
    """Fraction of (step, neuron) cells on which both spike rasters agree."""
    return float((ref_spk == tgt_spk).mean()) if ref_spk.size else 1.0


def r2_score(target: np.ndarray, prediction: np.ndarray) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot (over all elements)."""
    t = np.asarray(target, dtype=float).ravel()
    p = np.asarray(prediction, dtype=float).ravel()
    ss_tot = float(((t - t.mean()) ** 2).sum())
    ss_res = float(((t - p) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else float("-inf"))


def sparsity(codes: np.ndarray, eps: float = 0.0) -> float:
    """Fraction of code entries whose magnitude is <= eps."""
    c = np.asarray(codes, dtype=float)
    return float((np.abs(c) <= eps).mean()) if c.size else 1.0


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    labels = np.asarray(labels)
    predicted = np.asarray(predicted)
    return float((labels == predicted).mean()) if labels.size else 1.0
