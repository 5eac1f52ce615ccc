"""The ``ipvae`` block on Brian2: the lateral network (:mod:`.ipvae_lateral`) or the
predictive-coding network (:mod:`.ipvae_pc`), numpy code generation, exact Poisson counts
(``poisson()``), 50 images per Brian2 run, chunk i seeded with ``seed + i``; every requested T is
a separate run from the initial state."""

from __future__ import annotations

from ....library.blocks.ipvae.reference import run_ipvae_chunks
from ...base import BlockLowering, register_block_lowering
from .ipvae_lateral import iteration_code, run_ipvae_brian2  # noqa: F401  (the lateral network's API)
from .ipvae_pc import run_ipvae_pc_brian2


@register_block_lowering
class Brian2IPVAE(BlockLowering):
    backend, kind = "brian2", "ipvae"

    def describe(self, target, coder, device: str = "auto") -> str:
        if coder.params.get("form") == "predictive_coding":
            return "brian2 predictive-coding network (numpy codegen)"
        return "brian2 (numpy codegen)"

    def form_computed(self, target, coder) -> str:
        return coder.params.get("form", "lateral")

    def run(self, coder, X, Ts, target, *, seed=0, batch=None, progress=False, device="auto") -> dict:
        pc = coder.params.get("form") == "predictive_coding"
        fn = run_ipvae_pc_brian2 if pc else run_ipvae_brian2
        b = batch or 50
        return {T: run_ipvae_chunks(lambda Xc, T_, s: fn(coder.arrays, Xc, T_, seed=s, batch=b),
                                    coder.arrays, X, T, seed, b, progress, f"brian2{'-pc' if pc else ''} T={T}")
                for T in Ts}
