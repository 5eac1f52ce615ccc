"""The iterative Poisson VAE coder block: its schema and its expansion into graded populations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ....core.params import param
from ....ir.nodes import Connectivity, Population, Projection, Weights
from ..base import BlockDef, decoder_ref, file_weights, register_block
from ..coder import Coder, distance

#: initial log rate of every latent when the block gives no ``prior``
PRIOR_DEFAULT = -3.0


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
    latent_model = "ipvae"
    forms = ("lateral", "predictive_coding")
    columns = (("T", "T", ">6"), ("R2", "r2", "7.4f"), ("median", "r2_median", "7.4f"),
               ("pooled", "r2_pooled", "7.4f"), ("R2 avg", "r2_avg", "7.4f"), ("zeros", "zeros", "7.4f"),
               ("max u", "u_max", "7.3f"), ("|du|", "du_norm", "7.3f"), ("d", "d", "7.4f"), ("s", "seconds", "7.2f"))
    definitions = {
        "r2": "mean over images of 1 - SS_res/SS_tot of x_hat = Phi z (counts of the last iteration)",
        "r2_pooled": "1 - sum SS_res / sum SS_tot over all images",
        "r2_rate": "as r2, decoding exp(u)", "r2_avg": "as r2, decoding the averaged counts (tau 16 iterations)",
        "zeros": "fraction of zero counts at the last iteration",
        "du_norm": "mean over images of ||u_T - u_{T-1}||_2 (torch only)",
        "d": "sqrt((1 - r2)^2 + (1 - zeros)^2)",
        "form_computed": "the network that ran; 'lateral (identical algorithm)': a predictive_coding "
                         "spec on torch runs the lateral module, the same iteration (Psi = Phi^T)"}
    compile_hint = ("the compile report targets the fixed-point Loihi 2 targets (loihi2-sim, loihi2); "
                    "`neurodeploy eval SPEC -t TARGET` runs the block on the others")

    @classmethod
    def bind(cls, name, pop, s):
        """The deployable arrays (the keys of ``IPVAE.export_arrays()``), float64: ``prior``
        defaults to -3 for every latent, ``bias`` to none (``b = -inf``, no constant drive);
        ``sigma = 1/sqrt(c)`` is broadcast over the pixels."""
        prm, K = s.params, pop.size
        u0 = np.full(K, PRIOR_DEFAULT) if prm.prior is None else np.asarray(prm.prior, float).reshape(K)
        b = np.full(K, -np.inf) if prm.bias is None else np.asarray(prm.bias, float).reshape(K)
        sigma = float(np.sqrt(1.0 / s.c))
        arrays = {"Phi": s.Phi, "u0": u0, "b": b, "eta": np.array(float(prm.step_size)),
                  "sigma": np.full(s.Phi.shape[0], sigma), "u_max": np.array(float(prm.u_max)),
                  "du_max": np.array(float(prm.du_max)), "u_min": np.array(float(prm.u_min)),
                  "soft_clamp": np.array(prm.clamp == "soft")}
        params = {"input": s.stimulus, "iterations": s.iterations, "form": s.form, "latent": K,
                  "step_size": float(prm.step_size), "sigma": sigma}
        return Coder(name, cls.kind, params, arrays, pop.name)

    @classmethod
    def row(cls, coder, X, T, r):
        """``r``: :func:`neurodeploy.library.blocks.ipvae.reference.ipvae_result` (+ ``seconds``)."""
        return ({"T": T, "r2": r["r2"], "r2_median": float(np.median(r["r2_images"])),
                 "r2_pooled": r["r2_pooled"], "r2_rate": r["r2_rate"], "r2_avg": r["r2_avg"],
                 "zeros": r["zeros"], "u_max": r["u_max"], "du_norm": r.get("du_norm"),
                 "d": distance(r["r2"], r["zeros"]), "seconds": round(float(r["seconds"]), 3),
                 "r2_images": [float(v) for v in r["r2_images"]],
                 "zeros_images": [float(v) for v in r["zeros_images"]]}, r["xhat"])

    @classmethod
    def metadata(cls, coder) -> dict:
        return {"form": coder.params.get("form", "lateral")}

    @classmethod
    def expand(cls, block, net):
        """The lateral form: ``<b>.latents`` (K ``ipvae`` neurons, restarting from the prior every
        ``iterations`` steps), ``<b>.readout`` (M ``linear`` units); projections ``<b>.drive``
        (input -> latents, ``Phi / sigma^2``), ``<b>.lateral`` (latents -> latents,
        ``-Phi^T Phi / sigma^2``, self-connections kept) and ``<b>.decode`` (latents -> readout,
        ``Phi^T``: dense weights are (source, target)). The predictive-coding form adds
        ``<b>.errors`` (M ``linear`` units): ``<b>.error_in`` (input -> errors, one to one,
        ``1/sigma^2``), ``<b>.feedback`` (latents -> errors, ``-Phi^T / sigma^2``) and
        ``<b>.error_drive`` (errors -> latents, ``Phi``) instead of drive and lateral."""
        P = block.params
        n, s2 = block.name, float(P["sigma"]) ** 2
        K, M = int(P["latent"]), int(decoder_ref(block).shape[0])
        lat, rd = f"{n}.latents", f"{n}.readout"
        lp = {k: P[k] for k in ("step_size", "u_min", "u_max", "du_max", "clamp")}
        lp.update({k: P[k] for k in ("prior", "bias") if P.get(k)})
        lp["restart_every"] = int(P["iterations"])
        pops = [Population(lat, K, "ipvae", lp), Population(rd, M, "linear")]
        decode = Projection(f"{n}.decode", lat, rd, file_weights(decoder_ref(block, transform="transpose")))
        if P.get("form", "lateral") == "predictive_coding":
            err = f"{n}.errors"
            pops.insert(1, Population(err, M, "linear"))
            projs = [Projection(f"{n}.error_in", P["input"], err, Weights("constant", {"value": 1.0 / s2}),
                                Connectivity("one_to_one")),
                     Projection(f"{n}.feedback", lat, err,
                                file_weights(decoder_ref(block, transform="transpose", scale=-1.0 / s2))),
                     Projection(f"{n}.error_drive", err, lat, file_weights(decoder_ref(block)))]
        else:
            projs = [Projection(f"{n}.drive", P["input"], lat, file_weights(decoder_ref(block, scale=1.0 / s2))),
                     Projection(f"{n}.lateral", lat, lat,
                                file_weights(decoder_ref(block, transform="gram", scale=-1.0 / s2)))]
        return tuple(pops), tuple(projs) + (decode,)

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
