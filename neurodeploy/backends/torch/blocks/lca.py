"""Rozell's LCA in torch (``neurodeploy eval -t torch`` on an ``lca`` block, and the inner loop
of the LCA dictionary learning in ``neurodeploy train``)."""

from __future__ import annotations

import time

from ....core.errors import NotImplementedYet
from ...base import BlockLowering, register_block_lowering
from ..simulator import pick_device


def _torch():
    import torch

    return torch


def lca_infer(x, Phi, lam: float, n_iter: int = 200, dt_tau: float = 0.1):
    """LCA codes (batch, K) for inputs x (batch, M), torch; non-negative soft threshold."""
    torch = _torch()
    K = Phi.shape[1]
    G = Phi.T @ Phi - torch.eye(K, dtype=Phi.dtype, device=Phi.device)
    drive = x @ Phi
    v = torch.zeros(x.shape[0], K, dtype=x.dtype, device=x.device)
    a = torch.zeros_like(v)
    for _ in range(n_iter):
        v = v + dt_tau * (drive - v - a @ G)
        a = torch.relu(v - lam)
    return a


@register_block_lowering
class TorchLCA(BlockLowering):
    """The ``lca`` block on torch (float only): :func:`lca_infer` in float64, all images in one
    batch, on CUDA when visible; deterministic, so every T is a separate run from v = 0."""

    backend, kind = "torch", "lca"

    def check(self, target, coder) -> None:
        if target.number_format == "fixed":
            raise NotImplementedYet(
                f"the lca block has no lowering for target '{target.name}' ({target.backend}, "
                f"{target.number_format}): the fixed-point LCA runs on --target loihi2-sim; use torch, "
                "brian2 or lava for float")

    def describe(self, target, coder, device: str = "auto") -> str:
        return f"torch lca_infer float64 ({pick_device(device).type})"

    def run(self, coder, X, Ts, target, *, seed=0, batch=None, progress=False, device="auto") -> dict:
        torch = _torch()
        dev = pick_device(device)
        Pt = torch.as_tensor(coder.arrays["Phi"], dtype=torch.float64, device=dev)
        xt = torch.as_tensor(X, dtype=torch.float64, device=dev)
        out = {}
        for T in Ts:
            t0 = time.perf_counter()
            with torch.no_grad():
                a = lca_infer(xt, Pt, float(coder.arrays["lam"]), n_iter=T, dt_tau=float(coder.arrays["dt_tau"]))
            out[T] = {"a": a.cpu().numpy(), "seconds": time.perf_counter() - t0}
        return out
