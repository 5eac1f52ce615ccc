"""The ``ipvae`` neuron model: the latent population the ``ipvae`` block expands into, and the
two elementwise operations of the iteration (the soft cap and the Poisson count)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ....core.params import param
from ...neurons.base import register_neuron
from ...neurons.graded import GradedModel, per_neuron


def softclamp_upper_np(y, c):
    """c - softplus(c - y): ~y well below c, saturating smoothly at c."""
    return c - np.logaddexp(0.0, c - y)


def poisson_counts(u, mode: str = "exact", rng=None) -> np.ndarray:
    """The counts of log rates ``u``: ``Pois(exp(u))`` drawn with ``rng`` (``mode='exact'``), or
    the rates ``exp(u)`` themselves (``mode='rate'``)."""
    rate = np.exp(u)
    if mode == "rate":
        return rate
    rng = rng if rng is not None else np.random.default_rng()
    return rng.poisson(rate).astype(float)


@register_neuron
class IPVAELatent(GradedModel):
    r"""Iterative Poisson VAE latent neuron (Vafaii et al.): membrane potential = log firing rate.

    Each step the neuron emits a Poisson spike count :math:`z \sim \mathrm{Pois}(e^{u})` and, from
    the graded input :math:`I` (the weighted counts and values of its sources, e.g.
    :math:`\Phi^\top(x - \Phi z)/\sigma^2`), updates

    .. math::

        \delta u = \mathrm{cap}(\max(\eta\,(I - e^{b}),\ u_{min}),\ \delta u_{max}),\qquad
        u \leftarrow \mathrm{cap}(\max(u + \delta u,\ u_{min}),\ u_{max})

    with ``cap`` the soft clamp :math:`c - \mathrm{softplus}(c - y)` (``clamp: soft``, as in
    training) or :math:`\min(y, c)` (``hard``). Then it draws the count of the new :math:`u`.
    ``prior`` (per neuron, default -3) is the initial :math:`u`; the count emitted at step 0 is
    drawn from it. ``bias`` (per neuron, log rate :math:`b`; default none, i.e. no constant
    drive). With ``restart_every: N`` the neuron restarts from the prior every N steps (a new
    input frame). This is :func:`neurodeploy.library.blocks.ipvae.reference.ipvae_step` for one neuron.
    """

    name = "ipvae"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        step_size: float = param(default=1.0, doc="inference step size eta", min=0, min_exclusive=True)
        u_min: float = param(default=-8.0, doc="lower bound on u and on du")
        u_max: float = param(default=8.0, doc="upper cap on u")
        du_max: float = param(default=1.0, doc="upper cap on du per step", min=0, min_exclusive=True)
        clamp: str = param("choice", default="soft", choices=("soft", "hard"),
                           doc="upper caps: soft (c - softplus(c - y)) or hard (min)")
        prior: object = param("data", default=None, doc="initial log rates u0, shape (size,); default -3")
        bias: object = param("data", default=None, doc="log bias b, shape (size,): constant drive -exp(b); default none")
        restart_every: int = param("int", default=0, doc="restart from the prior every N steps (0: never)", min=0)

    state = {"u": "1", "z": "1"}
    output_var = "z"
    equations = "u : 1\nz : 1"

    @classmethod
    def initial_state(cls, params, size, init=None):
        u0 = per_neuron(params.prior, -3.0, (size,)).copy()
        if init and "u" in init:
            u0 = np.broadcast_to(np.asarray(init["u"], float), (size,)).copy()
        return {"u": u0, "z": np.zeros(size)}

    @classmethod
    def initial_output(cls, params, state, rng=None):
        return poisson_counts(state["u"], "exact", rng)

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        u = np.asarray(state["u"], float)
        b = per_neuron(p.bias, -np.inf, u.shape)
        cap = softclamp_upper_np if p.clamp == "soft" else np.minimum
        du = p.step_size * (np.asarray(inputs.get("graded", 0.0), float) - np.exp(b))
        du = cap(np.maximum(du, p.u_min), p.du_max)
        u_new = cap(np.maximum(u + du, p.u_min), p.u_max)
        z = poisson_counts(u_new, "exact", rng)
        return {"u": u_new, "z": z}, z
