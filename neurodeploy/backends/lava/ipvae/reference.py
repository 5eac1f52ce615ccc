"""Numpy reference of the iP-VAE latent dynamics on Lava (no Lava import): the float step and the
fixed-point format, tables and step that :class:`PyIPVAELatentsFixed` executes bit for bit.

Fixed-point format (:class:`FixedFormat`)
-----------------------------------------
* potentials ``u``, increments ``du`` and the drive are integers in units of ``2^-frac_bits``
  (Q-format; default ``frac_bits = 10``, i.e. u resolution ~0.001), ``u`` confined to
  ``[u_min, u_max]`` (default [-8, 10] -> 18433 values, 16 bits);
* the lateral weights ``-W`` are 8-bit signed integers ``q`` with one shared exponent ``s``
  (weight = ``q 2^s``, ``s`` the smallest exponent with ``max |W| 2^-s <= 127``). Lava's
  bit-accurate ``Dense`` stores a mixed-sign 8-bit weight as an even mantissa (it truncates the
  LSB), so the Dense process holds ``2 q`` and delivers ``a_in = sum_j 2 q_kj z_j`` exactly;
  the latent converts it to Q units with ``lat = a_in 2^(s - 1 + frac_bits)`` (a shift; rounded
  half-up when it is a right shift);
* the soft clamp ``c - softplus(c - y)`` uses a softplus table over ``|c - y| <= 8`` (outside:
  0 below, identity above; the error of that cut is < 2^-11), entries rounded to Q units;
* the rate ``exp(u)`` and the Poisson count come from one table indexed by u rounded to
  ``lut_bits`` fractional bits (default 8, 4609 levels): for each level, the cumulative
  distribution ``floor(2^24 P(Z <= n))`` for ``n < 2^count_bits - 1``; the count is the number of
  entries not above a 24-bit uniform integer (inverse CDF), hence clipped to the payload
  ``[0, 2^count_bits - 1]`` (default 8 bits, 0..255);
* the uniform integers come from one xorshift32 generator per neuron (state: uint32), the top
  24 bits of each new state.
"""

# no ``from __future__ import annotations``: Lava's model discovery executes this file under
# the bare name ``reference`` (not in sys.modules), where string annotations break @dataclass.

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from neurodeploy.learn.ipvae import softclamp_upper_np

UNIFORM_BITS = 24
SOFTPLUS_RANGE = 8.0  # table domain |d| <= 8 (in u units)


# --- float ------------------------------------------------------------------------------------

def float_update(u, drive, lat, *, u_min, u_max, du_max, soft):
    """New potentials from the lateral input ``lat = -W z`` (float; same arithmetic as
    :func:`neurodeploy.learn.ipvae.ipvae_step` with ``du = drive + lat``)."""
    cap = (lambda y, c: softclamp_upper_np(y, c)) if soft else (lambda y, c: np.minimum(y, c))
    du = cap(np.maximum(drive + lat, u_min), du_max)
    return cap(np.maximum(u + du, u_min), u_max)


# --- fixed point ------------------------------------------------------------------------------

@dataclass(frozen=True)
class FixedFormat:
    frac_bits: int = 10
    lut_bits: int = 8
    count_bits: int = 8
    u_min: float = -8.0
    u_max: float = 10.0
    du_max: float = 10.0
    soft: bool = True

    @property
    def one(self) -> int:
        return 1 << self.frac_bits

    def q(self, x) -> np.ndarray:
        """Float -> Q units (round half away from zero)."""
        return np.round(np.asarray(x, np.float64) * self.one).astype(np.int64)

    @property
    def u_min_q(self) -> int:
        return int(self.q(self.u_min))

    @property
    def u_max_q(self) -> int:
        return int(self.q(self.u_max))

    @property
    def du_max_q(self) -> int:
        return int(self.q(self.du_max))

    @property
    def count_max(self) -> int:
        return (1 << self.count_bits) - 1

    def to_float(self, u_q) -> np.ndarray:
        return np.asarray(u_q, np.float64) / self.one


def weight_exponent(W) -> int:
    """Smallest shared exponent s with max|W| 2^-s <= 127."""
    m = float(np.max(np.abs(W)))
    if m == 0:
        return 0
    s = int(np.ceil(np.log2(m / 127.0)))
    return s if np.max(np.abs(np.round(np.asarray(W) * 2.0 ** -s))) <= 127 else s + 1


def quantize_weights(W) -> tuple[np.ndarray, int]:
    """(q, s): 8-bit signed integers q (int32) and the shared exponent s, weight ~ q 2^s."""
    s = weight_exponent(W)
    q = np.clip(np.round(np.asarray(W, np.float64) * 2.0 ** -s), -127, 127).astype(np.int32)
    return q, s


def shift_round(a, sh: int) -> np.ndarray:
    """a 2^sh for integer arrays: left shift, or right shift rounded half up."""
    a = np.asarray(a, np.int64)
    if sh >= 0:
        return a << sh
    return (a + (1 << (-sh - 1))) >> (-sh)


@lru_cache(maxsize=8)
def softplus_table(fmt: FixedFormat) -> np.ndarray:
    """softplus(d) in Q units for d = -R..R (Q units), R = 8 2^frac_bits."""
    R = int(SOFTPLUS_RANGE * fmt.one)
    d = np.arange(-R, R + 1) / fmt.one
    return np.round(np.logaddexp(0.0, d) * fmt.one).astype(np.int64)


def cap_q(y, c_q: int, fmt: FixedFormat) -> np.ndarray:
    """Upper cap in Q units: ``c - softplus(c - y)`` by table (soft) or ``min(y, c)``."""
    y = np.asarray(y, np.int64)
    if not fmt.soft:
        return np.minimum(y, c_q)
    R = int(SOFTPLUS_RANGE * fmt.one)
    d = c_q - y
    sp = np.where(d > R, d, np.where(d < -R, 0, softplus_table(fmt)[np.clip(d, -R, R) + R]))
    return c_q - sp


@lru_cache(maxsize=8)
def count_tables(fmt: FixedFormat) -> tuple[np.ndarray, np.ndarray]:
    """(rates, cdf): rate exp(u) per table level (float64, for readout) and the integer CDF
    ``floor(2^24 P(Z <= n))``, shape (levels, count_max), for u = u_min + level 2^-lut_bits."""
    from scipy.stats import poisson

    lo = int(np.floor(fmt.u_min * (1 << fmt.lut_bits)))
    hi = int(np.ceil(fmt.u_max * (1 << fmt.lut_bits)))
    u = np.arange(lo, hi + 1) / (1 << fmt.lut_bits)
    rates = np.exp(u)
    n = np.arange(fmt.count_max)
    cdf = poisson.cdf(n[None, :], rates[:, None])
    cdf_q = np.floor(cdf * (1 << UNIFORM_BITS)).astype(np.int32)
    return rates, cdf_q


def lut_level(u_q, fmt: FixedFormat) -> np.ndarray:
    """Table level of ``u_q``: u rounded to lut_bits fractional bits, minus the table's origin."""
    lo = int(np.floor(fmt.u_min * (1 << fmt.lut_bits)))
    return shift_round(u_q, fmt.lut_bits - fmt.frac_bits) - lo


def xorshift32(state) -> np.ndarray:
    """One xorshift32 step per element (uint32 arithmetic on an int64/uint32 array)."""
    x = np.asarray(state).astype(np.uint32)
    x ^= (x << np.uint32(13))
    x ^= (x >> np.uint32(17))
    x ^= (x << np.uint32(5))
    return x


def seed_states(n: int, seed: int) -> np.ndarray:
    """Non-zero xorshift32 states for n neurons (int64 holding uint32 values)."""
    s = np.random.default_rng(seed).integers(1, 2 ** 32, size=n, dtype=np.uint64)
    return s.astype(np.int64)


def draw_counts(u_q, state, fmt: FixedFormat) -> tuple[np.ndarray, np.ndarray]:
    """(counts, new_state): inverse-CDF Poisson counts of rate exp(u), clipped to the payload."""
    new = xorshift32(state)
    uni = (new >> np.uint32(32 - UNIFORM_BITS)).astype(np.int32)
    _, cdf = count_tables(fmt)
    level = lut_level(u_q, fmt)
    counts = (uni[:, None] >= cdf[level]).sum(axis=1)
    return counts.astype(np.int32), new.astype(np.int64)


def fixed_update(u_q, drive_q, a_in, lat_shift: int, fmt: FixedFormat) -> np.ndarray:
    """New integer potentials: du = cap(max(drive + lat, u_min), du_max),
    u = cap(max(u + du, u_min), u_max), lat = a_in 2^lat_shift (all Q units)."""
    du = np.maximum(np.asarray(drive_q, np.int64) + shift_round(a_in, lat_shift), fmt.u_min_q)
    du = cap_q(du, fmt.du_max_q, fmt)
    v = np.maximum(np.asarray(u_q, np.int64) + du, fmt.u_min_q)
    return cap_q(v, fmt.u_max_q, fmt)


def fixed_step(u_q, drive_q, a_in, state, lat_shift: int, fmt: FixedFormat):
    """One fixed-point iteration: (u_q, counts, state)."""
    u_new = fixed_update(u_q, drive_q, a_in, lat_shift, fmt)
    z, state = draw_counts(u_new, state, fmt)
    return u_new, z, state


def fixed_run(u0_q, z0, drive_q, Wq_dense, lat_shift: int, state, T: int, fmt: FixedFormat):
    """T fixed-point iterations with the lateral input ``a_in = Wq_dense @ z`` (the integers the
    bit-accurate Dense delivers). Returns (u_q, z, zbar, state)."""
    from neurodeploy.backends.ipvae_common import average_counts

    u, z = np.asarray(u0_q, np.int64), np.asarray(z0, np.int64)
    zbar = np.zeros(z.shape)
    for t in range(1, T + 1):
        a_in = Wq_dense @ z
        u, z, state = fixed_step(u, drive_q, a_in, state, lat_shift, fmt)
        zbar = average_counts(zbar, z, t)
    return u, z, zbar, state
