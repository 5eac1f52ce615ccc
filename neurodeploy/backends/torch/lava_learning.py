"""Lava 0.10.0's fixed-point learning engine (``PyLearningDenseModelBitApproximate``, tag
``fixed_pt``) in torch integers: what target ``loihi2-torch`` runs for a plastic projection, so that
its learned weights equal ``loihi2-sim``'s integer for integer.

Lava is the semantics reference (``lava/magma/core/model/py/connection.py``,
``LearningConnectionModelBitApproximate``; ``learning/learning_rule_applier.py``,
``LearningRuleApplierBitApprox``); this module imports no Lava. What it covers: a
``Loihi2FLearningRule`` with ``t_epoch = 1`` whose ``dw`` is a sum of products
``[+-][m | 2^e | m*2^e] * dep * trace * ...`` with ``dep`` one of ``x0``/``y0`` and traces among
``x1 x2 y1 y2 y3`` (what :func:`~neurodeploy.lowering.learning_engine.stdp_encoding` emits for
neurodeploy's pair STDP), binary spikes (``GradedSpikeCfg.USE_REGULAR_IMPULSE``), the weights as
the only learned variable. Anything else (``u`` dependencies, ``w``/``d``/``t`` factors, constants
added to a factor, ``sgn()``, ``dd``/``dt`` rules, longer epochs) raises
:class:`~neurodeploy.core.errors.NotImplementedYet`.

One Lava step, as the Lava model runs it (``t_epoch = 1``)
-----------------------------------------------------------
Spiking phase (``run_spk``): the connection sends last step's accumulation, accumulates this
step's pre spikes with the current (not yet updated) weights, records ``tx = 1`` for the pre
neurons that spiked, advances the two trace random generators (x, y), receives the post spikes on
``s_in_bap`` (same step: the post neuron's ``s_out``), records ``ty = 1`` for them, and advances
the trace generators a second time. With ``t_epoch = 1`` ``tx``/``ty`` are reset every step, so
the "second spike within an epoch" impulse path never runs.

Learning phase (``run_lrn``), in this order:

1. the weight-rounding generator advances (so its first draw is never used);
2. ``x0 = tx > 0``, ``y0 = ty > 0``;
3. every trace decays, *then* takes this step's impulse: ``floor(exp(-1/tau) * trace)`` plus 1
   where the trace decay random (a float in [0, 1), one per generator and step, shared by every
   neuron and by all traces of that side) is below the fractional part; a trace with ``tau == 0``
   is set to 0. The impulse: ``trace + floor(impulse)`` plus 1 where the impulse random (an
   integer 0..127) is below ``round(frac(impulse) * 256)``, clipped to 0..127;
4. the products read the traces *after* this step's decay and impulse (for a spiking neuron;
   the others are multiplied by a zero dependency). Per product: ``dep * prod(clip(trace, -2^7,
   2^7 - 1)) * m`` (int32), right-shifted by ``max(0, 7 * n_traces + 4 - 15)``, left-shifted by
   ``e + 7``, clipped to ``[-2^15 - 1, 2^15 - 1]``, added to the accumulator (which starts at
   ``w << 7``) and the sum clipped again, product after product;
5. the accumulator saturates by sign mode (``>= 0`` excitatory, ``<= 0`` inhibitory), then
   ``w = floor(acc / 128)`` plus 1 where the weight random (a float in [0, 1), one per step shared
   by all synapses) is below ``(acc mod 128) / 128``; then ``w`` is clipped to the 8-bit range of
   the sign mode (0..255, -255..0, or -256..255 mixed).

The random numbers: numpy ``default_rng`` streams, drawn one scalar per call as Lava draws them
(``random(1)[0]`` and ``integers(0, 128, size=1, dtype=int)[0]``; a vectorised ``integers`` call
would not give the same sequence): x decay from ``rng_seed``, x impulse ``rng_seed + 1``, y decay
``rng_seed + 2``, y impulse ``rng_seed + 3``, the weight rounding from seed 2 (Lava's
``ConnVarRandom`` default, whatever the rule's seed). Each generator draws once when it is built.
So in Lava step ``s`` (from 1) the traces use draw ``2 s`` of their streams and the weights draw
``s`` of theirs. They are drawn on the host and enter the tensors as scalars; a batch of trials
shares them (every trial of Lava would run with the same seeds).

The weights the connection starts from are truncated as Lava's first ``run_spk`` does
(``truncate_weights`` with the projection's ``num_weight_bits`` and sign mode); the learning
itself then keeps all 8 bits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ...core.errors import NotImplementedYet

__all__ = ["DwProduct", "LavaFixedLearning", "LavaTraceRandom", "LavaWeightRandom", "parse_dw",
           "truncate_weights"]

#: bit widths of Lava's fixed-point learning engine (lava.magma.core.learning.constants)
W_TRACE = 7
W_TRACE_FRACTIONAL_PART = 8
W_S_MANT = 4
W_ACCUMULATOR_U = 15
W_WEIGHTS_U = 8
#: the accumulator holds the weight << (W_ACCUMULATOR_S - W_WEIGHTS_S) = << 7
WEIGHT_SHIFT = (W_ACCUMULATOR_U + 1) - (W_WEIGHTS_U + 1)
ACC_MIN, ACC_MAX = -(2**W_ACCUMULATOR_U) - 1, 2**W_ACCUMULATOR_U - 1
TRACE_MAX = 2**W_TRACE - 1
#: Lava's ConnVarRandom default seed (the rule's rng_seed does not reach it)
WEIGHT_RANDOM_SEED = 2

#: Lava multiplies a product's factors in int32: up to 4 traces (127**4 * 8 < 2**31) never wrap
MAX_TRACES_PER_PRODUCT = 4

X_TRACES, Y_TRACES = ("x1", "x2"), ("y1", "y2", "y3")
SIGN_MODES = ("mixed", "excitatory", "inhibitory")


@dataclass(frozen=True)
class DwProduct:
    """One product of a ``dw`` sum: ``mantissa * 2**exponent * dependency * traces...``."""

    dependency: str  # "x0" | "y0"
    traces: tuple[str, ...]
    mantissa: int  # signed, |m| <= 8 after Lava's normalisation
    exponent: int  # e of 2**e; Lava stores e + 7 and left-shifts by it

    @property
    def shift(self) -> int:
        """The right shift of the product (Lava: sum of factor widths + 4 - 15, at least 0)."""
        return max(0, W_TRACE * len(self.traces) + W_S_MANT - W_ACCUMULATOR_U)


_TOKEN = re.compile(r"\s*(?:(?P<lit0>\d+\*2\^[+-]?\d+)|(?P<lit1>2\^[+-]?\d+)|(?P<lit2>\d+)"
                    r"|(?P<name>[A-Za-z_]\w*)|(?P<op>[-+*])|(?P<bad>\S))")


def _literal(kind: str, text: str) -> tuple[int, int]:
    """(mantissa, exponent) of one literal, read as Lava's ``Literal.to_int`` reads it."""
    if kind == "lit0":  # m*2^e
        m, e = text.split("*2^")
        return int(m), int(e)
    if kind == "lit1":  # 2^e (Lava: mantissa int(2 / 2) = 1)
        return 1, int(text.split("^")[1])
    return int(text), 0


def parse_dw(dw: str) -> tuple[DwProduct, ...]:
    """The products of a ``dw`` string, with Lava's scaling constants (mantissas multiplied,
    exponents added, then ``m`` halved while ``|m| > 7`` and even). Raises NotImplementedYet
    for what this emulation does not cover (see the module docstring) and ValueError for what
    Lava itself rejects."""
    text = dw.replace(" ", "")
    if not text:
        raise ValueError("empty dw rule")
    tokens = []
    for mt in _TOKEN.finditer(text):
        kind = mt.lastgroup
        if kind == "bad":
            raise NotImplementedYet(f"dw rule {dw!r}: '{mt.group(kind)}' (brackets, sgn(), constants added to a "
                                    "factor) is not emulated on torch; only sums of products of x0/y0, traces "
                                    "and literals are")
        tokens.append((kind, mt.group(kind)))
    products, cur = [], None
    sign_next = 1
    for kind, tok in tokens:
        if kind == "op" and tok in "+-":
            if cur is not None:
                products.append(cur)
                cur = None
            sign_next = -1 if tok == "-" else 1
            continue
        if kind == "op":  # '*'
            continue
        if cur is None:
            cur = {"m": sign_next, "e": 0, "dep": None, "traces": []}
            sign_next = 1
        if kind.startswith("lit"):
            m, e = _literal(kind, tok)
            cur["m"] *= m
            cur["e"] += e
        elif tok in ("x0", "y0"):
            if cur["dep"] is not None:
                raise NotImplementedYet(f"dw rule {dw!r}: a product with two dependencies is not emulated")
            cur["dep"] = tok
        elif tok in X_TRACES + Y_TRACES:
            cur["traces"].append(tok)
        elif tok in ("u0",) or re.fullmatch(r"u\d+", tok):
            raise NotImplementedYet(f"dw rule {dw!r}: the u dependency is not emulated on torch")
        else:
            raise NotImplementedYet(f"dw rule {dw!r}: factor '{tok}' is not emulated on torch (x0/y0 "
                                    "dependencies and x1 x2 y1 y2 y3 traces only)")
    if cur is not None:
        products.append(cur)
    out = []
    for p in products:
        if p["dep"] is None:
            raise ValueError(f"dw rule {dw!r}: a product without a dependency (x0, y0)")
        if len(p["traces"]) > MAX_TRACES_PER_PRODUCT:
            raise NotImplementedYet(f"dw rule {dw!r}: a product of {len(p['traces'])} traces overflows Lava's "
                                    "int32 product (not emulated; at most 4 traces per product)")
        m, e = p["m"], p["e"]
        while abs(m) > 7 and m % 2 == 0 and e < 8:  # Lava's normalisation
            m, e = m // 2, e + 1
        if m < -8 or m >= 8:
            raise ValueError(f"dw rule {dw!r}: scaling mantissa {m} not representable")
        if e < -7 or e >= 9:
            raise ValueError(f"dw rule {dw!r}: scaling exponent {e} outside -7..8")
        out.append(DwProduct(p["dep"], tuple(p["traces"]), int(m), int(e)))
    return tuple(out)


class LavaTraceRandom:
    """Lava's ``TraceRandom``: a decay stream (floats) and an impulse stream (integers 0..127),
    each drawing once at construction and once per :meth:`advance`."""

    def __init__(self, seed_decay: int, seed_impulse: int):
        self._decay = np.random.default_rng(seed=seed_decay)
        self._impulse = np.random.default_rng(seed=seed_impulse)
        self.advance()

    def advance(self) -> None:
        self.decay = float(self._decay.random(1)[0])
        self.impulse = int(self._impulse.integers(0, 2**W_TRACE, size=1, dtype=int)[0])


class LavaWeightRandom:
    """Lava's ``ConnVarRandom``: one float per :meth:`advance` (and one at construction)."""

    def __init__(self, seed: int = WEIGHT_RANDOM_SEED):
        self._rng = np.random.default_rng(seed=seed)
        self.advance()

    def advance(self) -> None:
        self.value = float(self._rng.random(1)[0])


def truncate_weights(W: np.ndarray, sign_mode: str, num_weight_bits: int) -> np.ndarray:
    """Lava's ``truncate_weights`` (what its first ``run_spk`` does to a LearningDense's weights)."""
    w = np.asarray(W).astype(np.int64)
    if sign_mode == "inhibitory":
        w = -w
    bits = 8 - int(num_weight_bits) + int(sign_mode == "mixed")
    w = (w >> bits) << bits
    return -w if sign_mode == "inhibitory" else w


def _split_impulse(impulse: float) -> tuple[int, int]:
    """(integer part, fractional part in 1/256) of a trace impulse, as Lava decomposes it."""
    i = float(np.floor(impulse))
    return int(i), int(np.round((impulse - i) * 2**W_TRACE_FRACTIONAL_PART))


class LavaFixedLearning:
    """A LearningDense's weights and traces under Lava's fixed-point learning engine, for a batch
    of trials (tensors on ``device``; weights ``(B, n_post, n_pre)`` int64, Lava's orientation).

    Call :meth:`accumulate` with a step's pre spikes (the spiking phase: the dendritic sum with
    the weights before this step's learning) and :meth:`learn` with the same pre spikes and the
    post spikes of that step, once per Lava step from step 1 on, in order."""

    def __init__(self, dw: str, impulses: dict, taus: dict, weights: np.ndarray, sign_mode: str, *,
                 num_weight_bits: int = 8, rng_seed: int = 0, t_epoch: int = 1, batch: int = 1,
                 device=None):
        import torch

        if t_epoch != 1:
            raise NotImplementedYet(f"t_epoch = {t_epoch}: only learning every step (t_epoch = 1) is emulated")
        if sign_mode not in SIGN_MODES:
            raise ValueError(f"sign_mode must be one of {SIGN_MODES}, got {sign_mode!r}")
        if rng_seed is None:
            raise ValueError("rng_seed None: Lava would draw a random seed; give the rule's seed")
        self.products = parse_dw(dw)
        self.sign_mode = sign_mode
        self.device = device = torch.device("cpu") if device is None else device
        W = truncate_weights(weights, sign_mode, num_weight_bits)
        if W.ndim != 2:
            raise ValueError("weights must be (n_post, n_pre)")
        self.n_post, self.n_pre = W.shape
        self.B = int(batch)
        self.w = torch.tensor(W, dtype=torch.int64, device=device).expand(self.B, -1, -1).clone()
        # per side: impulses (int, frac), taus, decay factors exactly as Lava's float64 exp computes them
        self._side = {}
        for side, names, n in (("x", X_TRACES, self.n_pre), ("y", Y_TRACES, self.n_post)):
            imp = [_split_impulse(float(impulses.get(k, 0.0))) for k in names]
            tau = np.array([taus.get(k, 0.0) for k in names])
            if np.any(tau < 0) or any(float(impulses.get(k, 0.0)) < 0 for k in names):
                raise ValueError("trace impulses and taus must be >= 0")
            active = tau != 0
            dec = np.zeros(len(names))
            if active.any():  # Lava: np.exp(-t / taus[taus != 0][:, np.newaxis]) * traces, t = 1
                dec[active] = np.exp(-1 / tau[active][:, np.newaxis])[:, 0]
            self._side[side] = {
                "names": names,
                "imp_int": torch.tensor([i for i, _ in imp], dtype=torch.int64, device=device).view(1, -1, 1),
                "imp_frac": torch.tensor([f for _, f in imp], dtype=torch.int64, device=device).view(1, -1, 1),
                "decay": torch.tensor(dec, dtype=torch.float64, device=device).view(1, -1, 1),
                "active": torch.tensor(active, device=device).view(1, -1, 1),
                "trace": torch.zeros((self.B, len(names), n), dtype=torch.int64, device=device)}
        self._x_random = LavaTraceRandom(rng_seed, rng_seed + 1)
        self._y_random = LavaTraceRandom(rng_seed + 2, rng_seed + 3)
        self._w_random = LavaWeightRandom()
        self.steps_done = 0

    @classmethod
    def from_stdp_encoding(cls, enc, weights: np.ndarray, sign_mode: str, **kw) -> LavaFixedLearning:
        """The engine of ``backends.lava.learning.stdp_rule`` for a
        :class:`~neurodeploy.lowering.learning_engine.StdpEncoding` (fixed point)."""
        impulses = {"x1": enc.x1_impulse, "y1": enc.y1_impulse, "y2": enc.y2_impulse}
        taus = {"x1": enc.x1_tau, "y1": enc.y1_tau, "y2": enc.y2_tau}
        return cls(enc.dw, impulses, taus, weights, sign_mode, **kw)

    # -- the traces and weights, by name (for tests and recordings)

    def trace(self, name: str):
        side = "x" if name.startswith("x") else "y"
        s = self._side[side]
        return s["trace"][:, s["names"].index(name)]

    def accumulate(self, pre):
        """The dendritic sum ``W @ s`` (B, n_post) of pre spikes ``pre`` (B, n_pre) with the
        current weights (before the weight exponent's shift)."""
        import torch

        # float64: exact for these integer sums (|w| <= 256), and CUDA has no integer matmul
        acc = torch.matmul(self.w.to(torch.float64), pre.to(torch.float64).unsqueeze(-1)).squeeze(-1)
        return acc.to(torch.int64)

    def learn(self, pre, post) -> None:
        """The learning phase of one Lava step (and the random draws of its spiking phase):
        ``pre`` (B, n_pre) and ``post`` (B, n_post) are the spikes that step's connection saw."""
        import torch

        pre = pre.to(torch.bool)
        post = post.to(torch.bool)
        # spiking phase: the trace generators advance twice (after the pre, after the post spikes)
        for _ in range(2):
            self._x_random.advance()
            self._y_random.advance()
        # learning phase: the weight generator first
        self._w_random.advance()
        x = self._update_traces("x", pre, self._x_random)
        y = self._update_traces("y", post, self._y_random)
        xn, yn = self._side["x"]["names"], self._side["y"]["names"]
        x0 = pre.to(torch.int64)[:, None, :]  # (B, 1, n_pre)
        y0 = post.to(torch.int64)[:, :, None]  # (B, n_post, 1)
        acc = self.w << WEIGHT_SHIFT
        lo, hi = -(2**W_TRACE), 2**W_TRACE - 1
        for p in self.products:
            cur = x0 if p.dependency == "x0" else y0
            for t in p.traces:
                if t in xn:
                    v = x[:, xn.index(t)][:, None, :]  # (B, 1, n_pre)
                else:
                    v = y[:, yn.index(t)][:, :, None]  # (B, n_post, 1)
                cur = cur * v.clamp(lo, hi)
            cur = (cur * p.mantissa) >> p.shift
            cur = (cur << (p.exponent + 7)).clamp(ACC_MIN, ACC_MAX)
            acc = (acc + cur).clamp(ACC_MIN, ACC_MAX)  # broadcasts to (B, n_post, n_pre)
        if self.sign_mode == "excitatory":
            acc = acc.clamp(min=0)
        elif self.sign_mode == "inhibitory":
            acc = acc.clamp(max=0)
        unit = 2 ** (W_ACCUMULATOR_U - W_WEIGHTS_U)  # 128: the weight's LSB in the accumulator
        frac = torch.remainder(acc, unit).to(torch.float64) / unit
        w = torch.div(acc, unit, rounding_mode="floor") + (self._w_random.value < frac).to(torch.int64)
        top = 2**W_WEIGHTS_U
        if self.sign_mode == "excitatory":
            w = w.clamp(0, top - 1)
        elif self.sign_mode == "inhibitory":
            w = w.clamp(-(top - 1), 0)
        else:
            w = w.clamp(-top, top - 1)
        self.w = w
        self.steps_done += 1

    def _update_traces(self, side: str, spiked, rnd: LavaTraceRandom):
        """Decay (stochastic rounding), then this step's impulse for the neurons that spiked."""
        import torch

        s = self._side[side]
        prod = s["trace"].to(torch.float64) * s["decay"]
        floor = torch.floor(prod)
        dec = floor.to(torch.int64) + (rnd.decay < (prod - floor)).to(torch.int64)
        dec = torch.where(s["active"], dec, 0)
        bumped = dec + s["imp_int"] + (rnd.impulse < s["imp_frac"]).to(torch.int64)
        bumped = bumped.clamp(0, TRACE_MAX)
        new = torch.where(spiked[:, None, :], bumped, dec)
        s["trace"] = new
        return new
