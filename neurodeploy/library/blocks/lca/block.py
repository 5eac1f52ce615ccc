"""The LCA sparse-coding block (Rozell et al. 2008): the non-spiking baseline of the iP-VAE
coder, evaluated by ``neurodeploy eval`` (see :mod:`neurodeploy.validate.blocks_lca`)."""

from __future__ import annotations

from dataclasses import dataclass

from ....ir.nodes import Population, Projection
from ....core.params import param
from ..base import BlockDef, decoder_ref, file_weights, register_block


@register_block
class LCABlock(BlockDef):
    r"""Rozell's locally competitive algorithm (LCA) with a non-negative soft threshold.

    ``latent`` units with potentials :math:`v` (starting at 0) and graded activities
    :math:`a = \max(v - \lambda, 0)`; each iteration
    :math:`v \leftarrow v + \frac{dt}{\tau}\,(\Phi^\top x - v - (\Phi^\top\Phi - I)\,a)`
    (``neurodeploy.learn.ipvae.lca_step``). The reconstruction is :math:`\hat x = \Phi a`.
    ``neurodeploy train`` on an ipvae training spec learns a unit-norm LCA dictionary alongside
    the iP-VAE (``lca_dictionary.npz``, key ``Phi``; docs/ipvae.md). ``neurodeploy eval`` runs
    the block on ``torch``, ``lava`` (a float Lava process with graded lateral input
    through a Sparse connection), ``brian2`` and ``loihi2-sim`` (a fixed-point Lava process).

    Outputs that other parts of a spec may reference: ``<name>.latents`` (size ``latent``) and
    ``<name>.readout`` (the size of ``input``).
    """

    kind = "lca"
    outputs = {"latents": "latent", "readout": "input"}

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
