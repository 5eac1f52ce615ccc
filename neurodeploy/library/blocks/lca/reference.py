"""Rozell's LCA in numpy: one Euler step (the oracle of every backend's LCA lowering)."""

from __future__ import annotations

import numpy as np


def lca_step(v, x, Phi, lam, dt_tau):
    """One Euler step of Rozell's LCA with a non-negative soft threshold.

    v <- v + dt/tau (Phi^T x - v - (Phi^T Phi - I) a),  a = max(v - lam, 0).
    Returns ``(v_new, a_new)``.
    """
    a = np.maximum(v - lam, 0.0)
    G = Phi.T @ Phi - np.eye(Phi.shape[1])
    v_new = v + dt_tau * (x @ Phi - v - a @ G)
    return v_new, np.maximum(v_new - lam, 0.0)
