r"""Graded-output neuron models: the iP-VAE latent (``ipvae``), the LCA unit (``lca``) and the
algebraic ``linear`` unit (error units, readouts).

They are what the ``ipvae`` and ``lca`` blocks expand into (:mod:`neurodeploy.passes.expand`).
Their output each step is a number per neuron (a spike count, an activity, a value), delivered
to the targets of their projections as a *graded* spike: the weighted sum of the sources'
outputs is the input ``inputs["graded"]`` of :meth:`reference_step`.

Step semantics (:func:`neurodeploy.backends.reference.graded.simulate_graded` executes them; the
backends' iP-VAE and LCA lowerings reproduce them):

* a **stateful** model (``ipvae``, ``lca``) sees, at step n, the outputs its sources emitted at
  step n-1 (a one-step synaptic delay, as on Loihi 2), and emits its own output for step n;
* an **algebraic** model (``linear``) has no state: its output at step n is its input computed
  from the current outputs (so a chain stateful -> linear -> stateful adds no delay: the
  predictive-coding form runs the same iteration as the lateral one).

All reference steps are batch-agnostic: state arrays of shape ``(size,)`` or ``(batch, size)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...core.params import param
from .base import NeuronModel, register_neuron
from .base import NEURONS


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


def populations_of(net, graded: bool) -> list[str]:
    """The names of ``net``'s populations whose model is (``graded``) or is not graded."""
    return [p.name for p in net.populations if p.model in NEURONS and NEURONS[p.model].graded == graded]


def graded_parts(net) -> str | None:
    """``"blocks a, b"`` or ``"graded populations x, y"`` when ``net`` has any, else None (for the
    messages of the paths that run spiking networks only)."""
    if net.blocks:
        return "blocks " + ", ".join(b.name for b in net.blocks)
    graded = populations_of(net, graded=True)
    return "graded populations " + ", ".join(graded) if graded else None


class GradedModel(NeuronModel):
    graded: ClassVar[bool] = True
    synaptic_target = "graded"
    weight_unit = "1"
    #: the state variable that holds the output (what the population emits each step)
    output_var: ClassVar[str] = ""

    @classmethod
    def initial_output(cls, params, state, rng=None) -> np.ndarray:
        """What the population emits before its first step (step 0)."""
        return np.zeros_like(next(iter(state.values())))


def _per_neuron(value, default: float, shape) -> np.ndarray:
    """A per-neuron parameter: an array (already materialised), a scalar, or None (default)."""
    if value is None:
        return np.full(shape[-1], default)
    return np.broadcast_to(np.asarray(value, float), (shape[-1],))


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
        u0 = _per_neuron(params.prior, -3.0, (size,)).copy()
        if init and "u" in init:
            u0 = np.broadcast_to(np.asarray(init["u"], float), (size,)).copy()
        return {"u": u0, "z": np.zeros(size)}

    @classmethod
    def initial_output(cls, params, state, rng=None):
        return poisson_counts(state["u"], "exact", rng)

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        u = np.asarray(state["u"], float)
        b = _per_neuron(p.bias, -np.inf, u.shape)
        cap = softclamp_upper_np if p.clamp == "soft" else np.minimum
        du = p.step_size * (np.asarray(inputs.get("graded", 0.0), float) - np.exp(b))
        du = cap(np.maximum(du, p.u_min), p.du_max)
        u_new = cap(np.maximum(u + du, p.u_min), p.u_max)
        z = poisson_counts(u_new, "exact", rng)
        return {"u": u_new, "z": z}, z


@register_neuron
class LCAUnit(GradedModel):
    r"""Rozell's locally competitive algorithm unit with a non-negative soft threshold.

    Potential :math:`v` (starts at 0), activity :math:`a = \max(v - \lambda, 0)` (the output).
    Each step, from the graded input :math:`I` (e.g. :math:`\Phi^\top x - \Phi^\top\Phi a`):

    .. math::

        v \leftarrow v + \frac{dt}{\tau}\,(I - v + a)

    The :math:`+a` term is the unit's own excitation, so that a lateral projection of
    :math:`-\Phi^\top\Phi` (self-connection kept) gives Rozell's inhibition
    :math:`-(\Phi^\top\Phi - I)\,a`. This is :func:`neurodeploy.library.blocks.lca.reference.lca_step` for one unit.
    """

    name = "lca"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        lam: float = param(default=0.2, doc="soft threshold lambda", min=0)
        dt_tau: float = param(default=0.1, doc="Euler step dt/tau", min=0, min_exclusive=True, max=1)
        restart_every: int = param("int", default=0, doc="restart from v = 0 every N steps (0: never)", min=0)

    state = {"v": "1", "a": "1"}
    output_var = "a"
    equations = "v : 1\na : 1"

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        v = np.asarray(state["v"], float)
        a = np.maximum(v - p.lam, 0.0)
        v_new = v + p.dt_tau * (np.asarray(inputs.get("graded", 0.0), float) - v + a)
        a_new = np.maximum(v_new - p.lam, 0.0)
        return {"v": v_new, "a": a_new}, a_new


@register_neuron
class Linear(GradedModel):
    r"""Algebraic linear unit: the output is the graded input, :math:`y = I`, in the same step.

    No state and no delay: the iP-VAE block uses it for the predictive-coding error units
    :math:`\epsilon = (x - \Phi z)/\sigma^2` and for readouts :math:`\hat x = \Phi z`.
    """

    name = "linear"
    algebraic: ClassVar[bool] = True

    @dataclass(frozen=True, kw_only=True)
    class Params:
        pass

    state = {"y": "1"}
    output_var = "y"
    equations = "y : 1"

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        y = np.asarray(inputs.get("graded", 0.0), float) + np.zeros_like(state["y"])
        return {"y": y}, y
