r"""Plasticity rules on Loihi 2's learning engine, as data: the encodings (trace impulses, decays,
the ``dw`` string with its ``m * 2**e`` constants) that Lava's learning-rule objects are built
from (:mod:`neurodeploy.backends.lava.learning`), with no Lava import.

For neurodeploy's pair STDP (:class:`~neurodeploy.library.plasticity.stdp.PairSTDP`):
:func:`stdp_encoding` computes the parameters of the ``Loihi2FLearningRule`` that
``backends.lava.learning.stdp_rule`` builds for a ``LearningDense`` carrying a plastic projection,
and :func:`stdp_bounds` states how the weight bounds are (or are not) enforced. All three were worked
out by experiment against lava-nc 0.10.0's CPU models (``PyLearningDenseModelFloat``, tag
``floating_pt``, and ``PyLearningDenseModelBitApproximate``, tag ``fixed_pt``);
``tests/backends/test_lava_learning.py`` checks them.

The rule
--------
With ``t_epoch = 1`` (learning every step, as Brian2's event-driven updates)::

    dw = s * (y0 * x1  -  x0 * y1  +  x0 * y2)          s = sign(weight_factor)

    x1: pre trace,  impulse A+ = |f| a_plus  (float)   decays by exp(-dt/tau_pre)  per step
    y1: post trace, impulse A- = |f| a_minus (float)   decays by exp(-dt/tau_post) per step
    y2: post trace, impulse A-, tau = 1e-3 steps, i.e. it holds A- in the post spike's own step
        and is 0 from the next step on (exp(-1000) == 0.0)

``y0 * x1`` is the potentiation at a post spike (the pre trace read at the post spike, including a
pre spike of the same step); ``x0 * y1`` the depression at a pre spike. Lava reads ``y1`` at the
pre spike *including* a post impulse of that same step; Brian2 (neurodeploy's reference, see
``backends/brian2._stdp``) runs the ``on_pre`` pathway before ``on_post``, so its depression uses
the post trace *before* that step's post spike. ``+ x0 * y2`` removes exactly that impulse.
Amplitudes ride on the trace impulses, not on the rule's constants: Lava's constants are
``mantissa * 2**exp`` with ``|mantissa| <= 7`` (what ``STDPLoihi``'s ``float_to_literal`` does:
0.3 becomes 2**-2), impulses are plain floats in floating point.

What matches (measured)
-----------------------
* **Timing offset: 0 steps.** A LearningDense sees a pre spike in the Lava step the pre neuron (or
  RingBuffer) emits it, and a post spike in the step the post neuron's ``s_out`` emits it, both
  before that step's learning phase. neurodeploy step k is Lava step k + 1 for sources and neurons
  alike, so Lava's pair interval equals neurodeploy's. The weight change is visible after the
  spike's own step (Monitor row of that step) and first affects the next pre spike's delivery,
  as in Brian2 (the pre spike of the step itself is delivered with the old weight).
* **floating_pt: exact.** For ``delta_t = t_post - t_pre`` of +-5 and +-20 ms at dt = 1 ms,
  ``dw / f`` equals :meth:`PairSTDP.window` to float64 rounding (relative error < 1e-12 seen).
  There is no trace-decay discretisation error: Lava decays by ``exp(-1/tau_steps)`` per step,
  which is the continuous exponential sampled on the step grid, and spikes lie on that grid.
  All-to-all accumulation (traces add up over several spikes) and the update order are Brian2's,
  so random spike trains match a step-by-step replay of Brian2's event order too.
* **Coincident pair (delta_t = 0):** ``+a_plus``, as neurodeploy's Brian2 backend gives (its pre
  pathway runs first). :meth:`PairSTDP.window` returns 0 there; that is the analytic formula's
  convention, not either simulator's.
* **fixed_pt: unbiased, quantised.** With ``weight_scale`` = integer weight units per Lava-float
  weight unit (``K / (64 * 2**weight_exp)`` in :mod:`neurodeploy.passes.quantize`), the targets
  are ``D+- = |f| * a_plus/minus * weight_scale`` integer units per pair at zero interval. Each
  is split into an integer impulse ``I <= max_impulse`` (7-bit trace) times a constant
  ``m * 2**e``: the largest ``I`` whose constant is within 0.5 % of ``D / I``, else the closest
  (a scan of weight scales gave <= 1.5 % for ``D >= 0.25`` units, <= 0.9 % for ``D >= 2``);
  ``plus_scale_ratio`` / ``minus_scale_ratio`` report the realised ratio. Traces decay with
  stochastic rounding and the weight is stochastically rounded to an integer after every update,
  both unbiased: over many pairs the mean dw equals the window (within 0.5 % over 320 pairs per
  interval for ``D`` = 45/36 units, impulses 60/48, tau = 20 ms); a single pair scatters by the
  rounding, about +-0.5 integer unit from the weight plus 1-1.6 trace units (std) from the decay
  (per-pair std 7.5 % at |delta_t| = 20 ms, 2.6 % at 5 ms there). At ``delta_t = 0`` the trace
  is exactly the impulse. Product down-shift: none. Lava's bit-approximate engine shifts a
  product right by ``sum(factor widths) + 4 - 15`` bits (research/loihi_lava.md §3.4), 8x for
  two-trace products, but every product here has one trace factor (7 + 4 <= 15 bits), so fixed
  and float use the same constants (measured fixed/float ratio 1, not 1/8). Integer impulses
  avoid Lava's fractional-impulse rounding quirk (fractions round up twice as often). The
  random streams: trace rounding from ``rng_seed``; the weight rounding from Lava's own fixed
  seed, one number per step shared by all synapses.
* **Neurons:** any neuron whose ``s_out`` is connected to ``LearningDense.s_in_bap`` works: plain
  ``LIF``, ``LearningLIF`` and neurodeploy's ``NDLIF`` (refractory) were checked. Lava's stock
  ``LearningLIF`` models do *not* send on ``s_out_bap`` (they only run the LIF step), so wiring
  ``s_out_bap -> s_in_bap`` deadlocks the run (checked: 5 steps never finished). Connect
  ``post.s_out`` to ``s_in_bap`` instead (one OutPort may feed several LearningDense).

What does not match, or is not supported
----------------------------------------
* **Weight bounds.** The learning engine has no ``[w_min, w_max]`` clip. What it has is the
  LearningDense ``sign_mode`` saturation (after all products of a step):
  ``EXCITATORY`` keeps ``w_lava >= 0``, ``INHIBITORY`` keeps ``w_lava <= 0`` (float and fixed),
  which is neurodeploy's ``w_min = 0`` exactly (weights are magnitudes, the sign is the
  projection's). ``w_min != 0`` cannot be expressed. ``w_max``: floating point has no upper clip
  at all; fixed point saturates the 8-bit mantissa at 255 (``num_bits`` is fixed at 8 by the
  engine, whatever ``num_weight_bits`` the process was given), i.e. at
  ``255 / (|f| * weight_scale)`` neurodeploy units, which is ``w_max`` only if the quantiser chose
  ``weight_scale = 255 / (|f| * w_max)``. Gating the updates with ``sgn(w - C)`` does not rescue
  this: floating-point rules accept only integer constants (a Lava-float weight bound is a
  fraction of a volt), and in fixed point a ``sgn(w)`` factor counts 9 bits, so the product is
  shifted right by 5 bits, which breaks the exact cancellation the gate needs. Brian2 clips after
  each pathway; Lava saturates once per step (only differs when pre and post fire in the same step
  at a bound). :func:`stdp_bounds` reports all this for a given projection.
* **multiplicative (soft-bound) STDP:** not lowered (the ``(w_max - w)`` factor needs a
  non-integer constant in floating point; in fixed point it would need the 5-bit down-shift
  compensation); raises :class:`~neurodeploy.core.errors.NotImplementedYet`.
* **Delays:** Brian2 applies ``on_pre`` at the delayed arrival; LearningDense has no delays, so a
  plastic projection with ``delay_steps > 0`` has no lowering here.
* **fixed_pt amplitude range:** ``D`` must lie in about ``[2**-7, 255.99]`` integer units (one
  product's dw is clipped to ``(2**15 - 1) / 2**7``); ``D`` below ``max_impulse / 128`` forces
  impulses below ``max_impulse`` (the smallest constant is ``2**-7``), hence coarser traces.
  Traces saturate at 127, so with impulse ``I`` at most ``127 / I`` recent spikes are summed
  without clipping (default ``I <= 64``: two). Lava's fixed decay uses floating-point ``exp``
  and its own random streams; it is *bit-approximate*, not bit-accurate to Loihi 2 (whose decay
  tables are not public).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import CompileError, NotImplementedYet
from ..library.plasticity.canonical import Term, Trace

__all__ = [
    "COINCIDENCE_TAU_STEPS",
    "DEFAULT_MAX_IMPULSE",
    "StdpBounds",
    "StdpEncoding",
    "stdp_bounds",
    "stdp_encoding",
]

#: decay constant (steps) of the y2 trace that cancels the post impulse of the pre spike's step
COINCIDENCE_TAU_STEPS = 1e-3
#: largest fixed-point trace impulse :func:`stdp_encoding` picks by default (traces saturate at 127)
#: the seed of the fixed-point trace rounding that every backend gives Lava's learning engine
#: (loihi2-sim's LearningDense and loihi2-torch's emulation of it must draw the same numbers)
LEARNING_RNG_SEED = 0
DEFAULT_MAX_IMPULSE = 64
#: fixed point: one product's dw is clipped to this many integer weight units
PRODUCT_MAX = (2**15 - 1) / 2**7
#: fixed point: largest weight mantissa the learning engine keeps (8 bits, any sign mode)
MANTISSA_MAX = 255
_FIT_TOL = 5e-3


@dataclass(frozen=True)
class StdpEncoding:
    """The learning-engine parameters :func:`stdp_rule` builds its rule from (taus in steps)."""

    dw: str
    x1_impulse: float
    x1_tau: float
    y1_impulse: float
    y1_tau: float
    y2_impulse: float
    y2_tau: float
    #: realised / wanted amplitude; 1.0 in floating point, quantised constants in fixed point
    plus_scale_ratio: float
    minus_scale_ratio: float
    #: wanted dw of a zero-interval pair: Lava-float units (float) or integer weight units (fixed)
    plus_target: float
    minus_target: float


@dataclass(frozen=True)
class StdpBounds:
    """How a LearningDense enforces neurodeploy's ``[w_min, w_max]`` (see the module docstring)."""

    #: the LearningDense ``sign_mode``: "excitatory" for weight_factor > 0, else "inhibitory"
    sign_mode: str
    #: the bounds the engine enforces, in neurodeploy weight units (None: no bound)
    lower: float
    upper: float | None
    w_min_exact: bool
    w_max_exact: bool
    problems: list[str] = field(default_factory=list)


def _quantise(target: float, max_impulse: int) -> tuple[int, int, int]:
    """(impulse, mantissa, exponent) with ``impulse * mantissa * 2**exponent ~= target``."""
    best = None
    for e in range(-7, 9):
        for m in range(1, 8):
            s = m * 2.0**e
            imp = int(round(target / s))
            if imp < 1 or imp > max_impulse:
                continue
            err = abs(imp * s - target) / target
            # the largest impulse (trace resolution) whose constant fits within _FIT_TOL (a bias),
            # else the smallest error
            good = err <= _FIT_TOL
            key = (not good, -imp if good else err)
            if best is None or key < best[0]:
                best = (key, imp, m, e)
    if best is None:
        raise CompileError(f"STDP amplitude {target:.4g} integer weight units per pair is below "
                           f"what the learning engine can express (impulse 1..{max_impulse} x "
                           "mantissa 1..7 x 2**-7)")
    return best[1], best[2], best[3]


def _term(sign: int, m: int, e: int, dep: str, trace: str, first: bool) -> str:
    lit = "" if (m, e) == (1, 0) else (f"{m} * 2^{e} * " if e else f"{m} * ")
    body = f"{lit}{dep} * {trace}"
    if first:
        return body if sign > 0 else f"-{body}"
    return f" + {body}" if sign > 0 else f" - {body}"


def stdp_encoding(params: dict, dt: float, weight_factor: float, fixed: bool,
                  weight_scale: float | None = None, *,
                  max_impulse: int = DEFAULT_MAX_IMPULSE) -> StdpEncoding:
    """The rule string, impulses and taus (in steps) of :func:`stdp_rule`; no Lava import.

    Raises :class:`~neurodeploy.core.errors.NotImplementedYet` for ``multiplicative`` STDP,
    :class:`~neurodeploy.core.errors.CompileError` when a fixed-point amplitude is out of range and
    :class:`ValueError` for bad arguments.
    """
    if params.get("multiplicative"):
        raise NotImplementedYet("multiplicative (soft-bound) STDP has no lowering to Lava's "
                                "learning engine")
    if not dt > 0 or not weight_factor or weight_factor != weight_factor:
        raise ValueError(f"need dt > 0 and a non-zero weight_factor (got dt={dt}, "
                         f"weight_factor={weight_factor})")
    tau_x, tau_y = float(params["tau_pre"]) / dt, float(params["tau_post"]) / dt
    if not (tau_x > 0 and tau_y > 0):
        raise ValueError("tau_pre and tau_post must be > 0")
    ap, am = float(params["a_plus"]), float(params["a_minus"])
    if ap < 0 or am < 0:
        raise ValueError("a_plus and a_minus must be >= 0")
    f = abs(float(weight_factor))
    sign = 1 if weight_factor > 0 else -1
    if not fixed:
        tp, tm = f * ap, f * am
        (ip, mp, ep, rp), (im, mm, em, rm) = (tp, 1, 0, 1.0), (tm, 1, 0, 1.0)
    else:
        if weight_scale is None or not weight_scale > 0:
            raise ValueError("fixed point needs weight_scale > 0 (integer weight units per "
                             "Lava-float weight unit)")
        if not 1 <= int(max_impulse) <= 127:
            raise ValueError("max_impulse must be in 1..127 (7-bit traces)")
        tp, tm = f * ap * weight_scale, f * am * weight_scale
        parts = []
        for name, t in (("a_plus", tp), ("a_minus", tm)):
            if t == 0:
                parts.append((0, 1, 0, 1.0))
                continue
            if t > PRODUCT_MAX:
                raise CompileError(f"STDP {name} is {t:.4g} integer weight units per pair; the "
                                   "learning engine clips one product's update to "
                                   f"{PRODUCT_MAX:.4g}")
            imp, m, e = _quantise(t, int(max_impulse))
            parts.append((imp, m, e, imp * m * 2.0**e / t))
        (ip, mp, ep, rp), (im, mm, em, rm) = parts
    dw = (_term(sign, mp, ep, "y0", "x1", True) + _term(-sign, mm, em, "x0", "y1", False)
          + _term(sign, mm, em, "x0", "y2", False))
    return StdpEncoding(dw=dw, x1_impulse=ip, x1_tau=tau_x, y1_impulse=im, y1_tau=tau_y,
                        y2_impulse=im, y2_tau=COINCIDENCE_TAU_STEPS, plus_scale_ratio=rp,
                        minus_scale_ratio=rm, plus_target=tp, minus_target=tm)


def stdp_bounds(params: dict, weight_factor: float, fixed: bool,
                weight_scale: float | None = None) -> StdpBounds:
    """Which of ``w_min`` / ``w_max`` the learning engine enforces for this projection.

    ``lower`` is always 0 (the sign-mode saturation); ``upper`` is None in floating point and
    ``255 / (|f| weight_scale)`` in fixed point. ``problems`` lists every mismatch in words, for
    the backend to report or refuse.
    """
    f = abs(float(weight_factor))
    sign_mode = "excitatory" if weight_factor > 0 else "inhibitory"
    w_min, w_max = float(params.get("w_min", 0.0)), float(params["w_max"])
    problems = []
    w_min_exact = w_min == 0.0
    if not w_min_exact:
        problems.append(f"w_min = {w_min:g}: Lava's learning engine only saturates at 0 "
                        f"(sign mode {sign_mode})")
    if fixed:
        if weight_scale is None or not weight_scale > 0:
            raise ValueError("fixed point needs weight_scale > 0")
        upper = MANTISSA_MAX / (f * weight_scale)
        w_max_exact = abs(upper - w_max) <= 1e-9 * max(abs(w_max), 1e-300)
        if not w_max_exact:
            problems.append(f"w_max = {w_max:g}: fixed point saturates the 8-bit weight mantissa "
                            f"at {MANTISSA_MAX}, i.e. at w = {upper:g}")
    else:
        upper, w_max_exact = None, False
        problems.append(f"w_max = {w_max:g}: Lava's floating-point learning engine has no upper "
                        "weight bound")
    return StdpBounds(sign_mode, 0.0, upper, w_min_exact, w_max_exact, problems)


# ---------------------------------------------------------------------------------------------
# any other rule: its canonical trace form (neurodeploy.library.plasticity.canonical), generically
#
# Every product ``c * [x0|y0] * factors * [dt]`` becomes one learning-engine product with
# dependency x0, y0 or u0 (continuous ``dt`` terms: every epoch, t_epoch = 1), its traces and
# ``w`` as factors and one literal ``m * 2**e``. Lava's traces are neurodeploy's times their
# impulse ``I``; Lava's weight is ``f * w`` (float) or ``scale * f * w`` integer units (fixed),
# so the literal a product needs is
#
#     L = c * dt**n_dt * (S f)**(1 - p_w) * 2**shift / prod(I over its trace factors)
#
# with ``S = 1`` in floating point and ``shift = 0`` there; in fixed point ``shift`` undoes the
# engine's right shift of ``sum(factor widths) + 4 - 15`` bits (research note §3.4: the
# float/fixed scale difference, compensated here). Floating point: impulses are free floats, so
# they are solved (least squares in log space) to make every literal +-1, which is exact when
# the rule has no more independent products than traces (hebbian, oja); what is left is rounded
# to the nearest ``m * 2**e`` and reported as ``ratios``. Fixed point: integer impulses
# (``fixed_impulse``, default 16: a trace saturates at 127 = ~8 recent spikes), literals rounded.
# The event semantics match the reference's (impulses first, then the products).

#: learning-engine literal ranges (research note §3.2)
LIT_M_MAX, LIT_E_MIN, LIT_E_MAX = 7, -7, 8
#: fixed point: default integer trace impulse of canonical rules
DEFAULT_FIXED_IMPULSE = 16
_WIDTH = {"x1": 7, "x2": 7, "y1": 7, "y2": 7, "w": 9}
#: fixed point: products the engine shifts right by more bits than this are refused (truncation)
MAX_FIXED_SHIFT = 3
#: a literal off by more than this is refused (the rule would not be the rule any more)
CANONICAL_MAX_ERROR = 0.15


@dataclass(frozen=True)
class CanonicalEncoding:
    dw: str
    impulses: dict  # trace -> impulse (Lava units per neurodeploy unit)
    taus: dict  # trace -> tau in steps
    #: realised / wanted constant, per product (1.0 = exact)
    ratios: tuple
    shifts: tuple


def literal(value: float) -> tuple[int, int]:
    """The learning-engine literal ``m * 2**e`` (1 <= m <= 7, -7 <= e <= 8) nearest to
    ``|value|`` in ratio; raises ValueError when ``|value|`` is outside the representable range
    by more than :data:`CANONICAL_MAX_ERROR`."""
    a = abs(float(value))
    if not a > 0 or a != a:
        raise ValueError(f"constant {value!r} cannot be a learning-engine literal")
    best = None
    for e in range(LIT_E_MIN, LIT_E_MAX + 1):
        for m in range(1, LIT_M_MAX + 1):
            err = abs(np.log(m * 2.0**e / a))
            if best is None or err < best[0]:
                best = (err, m, e)
    err, m, e = best
    while m % 2 == 0 and e < LIT_E_MAX:
        m, e = m // 2, e + 1
    if np.exp(err) - 1 > CANONICAL_MAX_ERROR:
        raise ValueError(f"constant {a:.4g} is outside the learning engine's literal range "
                         f"[2^{LIT_E_MIN}, {LIT_M_MAX} * 2^{LIT_E_MAX}] (nearest {m} * 2^{e})")
    return m, e


def canonical_encoding(rule, dt: float, weight_factor: float, fixed: bool, weight_scale: float | None = None,
                       *, fixed_impulse: int = DEFAULT_FIXED_IMPULSE) -> CanonicalEncoding:
    """See :func:`_encode`. Fixed point: integer impulses (each <= ``fixed_impulse``) are
    searched so that every literal comes within 1 % of its target, taking the finest traces (the
    largest smallest impulse) among those; else the impulses with the smallest worst error."""
    if not fixed:
        return _encode(rule, dt, weight_factor, False, None, {})

    names = list(rule.traces())
    best, first_err = None, None
    for combo in itertools.product(range(int(fixed_impulse), 0, -1), repeat=len(names)):
        try:
            enc = _encode(rule, dt, weight_factor, True, weight_scale, dict(zip(names, combo)))
        except CompileError as e:
            first_err = first_err or e
            continue
        worst = max(abs(r - 1) for r in enc.ratios)
        key = (worst > 0.01, -min(combo, default=0) if worst <= 0.01 else worst, worst)
        if best is None or key < best[0]:
            best = (key, enc)
    if best is None:
        raise first_err
    return best[1]


def _encode(rule, dt: float, weight_factor: float, fixed: bool, weight_scale: float | None,
            fixed_impulses: dict) -> CanonicalEncoding:
    """The ``dw`` string, impulses and taus (steps) of a canonical rule on a LearningDense.

    Raises :class:`~neurodeploy.core.errors.CompileError` naming the product when a constant cannot be
    expressed (out of the literal range even after the impulses took what they could), and when
    the rule needs what the engine lacks (a third factor, a product of x0 and y0)."""
    rule.check()
    if rule.uses("r"):
        raise CompileError("a third factor r is encoded by third_factor_encoding (a Loihi3FLearningRule "
                           "with the NDLIF3F neuron sending the modulator trace), not by this encoder")
    f = float(weight_factor)
    if fixed and not (weight_scale and weight_scale > 0):
        raise ValueError("fixed point needs weight_scale > 0")
    S = float(weight_scale) if fixed else 1.0
    terms = list(rule.terms)
    if rule.decay:
        terms.append(Term(-rule.decay, ("w", "dt")))
    traces = list(rule.traces())
    prods = []
    for t in terms:
        if "x0" in t.factors and "y0" in t.factors:
            raise CompileError("a product of x0 and y0 has no floating-point lowering in Lava's engine")
        dep = "x0" if "x0" in t.factors else "y0" if "y0" in t.factors else "u0"
        facs = [x for x in t.factors if x not in ("x0", "y0", "dt")]
        p_w = facs.count("w")
        shift = max(0, sum(_WIDTH[x] for x in facs) + 4 - 15) if fixed else 0
        if shift > MAX_FIXED_SHIFT:
            raise CompileError(
                f"product {len(prods) + 1} ({t.coeff:+.4g} * {' * '.join(t.factors)}): the fixed-point engine "
                f"shifts it right by {shift} bits (factor widths {'+'.join(str(_WIDTH[x]) for x in facs)}+4-15) "
                "and truncates, which erases it for traces and weights of ordinary size")
        need = t.coeff * dt ** t.factors.count("dt") * (S * f) ** (1 - p_w) * 2.0**shift
        prods.append((dep, facs, need, shift))
    if fixed:
        imp = {k: float(fixed_impulses[k]) / rule.traces()[k].impulse for k in traces}
    else:  # solve log|need_k| = sum of log impulses of its traces (min-norm least squares)
        A = np.array([[facs.count(k) for k in traces] for _, facs, _, _ in prods], float)
        bvec = np.array([np.log(abs(need)) for _, _, need, _ in prods])
        sol = np.linalg.lstsq(A, bvec, rcond=None)[0] if traces else np.zeros(0)
        imp = {k: float(np.exp(v)) for k, v in zip(traces, sol)}
    parts, ratios = [], []
    for n, (dep, facs, need, shift) in enumerate(prods):
        lit = need / np.prod([imp[k] for k in facs if k in imp]) if facs else need
        try:
            m, e = literal(lit)
        except ValueError as err:
            raise CompileError(f"product {n + 1} ({terms[n].coeff:+.4g} * {' * '.join(terms[n].factors)}): "
                               f"{err}") from None
        ratios.append(m * 2.0**e / abs(lit))
        body = " * ".join([f"{m} * 2^{e}" if e else f"{m}", dep] + facs)
        if not parts:
            parts.append(f"-{body}" if lit < 0 else body)
        else:
            parts.append(f" - {body}" if lit < 0 else f" + {body}")
    dw = "".join(parts)
    taus = {k: rule.traces()[k].tau / dt for k in traces}
    if fixed:
        for k in traces:
            if not 1 <= imp[k] * rule.traces()[k].impulse <= 127:
                raise CompileError(f"trace impulse {imp[k] * rule.traces()[k].impulse:g} out of 1..127")
    return CanonicalEncoding(dw, {k: imp[k] * rule.traces()[k].impulse for k in traces}, taus,
                             tuple(ratios), tuple(s for *_, s in prods))


# ---------------------------------------------------------------------------------------------
# a third factor r (plasticity.third_factor): Loihi3FLearningRule + neurodeploy's NDLIF3F neuron
#
# The reference's r_j = m_j - offset, m_j the spike trace (impulse 1, tau_mod) of neuron j of the
# modulator population. On Lava the post neuron (procs3f.NDLIF3F) keeps I_m * m_j and sends it as
# y2 every step; the connection's Loihi3FLearningRule reads it as a post trace. Expanding r,
#
#     c * F * r  =  c * F * y2 / I_m  -  c * offset * F        (F: the term's other factors)
#
# turns every product into two ordinary ones, so the generic encoder above solves I_m with the
# other impulses (y2 becomes a trace of tau tau_mod and impulse 1 in neurodeploy units). The
# engine keeps no y trace of its own under Loihi3F: rules with y1/y2 traces are refused, and the
# y taus are set to THIRD_FACTOR_Y_TAU, for which Lava's float model decays the received y2 by
# exp(-1/tau) == 1.0 exactly before the products read it (its default 65535 would scale y2 by
# 1 - 1.5e-5 every step; the fixed model then keeps the integer y2 exactly too).
# Fixed point keeps r one factor instead, the engine's offset form (y2 - C) with C = I_m * offset
# an integer (:func:`_third_factor_fixed_encoding`): two separately rounded products would not
# cancel around the offset. NDLIF3F's fixed model sends y2 = round(I_m * m) (7 bits) from a
# 12-fractional-bit trace.

#: y trace tau (steps) of the Loihi3FLearningRule: exp(-1/tau) rounds to exactly 1.0 in float64
THIRD_FACTOR_Y_TAU = 2.0**62


def third_factor_expansion(rule, modulator: dict):
    """The canonical rule with ``r = y2 - offset`` substituted (``y2``: the modulator trace,
    ``Trace(modulator["tau"], 1.0)``). Raises :class:`CompileError` for what the 3F neuron cannot
    supply (the rule's own post traces, r more than once in a product)."""
    if rule.y1 is not None or rule.y2 is not None:
        raise CompileError("a third-factor rule with post traces (y1/y2): under a Loihi3FLearningRule the "
                           "post neuron sends every y trace, and neurodeploy's NDLIF3F sends only the "
                           "modulator's (not generated)")
    offset = float(modulator.get("offset", 0.0))
    terms = []
    for t in rule.terms:
        n_r = t.factors.count("r")
        if n_r == 0:
            terms.append(t)
            continue
        if n_r > 1:
            raise CompileError(f"a product with r more than once ({' * '.join(t.factors)}) has no lowering")
        terms.append(Term(t.coeff, tuple("y2" if f == "r" else f for f in t.factors)))
        if offset:
            terms.append(Term(-t.coeff * offset, tuple(f for f in t.factors if f != "r")))
    return dataclasses.replace(rule, terms=tuple(terms), y2=Trace(float(modulator["tau"]), 1.0))


def third_factor_encoding(rule, modulator: dict, dt: float, weight_factor: float, fixed: bool,
                          weight_scale: float | None = None) -> CanonicalEncoding:
    """Floating point: :func:`canonical_encoding` of :func:`third_factor_expansion` (exact
    literals where the impulses can absorb the constants); fixed point:
    :func:`_third_factor_fixed_encoding`. ``impulses["y2"]`` and ``taus["y2"]`` are the NDLIF3F
    neuron's ``mod_impulse`` and ``tau_mod`` in steps. Raises :class:`CompileError` when a
    constant cannot be expressed."""
    if fixed:
        return _third_factor_fixed_encoding(rule, modulator, dt, weight_factor, weight_scale)
    return canonical_encoding(third_factor_expansion(rule, modulator), dt, weight_factor, fixed, weight_scale)


#: fixed point: largest integer impulse of the modulator trace y2 (7 bits: a few spikes of headroom)
THIRD_FACTOR_MAX_Y2_IMPULSE = 16
#: fixed point: the offset I_m * offset must come this close (relative) to an integer C
_OFFSET_TOL = 1e-3


def _third_factor_fixed_encoding(rule, modulator: dict, dt: float, weight_factor: float,
                                 weight_scale: float | None) -> CanonicalEncoding:
    """Fixed point: r enters the products as the engine's offset factor ``(y2 - C)``, C = I_m *
    offset an integer, so ``r`` stays one factor (the float expansion's two products would be
    rounded separately, and their cancellation around the offset with them). Integer impulses
    I_x <= :data:`DEFAULT_FIXED_IMPULSE`, I_m <= :data:`THIRD_FACTOR_MAX_Y2_IMPULSE` with
    I_m * offset integral are searched (every literal within 1 %, then the finest traces; else
    the smallest error, then the finest traces). ``(y2 - C)`` counts 7 bits in the engine's down-shift."""
    if rule.y1 is not None or rule.y2 is not None:
        raise CompileError("a third-factor rule with post traces (y1/y2) has no NDLIF3F lowering")
    if any(t.factors.count("r") > 1 for t in rule.terms):
        raise CompileError("a product with r more than once has no lowering")
    offset = float(modulator.get("offset", 0.0))
    # r -> y2 (the offset goes into the factor's constant below)
    sub = dataclasses.replace(rule, terms=tuple(Term(t.coeff, tuple("y2" if f == "r" else f for f in t.factors))
                                                for t in rule.terms), y2=Trace(float(modulator["tau"]), 1.0))
    im_choices = [m for m in range(1, THIRD_FACTOR_MAX_Y2_IMPULSE + 1)
                  if abs(m * offset - round(m * offset)) <= _OFFSET_TOL * max(m * offset, 1.0)
                  and 0 <= round(m * offset) <= 127]
    if not im_choices:
        raise CompileError(f"offset {offset:g}: no modulator impulse 1..{THIRD_FACTOR_MAX_Y2_IMPULSE} makes "
                           "impulse x offset an integer (the learning engine's offset constant)")
    x_names = [k for k in sub.traces() if k != "y2"]
    best, first_err = None, None
    for im in im_choices:
        for combo in itertools.product(range(DEFAULT_FIXED_IMPULSE, 0, -1), repeat=len(x_names)):
            try:
                enc = _encode(sub, dt, weight_factor, True, weight_scale, dict(zip(x_names, combo), y2=im))
            except CompileError as e:
                first_err = first_err or e
                continue
            worst = max(abs(r - 1) for r in enc.ratios)
            low = min(combo + (im,))
            # within 1 %: the finest traces; else the smallest error (to 0.1 %), then the finest
            key = (0.0 if worst <= 0.01 else round(worst, 3), -low, worst)
            if best is None or key < best[0]:
                best = (key, enc, im)
    if best is None:
        raise first_err
    _, enc, im = best
    c = int(round(im * offset))
    dw = enc.dw.replace("y2", f"(y2 - {c})") if c else enc.dw
    return dataclasses.replace(enc, dw=dw)


