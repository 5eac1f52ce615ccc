"""The iterative Poisson VAE coder block (schema; expansion lands with the iP-VAE issue)."""

from __future__ import annotations

from dataclasses import dataclass

from ..params import param
from . import BlockDef, register_block


@register_block
class IPVAEBlock(BlockDef):
    r"""Iterative Poisson VAE inference as a spiking network (Vafaii et al.).

    Latent membrane potentials are log firing rates; each iteration draws Poisson spike counts
    :math:`z \sim \mathrm{Pois}(e^{u})` and updates
    :math:`u \leftarrow u + \eta\,(\Phi^\top (x - \Phi z)/\sigma^2 - e^{b})`, with :math:`u` and
    :math:`\delta u` capped. ``neurodeploy train`` learns :math:`\Phi`, ``prior``, ``bias``,
    ``step_size`` and ``sigma`` and writes a spec with this block (see docs/ipvae.md). The
    ``expand`` pass turns the block into a clamped input, ``latent`` latent neurons with
    feedforward drive :math:`\Phi^\top x/\sigma^2` and lateral weights
    :math:`-\eta\Phi^\top\Phi/\sigma^2`, and a readout :math:`\hat x = \Phi z`. With
    ``form: predictive_coding`` the same iteration runs on M graded error units
    :math:`\epsilon = (x - \Phi z)/\sigma^2` and K latents driven by :math:`\eta\Phi^\top\epsilon`
    (Lava targets; see docs/ipvae.md, "Two forms of the same inference").

    Outputs that other parts of a spec may reference: ``<name>.latents`` (size ``latent``) and
    ``<name>.readout`` (the size of ``input``).
    """

    kind = "ipvae"
    outputs = {"latents": "latent", "readout": "input"}

    @dataclass(frozen=True, kw_only=True)
    class Params:
        input: str = param("ref", doc="the stimulus or population whose values are encoded")
        latent: int = param("int", doc="number of latent neurons K", min=1, max=1_000_000)
        decoder: object = param("data", doc="dictionary Phi, shape (input size, latent): array data (file, dataset or inline)")
        iterations: int = param("int", default=16, doc="inference iterations", min=1, max=100_000)
        beta: float = param(default=1.0, doc="KL weight (used in training)", min=0)
        step_size: float = param(default=1.0, doc="inference step size eta", min=0, min_exclusive=True)
        sigma: float = param(default=1.0, doc="observation noise scale", min=0, min_exclusive=True)
        u_max: float = param(default=8.0, doc="upper cap on the log rate u")
        du_max: float = param(default=1.0, doc="upper cap on du per iteration (du is bounded below by u_min)", min=0, min_exclusive=True)
        u_min: float = param(default=-8.0, doc="lower bound on u and on du")
        clamp: str = param("choice", default="soft", choices=("soft", "hard"),
                           doc="upper caps: soft (c - softplus(c - y), as in training) or hard (min)")
        prior: object = param("data", default=None, doc="initial log rates u0, shape (latent,); default -3 for every neuron")
        bias: object = param("data", default=None, doc="log bias b, shape (latent,): constant drive -exp(b); default none")
        form: str = param("choice", default="lateral", choices=("lateral", "predictive_coding"),
                          doc="network form: lateral (K latents, K x K lateral weights) or predictive_coding "
                              "(M graded error units + K latents, 2 M K synapses, 2 time steps per iteration; "
                              "the same algorithm, see docs/ipvae.md)")
