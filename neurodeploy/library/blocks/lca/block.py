"""The LCA sparse-coding block (Rozell et al. 2008): the non-spiking baseline of the iP-VAE
coder, evaluated by ``neurodeploy eval`` (see :mod:`neurodeploy.validation.blocks_lca`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ....core.params import param
from ....ir.nodes import Population, Projection
from ..base import BlockDef, decoder_ref, file_weights, register_block
from ..coder import STRUCTURE_RTOL, Coder, distance, r2_per_image, r2_pooled, refusal


@register_block
class LCABlock(BlockDef):
    r"""Rozell's locally competitive algorithm (LCA) with a non-negative soft threshold.

    ``latent`` units with potentials :math:`v` (starting at 0) and graded activities
    :math:`a = \max(v - \lambda, 0)`; each iteration
    :math:`v \leftarrow v + \frac{dt}{\tau}\,(\Phi^\top x - v - (\Phi^\top\Phi - I)\,a)`
    (``neurodeploy.library.blocks.lca.reference.lca_step``). The reconstruction is :math:`\hat x = \Phi a`.
    ``neurodeploy train`` on an ipvae training spec learns a unit-norm LCA dictionary alongside
    the iP-VAE (``lca_dictionary.npz``, key ``Phi``; docs/ipvae.md). ``neurodeploy eval`` runs
    the block on ``torch``, ``lava`` (a float Lava process with graded lateral input
    through a Sparse connection), ``brian2`` and ``loihi2-sim`` (a fixed-point Lava process).

    Outputs that other parts of a spec may reference: ``<name>.latents`` (size ``latent``) and
    ``<name>.readout`` (the size of ``input``).
    """

    kind = "lca"
    outputs = {"latents": "latent", "readout": "input"}
    latent_model = "lca"
    columns = (("T", "T", ">6"), ("R2", "r2", "7.4f"), ("median", "r2_median", "7.4f"),
               ("pooled", "r2_pooled", "7.4f"), ("zeros", "zeros", "7.4f"), ("max a", "a_max", "7.3f"),
               ("d", "d", "7.4f"), ("s", "seconds", "7.2f"))
    definitions = {
        "r2": "mean over images of 1 - SS_res/SS_tot of x_hat = Phi a (activities of the last iteration)",
        "r2_pooled": "1 - sum SS_res / sum SS_tot over all images",
        "zeros": "fraction of zero activities a = max(v - lam, 0) at the last iteration",
        "d": "sqrt((1 - r2)^2 + (1 - zeros)^2)",
        "a_max": "largest activity"}
    compile_hint = ("there is no Loihi 2 resource report for LCA; `neurodeploy eval SPEC -t loihi2-sim` runs its "
                    "fixed-point model, and -t torch|brian2|lava the float one")

    @classmethod
    def bind(cls, name, pop, s):
        if abs(s.c - 1.0) > STRUCTURE_RTOL:
            raise refusal(pop, f"LCA's drive must be Phi itself (found {s.c:.6g} Phi)")
        prm = s.params
        arrays = {"Phi": s.Phi, "lam": float(prm.lam), "dt_tau": float(prm.dt_tau)}
        params = {"input": s.stimulus, "iterations": s.iterations, "form": s.form, "latent": pop.size,
                  "lam": float(prm.lam), "dt_tau": float(prm.dt_tau)}
        return Coder(name, cls.kind, params, arrays, pop.name)

    @classmethod
    def row(cls, coder, X, T, raw):
        """``raw``: ``{"a": codes (B, K), "seconds": ...}``."""
        a, Phi = np.asarray(raw["a"]), np.asarray(coder.arrays["Phi"], np.float64)
        xhat = a @ Phi.T
        r2i = r2_per_image(X, xhat)
        zi = (a == 0).mean(1)
        r2, zeros = float(r2i.mean()), float(zi.mean())
        return ({"T": T, "r2": r2, "r2_median": float(np.median(r2i)), "r2_pooled": r2_pooled(X, xhat),
                 "zeros": zeros, "d": distance(r2, zeros), "a_max": float(a.max()) if a.size else 0.0,
                 "seconds": round(float(raw["seconds"]), 3), "r2_images": [float(v) for v in r2i],
                 "zeros_images": [float(v) for v in zi]}, xhat)

    @classmethod
    def metadata(cls, coder) -> dict:
        return {"kind": "lca", "lam": coder.params["lam"], "dt_tau": coder.params["dt_tau"]}

    @classmethod
    def title(cls) -> str:
        return " (LCA)"

    @classmethod
    def headline(cls, metrics: dict) -> str:
        return f" (lca, lambda {metrics['lam']:g})"

    @classmethod
    def expand(cls, block, net):
        """``<b>.latents`` (K ``lca`` units restarting every ``iterations`` steps),
        ``<b>.readout`` (M ``linear`` units); ``<b>.drive`` (input -> latents, ``Phi``),
        ``<b>.lateral`` (``-Phi^T Phi``, self-connections kept: the unit adds its own activity
        back, giving Rozell's ``-(Phi^T Phi - I) a``) and ``<b>.decode`` (``Phi^T``)."""
        P = block.params
        n = block.name
        K, M = int(P["latent"]), int(decoder_ref(block).shape[0])
        lat, rd = f"{n}.latents", f"{n}.readout"
        pops = (Population(lat, K, "lca", {"lam": P["lam"], "dt_tau": P["dt_tau"],
                                           "restart_every": int(P["iterations"])}),
                Population(rd, M, "linear"))
        projs = (Projection(f"{n}.drive", P["input"], lat, file_weights(decoder_ref(block))),
                 Projection(f"{n}.lateral", lat, lat, file_weights(decoder_ref(block, transform="gram", scale=-1.0))),
                 Projection(f"{n}.decode", lat, rd, file_weights(decoder_ref(block, transform="transpose"))))
        return pops, projs

    @dataclass(frozen=True, kw_only=True)
    class Params:
        input: str = param("ref", doc="the stimulus or population whose values are encoded")
        latent: int = param("int", doc="number of LCA units K", min=1, max=1_000_000)
        decoder: object = param("data", doc="dictionary Phi, shape (input size, latent): array data (file, dataset or inline)")
        lam: float = param(default=0.2, doc="soft threshold lambda (activity a = max(v - lambda, 0))", min=0)
        iterations: int = param("int", default=200, doc="inference iterations (Euler steps)", min=1, max=100_000)
        dt_tau: float = param(default=0.1, doc="Euler step dt/tau", min=0, min_exclusive=True, max=1)
