"""Learning the coders' dictionaries on the fallback: the LCA dictionary (Rozell's Hebbian rule).

The iP-VAE itself is trained by :mod:`neurodeploy.learn.train` through its torch module
(:mod:`neurodeploy.backends.torch.blocks.ipvae`); the numpy oracle of one inference iteration is
:func:`neurodeploy.library.blocks.ipvae.reference.ipvae_step`, LCA's
:func:`neurodeploy.library.blocks.lca.reference.lca_step`.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..backends.torch.blocks.lca import _torch, lca_infer


def lca_learn(X, K: int, lam: float, epochs: int = 20, batch: int = 200, lr: float = 0.05,
              n_iter: int = 100, dt_tau: float = 0.1, seed: int = 0, progress: bool = False):
    """Learn a unit-norm LCA dictionary (M, K) with the Hebbian rule of the note (section 4):
    Phi += lr (x - Phi a) a^T / (1 + activity count), then renormalise columns."""
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    M = X.shape[1]
    Phi = torch.randn(M, K, generator=g)
    Phi = Phi / Phi.norm(dim=0, keepdim=True)
    it = range(epochs)
    if progress:
        it = tqdm(it, desc="LCA dictionary", unit="epoch")
    for _ in it:
        perm = torch.randperm(X.shape[0], generator=g)
        for i in range(0, X.shape[0], batch):
            xb = X[perm[i:i + batch]]
            a = lca_infer(xb, Phi, lam, n_iter, dt_tau)
            resid = xb - a @ Phi.T
            active = (a > 0).float().sum(0)
            Phi = Phi + lr * (resid.T @ a) / (1.0 + active)
            Phi = Phi / Phi.norm(dim=0, keepdim=True).clamp_min(1e-8)
    return Phi
