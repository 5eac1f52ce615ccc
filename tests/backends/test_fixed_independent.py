"""Independent integer references for the fixed-point coders (issue 18, item 3).

The Lava ``fixed_pt`` models of the iP-VAE latents and of LCA execute the numpy steps in
``library/blocks/ipvae/fixed.py`` and ``library/blocks/lca/fixed.py``, and the bit-exact tests
elsewhere compare Lava with those same steps. Here the integer arithmetic is written a second
time, from the formats' documentation only: scalar Python integers, tables computed on the
fly with ``math`` (the Poisson CDF by summing the pmf in log space, not scipy), no function of
the modules under test except the float host side (drive, lateral matrix, parameters) and the
initial PRNG states / counts the run reports. The Lava runs are then compared with this second
implementation, integer for integer.

What the formats' documents define and this file re-derives:
* Q units ``2^-frac_bits``; host values rounded to nearest (ties to even: numpy's rounding);
* right shifts rounded half up (``(a + 2^(k-1)) >> k``), left shifts exact;
* 8-bit weights ``q`` with the smallest shared exponent ``s`` such that ``max |round(w 2^-s)| <= 127``,
  Lava holding ``2 q``;
* iP-VAE: ``du = cap(max(drive + lat, u_min), du_max)``, ``u = cap(max(u + du, u_min), u_max)``,
  ``cap(y, c) = c - softplus_Q(c - y)`` with softplus rounded to Q units for ``|c - y| <= 8``
  (0 below, identity above); counts by inverse CDF: xorshift32 (13, 17, 5), the top 24 bits as
  the uniform, u rounded (half up) to ``lut_bits`` fractional bits picks ``lambda = exp(u_level)``,
  the count is the number of ``n < 2^count_bits - 1`` with ``floor(2^24 P(Z <= n)) <= uniform``;
* LCA: ``lat = a_in 2^(s-1)``, ``e = drive - v - lat``, ``v += (dt_mult e + 2^(dt_shift-1)) >> dt_shift``,
  saturate ``v`` to 24 bits, ``a = min(max(v - lam, 0), 2^payload - 1)``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest

from tests.backends.helpers import LCA_DT_TAU, LCA_LAM, lca_dictionary

pytestmark = pytest.mark.lava


# --- shared integer pieces --------------------------------------------------------------------

def _shift(a: int, sh: int) -> int:
    """a 2^sh: exact left shift, right shift rounded half up (Python's >> floors)."""
    return a << sh if sh >= 0 else (a + (1 << (-sh - 1))) >> (-sh)


def _weights8(W) -> tuple[list[list[int]], int]:
    """(q, s): the smallest s with max|round(W 2^-s)| <= 127, found by walking s upwards (the
    magnitudes only shrink as s grows), not by the log2 formula the module uses."""
    W = np.asarray(W, np.float64)
    s = -64
    while np.abs(np.round(W * 2.0 ** -s)).max() > 127:
        s += 1
    return np.round(W * 2.0 ** -s).astype(np.int64).tolist(), s


def _matvec(Wq: list[list[int]], z: list[int]) -> list[int]:
    return [sum(w * x for w, x in zip(row, z) if x) for row in Wq]


# --- iP-VAE latents ---------------------------------------------------------------------------

class _IPVAE:
    def __init__(self, fmt):
        self.f = fmt.frac_bits
        self.one = 1 << self.f
        self.lut = fmt.lut_bits
        self.cmax = (1 << fmt.count_bits) - 1
        self.soft = fmt.soft
        q = lambda x: int(np.round(x * self.one))  # noqa: E731
        self.u_min, self.u_max, self.du_max = q(fmt.u_min), q(fmt.u_max), q(fmt.du_max)
        self.lo = math.floor(fmt.u_min * (1 << self.lut))

    @lru_cache(maxsize=None)
    def softplus(self, d: int) -> int:
        x = d / self.one
        sp = x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))
        return int(np.round(sp * self.one))

    def cap(self, y: int, c: int) -> int:
        if not self.soft:
            return min(y, c)
        d, R = c - y, 8 * self.one
        return c - (d if d > R else 0 if d < -R else self.softplus(d))

    @lru_cache(maxsize=None)
    def cdf_row(self, level: int) -> tuple[int, ...]:
        lam = math.exp((level + self.lo) / (1 << self.lut))
        out, logp, acc = [], -lam, 0.0  # log pmf(0)
        for n in range(self.cmax):
            if n:
                logp += math.log(lam) - math.log(n)
            acc += math.exp(logp)
            out.append(math.floor(min(acc, 1.0) * (1 << 24)))
        return tuple(out)

    def count(self, u: int, uni: int) -> int:
        level = _shift(u, self.lut - self.f) - self.lo
        return sum(1 for c in self.cdf_row(level) if c <= uni)

    def run(self, u: list[int], z: list[int], drive: list[int], Wq, lat_shift: int, state: list[int], T: int):
        u, z, state = list(u), list(z), list(state)
        for _ in range(T):
            a_in = _matvec(Wq, z)
            for i in range(len(u)):
                du = self.cap(max(drive[i] + _shift(a_in[i], lat_shift), self.u_min), self.du_max)
                u[i] = self.cap(max(u[i] + du, self.u_min), self.u_max)
                x = state[i]
                x ^= (x << 13) & 0xFFFFFFFF
                x ^= x >> 17
                x ^= (x << 5) & 0xFFFFFFFF
                state[i] = x
                z[i] = self.count(u[i], x >> 8)
        return u, z


@pytest.mark.parametrize("sampler", ["core", "full"])
def test_lava_ipvae_fixed_equals_an_independent_integer_reference(arrays, X, sampler):
    from neurodeploy.backends.lava.blocks.ipvae import run_ipvae_lava
    from neurodeploy.library.blocks.ipvae.reference import drive, ipvae_params, lateral_matrix

    T, Xs = 6, X[:2]
    r = run_ipvae_lava(arrays, Xs, T, fixed=True, seed=11, batch=2, sampler=sampler)
    fmt, p = r["format"], ipvae_params(arrays)
    ref = _IPVAE(fmt)
    q, s = _weights8(-lateral_matrix(p))
    assert s == r["weight_exponent"]
    K = p.latents
    u0 = [min(max(int(np.round(x * ref.one)), ref.u_min), ref.u_max) for x in p.u0]
    D = drive(p, Xs)
    for b in range(len(Xs)):
        Wq = [[2 * w for w in row] for row in q]
        u, z = ref.run(u0, [int(x) for x in r["z0"][b]], [int(np.round(d * ref.one)) for d in D[b]], Wq,
                       s - 1 + ref.f, [int(x) for x in r["state0"][b]], T)
        assert u == r["u_q"][b].tolist(), f"image {b}: potentials differ"
        assert z == r["z"][b].astype(np.int64).tolist(), f"image {b}: counts differ"
        assert 0 < sum(z) and len(set(u)) > K // 4  # a non-trivial state, not all clamped


def test_independent_poisson_table_is_poisson():
    """The reference's own table: at u = 0 (lambda = 1) the counts of 20,000 uniforms follow
    Pois(1) (chi-square over 0..4+, generous bound), and a large u saturates the payload."""
    from neurodeploy.library.blocks.ipvae.fixed import FixedFormat

    ref = _IPVAE(FixedFormat())
    rng = np.random.default_rng(0)
    counts = np.array([ref.count(0, int(v)) for v in rng.integers(0, 1 << 24, 20000)])
    obs = np.array([np.sum(counts == k) for k in range(4)] + [np.sum(counts >= 4)])
    pk = np.array([math.exp(-1) / math.factorial(k) for k in range(4)])
    exp_ = 20000 * np.append(pk, 1 - pk.sum())
    assert ((obs - exp_) ** 2 / exp_).sum() < 20.5  # chi2(4) at p = 0.9996
    assert ref.count(10 << 10, (1 << 24) - 1) == 255


# --- LCA --------------------------------------------------------------------------------------

def _lca_run(Phi, X, T, lam, dt_tau):
    """The LCA integer iteration from the format's documentation (frac 10, dt 12 bits, payload
    16, v 24 bits)."""
    f, one = 10, 1 << 10
    G = Phi.T @ Phi - np.eye(Phi.shape[1])
    q, s = _weights8(G)
    W2 = [[2 * w for w in row] for row in q]
    m, e = math.frexp(dt_tau)
    mult, shift = (1, 1 - e) if m == 0.5 else (round(dt_tau * 4096), 12)
    lam_q, a_max, v_lo, v_hi = int(np.round(lam * one)), (1 << 16) - 1, -(1 << 23), (1 << 23) - 1
    out_v, out_a = [], []
    for x in X:
        drive = [int(d) for d in np.round((x @ Phi) * one)]
        v = [0] * len(drive)
        a = [min(max(vi - lam_q, 0), a_max) for vi in v]
        for _ in range(T):
            a_in = _matvec(W2, a)
            for i in range(len(v)):
                e_ = drive[i] - v[i] - _shift(a_in[i], s - 1)
                v[i] = min(max(v[i] + ((mult * e_ + (1 << (shift - 1))) >> shift), v_lo), v_hi)
                a[i] = min(max(v[i] - lam_q, 0), a_max)
        out_v.append(v)
        out_a.append(a)
    return out_v, out_a


def test_lava_lca_fixed_equals_an_independent_integer_reference():
    pytest.importorskip("lava")
    from neurodeploy.backends.lava.blocks.lca import run_lca_lava
    from neurodeploy.core.data import train_test

    Phi = lca_dictionary()
    X = np.asarray(train_test("digits")[1], np.float64)[:3]
    T = 25
    r = run_lca_lava(Phi, X, T, LCA_LAM, LCA_DT_TAU, fixed=True)
    v, a = _lca_run(Phi, X, T, LCA_LAM, LCA_DT_TAU)
    assert v == r["v_q"].tolist() and a == r["a_q"].tolist()
    assert 0 < np.mean(np.asarray(a) > 0) < 1
