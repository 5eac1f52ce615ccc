"""Lava learning-rule objects (``Loihi2FLearningRule``, ``Loihi3FLearningRule``) from the
learning-engine encodings of :mod:`neurodeploy.lowering.learning_engine`, which says how each
rule maps onto the engine and what was measured against lava-nc 0.10.0."""

from __future__ import annotations

from ...core.compat.lava import ensure_lava_importable
from ...lowering.learning_engine import (
    DEFAULT_MAX_IMPULSE,
    LEARNING_RNG_SEED,
    THIRD_FACTOR_Y_TAU,
    canonical_encoding,
    stdp_encoding,
    third_factor_encoding,
)


def stdp_rule(params: dict, dt: float, weight_factor: float, fixed: bool,
              weight_scale: float | None = None, *, rng_seed: int | None = LEARNING_RNG_SEED,
              max_impulse: int = DEFAULT_MAX_IMPULSE):
    """Lava ``Loihi2FLearningRule`` reproducing neurodeploy's pair STDP on a ``LearningDense``.

    Parameters
    ----------
    params
        ``PairSTDP`` parameters in SI: ``tau_pre``, ``tau_post`` (s), ``a_plus``, ``a_minus``,
        ``w_min``, ``w_max`` (weight unit); ``multiplicative`` must be false. The bounds are not
        part of the rule (see :func:`stdp_bounds`).
    dt
        Simulation step (s); taus become ``tau / dt`` steps.
    weight_factor
        ``f`` in ``w_lava = f * w``: the target population's factor times the projection's sign
        (negative for inhibitory projections, whose Lava weights are ``<= 0``; the rule's signs
        flip, impulses stay positive).
    fixed
        ``False`` for ``floating_pt`` (amplitudes are exact float impulses ``|f| a``), ``True`` for
        ``fixed_pt`` (integer impulses and ``m * 2**e`` constants, see :func:`stdp_encoding`).
    weight_scale
        Fixed point only: integer weight-mantissa units per Lava-float weight unit
        (``K / (64 * 2**weight_exp)`` for the quantize pass's integers).
    rng_seed
        Seed of the fixed-point trace rounding (Lava draws a random seed when None); the weight's
        stochastic rounding uses Lava's own fixed seed.
    max_impulse
        Fixed point: the largest trace impulse to use (1..127); larger means finer traces but less
        headroom before the 7-bit trace saturates.

    The rule has ``t_epoch = 1`` and uses x1, y1, y2; wire the post neuron's ``s_out`` to the
    LearningDense's ``s_in_bap`` and give the LearningDense ``sign_mode`` from
    :func:`stdp_bounds`. Matches ``PairSTDP`` with zero timing offset (exactly in floating point,
    in expectation in fixed point); limits in the module docstring.
    """
    enc = stdp_encoding(params, dt, weight_factor, fixed, weight_scale, max_impulse=max_impulse)

    ensure_lava_importable()
    from lava.magma.core.learning.learning_rule import Loihi2FLearningRule

    return Loihi2FLearningRule(dw=enc.dw, x1_impulse=enc.x1_impulse, x1_tau=enc.x1_tau,
                               y1_impulse=enc.y1_impulse, y1_tau=enc.y1_tau,
                               y2_impulse=enc.y2_impulse, y2_tau=enc.y2_tau, t_epoch=1,
                               rng_seed=rng_seed)


def canonical_rule(rule, dt: float, weight_factor: float, fixed: bool, weight_scale: float | None = None,
                   *, rng_seed: int | None = LEARNING_RNG_SEED):
    """Lava ``Loihi2FLearningRule`` for a canonical-form rule (:func:`canonical_encoding`)."""
    enc = canonical_encoding(rule, dt, weight_factor, fixed, weight_scale)

    ensure_lava_importable()
    from lava.magma.core.learning.learning_rule import Loihi2FLearningRule

    kw = {}
    for k in enc.impulses:
        kw[f"{k}_impulse"] = enc.impulses[k]
        kw[f"{k}_tau"] = enc.taus[k]
    return Loihi2FLearningRule(dw=enc.dw, t_epoch=1, rng_seed=rng_seed, **kw)


def third_factor_rule(rule, modulator: dict, dt: float, weight_factor: float, fixed: bool,
                      weight_scale: float | None = None, *, rng_seed: int | None = LEARNING_RNG_SEED):
    """Lava ``Loihi3FLearningRule`` for a canonical rule with a third factor (see
    :func:`third_factor_encoding`); the post neuron must send y2 = ``impulses["y2"]`` x the
    modulator trace (and y1 = y3 = 0) every step."""
    enc = third_factor_encoding(rule, modulator, dt, weight_factor, fixed, weight_scale)

    ensure_lava_importable()
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule

    kw = {}
    for k in ("x1", "x2"):
        if k in enc.impulses:
            kw[f"{k}_impulse"] = enc.impulses[k]
            kw[f"{k}_tau"] = enc.taus[k]
    lr = Loihi3FLearningRule(dw=enc.dw, t_epoch=1, rng_seed=rng_seed, **kw)
    # fixed point too: the bit-approximate engine then decays y by exactly 1.0, no rounding
    lr.y1_tau = lr.y2_tau = lr.y3_tau = THIRD_FACTOR_Y_TAU
    return lr
