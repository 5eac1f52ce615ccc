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
* the table is stored as :func:`count_table` packs it (and :func:`draw_counts` reads it so):
  per level only the window of entries strictly between 0 (always counted: a ``skip`` count) and
  ``2^24`` (never counted, the uniform is below it), and only up to the first level whose whole
  row is 0 (every higher level draws ``count_max``). That storage gives the same counts as the
  full table for every u and uniform; it only removes bytes. :meth:`FixedFormat.core_sized`
  (``lut_bits = 5``) is the format whose packed table fits one Loihi 2 core next to the lateral
  weights (:func:`count_table_bytes`);
* the uniform integers come from one xorshift32 generator per neuron (state: uint32), the top
  24 bits of each new state.
"""

# no ``from __future__ import annotations``: Lava's model discovery executes this file under
# the bare name ``reference`` (not in sys.modules), where string annotations break @dataclass.

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from neurodeploy.library.blocks.ipvae.neuron import softclamp_upper_np
from neurodeploy.library.blocks.ipvae.reference import average_counts

UNIFORM_BITS = 24
SOFTPLUS_RANGE = 8.0  # table domain |d| <= 8 (in u units)
CORE_LUT_BITS = 5  # rate / CDF table resolution of FixedFormat.core_sized()
CORE_MEMORY_BYTES = 128 * 1024  # a Loihi 2 core's synapse memory (research/loihi_lava.md §1.5)


# --- float ------------------------------------------------------------------------------------

def float_update(u, drive, lat, *, u_min, u_max, du_max, soft):
    """New potentials from the lateral input ``lat = -W z`` (float; same arithmetic as
    :func:`neurodeploy.library.blocks.ipvae.reference.ipvae_step` with ``du = drive + lat``)."""
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

    @classmethod
    def core_sized(cls, **kw) -> "FixedFormat":
        """The core-sized count sampler: the default format with the rate / CDF table indexed
        by u rounded to ``CORE_LUT_BITS`` (5) fractional bits instead of 8 (rate steps of
        ``2^-5`` in u, relative rate error <= 1.6 %), payload and everything else unchanged.
        Packed (:func:`count_table`), its table is 45 KiB for u in [-8, 10] and 25 KiB for
        [-8, 4] against 362 / 197 KiB at 8 bits (3.4 / 2.2 MiB unpacked). ``kw`` overrides
        any field (``u_min``, ``u_max``, ... of the coder)."""
        return cls(**{"lut_bits": CORE_LUT_BITS, **kw})

    @property
    def one(self) -> int:
        return 1 << self.frac_bits

    def q(self, x) -> np.ndarray:
        """Float -> Q units, rounded to nearest with ties to even (``np.round``)."""
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
    lo = int(np.floor(fmt.u_min * (1 << fmt.lut_bits)))
    hi = int(np.ceil(fmt.u_max * (1 << fmt.lut_bits)))
    u = np.arange(lo, hi + 1) / (1 << fmt.lut_bits)
    rates = np.exp(u)
    n = np.arange(fmt.count_max)
    from scipy.stats import poisson

    cdf = poisson.cdf(n[None, :], rates[:, None])
    cdf_q = np.floor(cdf * (1 << UNIFORM_BITS)).astype(np.int32)
    return rates, cdf_q


@dataclass(frozen=True)
class CountTable:
    """The rate / CDF table as stored (:func:`count_table`): ``levels`` rows, row ``l`` for
    u = u_min + l 2^-lut_bits (higher levels read the last row). A row holds ``skip[l]``
    (entries equal to 0, always counted) and its ``length[l]`` entries in ``(0, 2^24)``;
    ``window`` is the rows padded to the widest with ``2^24`` (never counted)."""

    skip: np.ndarray  # (levels,) int32
    length: np.ndarray  # (levels,) int32
    window: np.ndarray  # (levels, width) int32

    @property
    def levels(self) -> int:
        return len(self.skip)

    @property
    def entries(self) -> int:
        return int(self.length.sum())


@lru_cache(maxsize=8)
def count_table(fmt: FixedFormat) -> CountTable:
    """The packed count table of ``fmt``: :func:`count_tables`'s CDF without its 0 and 2^24
    entries and without the levels above the first all-zero row (all draw ``count_max``).
    :func:`draw_counts` with it equals the full table's inverse CDF bit for bit (the CDF rows
    are non-decreasing, so the zeros are a prefix and the 2^24 entries a suffix)."""
    _, cdf = count_tables(fmt)
    full = 1 << UNIFORM_BITS
    if cdf.min() < 0 or cdf.max() > full or np.any(np.diff(cdf, axis=1) < 0):
        raise AssertionError("count table rows must be non-decreasing in [0, 2^24]")
    sat = np.nonzero((cdf == 0).all(axis=1))[0]
    cdf = cdf[: sat[0] + 1] if len(sat) else cdf
    skip = (cdf == 0).sum(axis=1).astype(np.int32)
    length = ((cdf < full).sum(axis=1) - skip).astype(np.int32)
    width = max(int(length.max()), 1)
    window = np.full((len(cdf), width), full, np.int32)
    for i, (a, n) in enumerate(zip(skip, length)):
        window[i, :n] = cdf[i, a:a + n]
    return CountTable(skip=skip, length=length, window=window)


def count_table_bytes(fmt: FixedFormat) -> dict:
    """Memory of ``fmt``'s count table: ``full`` (every level, ``count_max`` 24-bit entries
    each: :func:`count_tables`) and ``packed`` (:func:`count_table`: the entries of each row's
    window plus a row header of a start pointer and the skip count, rounded up to whole
    bytes), with the sizes behind them."""
    rates, cdf = count_tables(fmt)
    tab = count_table(fmt)
    pointer_bits = max(1, int(np.ceil(np.log2(tab.entries + 1))))
    header_bytes = -(-(pointer_bits + fmt.count_bits) // 8)
    entry_bytes = UNIFORM_BITS // 8
    return {"full": int(cdf.size * entry_bytes), "full_levels": int(len(rates)),
            "full_entries_per_level": int(cdf.shape[1]),
            "packed": int(tab.entries * entry_bytes + tab.levels * header_bytes),
            "packed_levels": tab.levels, "packed_entries": tab.entries,
            "packed_widest_row": int(tab.length.max()), "entry_bits": UNIFORM_BITS,
            "row_header_bits": pointer_bits + fmt.count_bits,
            "row_header_bytes": header_bytes}


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
    """(counts, new_state): inverse-CDF Poisson counts of rate exp(u), clipped to the payload,
    read from the packed table (:func:`count_table`): ``skip + #(window entries <= uniform)``."""
    new = xorshift32(state)
    uni = (new >> np.uint32(32 - UNIFORM_BITS)).astype(np.int32)
    tab = count_table(fmt)
    level = np.minimum(lut_level(u_q, fmt), tab.levels - 1)
    counts = tab.skip[level] + (uni[:, None] >= tab.window[level]).sum(axis=1)
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
    u, z = np.asarray(u0_q, np.int64), np.asarray(z0, np.int64)
    zbar = np.zeros(z.shape)
    for t in range(1, T + 1):
        a_in = Wq_dense @ z
        u, z, state = fixed_step(u, drive_q, a_in, state, lat_shift, fmt)
        zbar = average_counts(zbar, z, t)
    return u, z, zbar, state


#: count samplers of the fixed-point latents: ``full`` (rate / CDF table at u resolution 2^-8) or
#: ``core`` (:meth:`FixedFormat.core_sized`, 2^-5: its packed table fits one Loihi 2 core next to
#: the lateral weights). ``DEFAULT_SAMPLER`` is what :func:`run_ipvae_lava` (hence ``neurodeploy
#: eval -t loihi2-sim``) and ``neurodeploy compile`` use unless told otherwise.
SAMPLERS = ("full", "core")


DEFAULT_SAMPLER = "core"


def fixed_format(p, frac_bits: int = 10, lut_bits: int | None = None, count_bits: int = 8,
                 sampler: str | None = None) -> FixedFormat:
    """The :class:`FixedFormat` of the coder ``p`` (its bounds and clamp). ``sampler`` picks the
    table resolution (``full``: 8 fractional bits; ``core``: ``CORE_LUT_BITS``, the core-sized
    sampler; default ``DEFAULT_SAMPLER``); an explicit ``lut_bits`` overrides it."""
    sampler = DEFAULT_SAMPLER if sampler is None else sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if lut_bits is None:
        lut_bits = CORE_LUT_BITS if sampler == "core" else 8
    return FixedFormat(frac_bits=frac_bits, lut_bits=lut_bits, count_bits=count_bits, u_min=p.u_min,
                       u_max=p.u_max, du_max=p.du_max, soft=p.soft)
