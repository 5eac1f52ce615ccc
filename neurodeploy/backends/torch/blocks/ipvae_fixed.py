"""Fixed-point iP-VAE inference in torch (target ``loihi2-torch``): the integer algorithm of the
Lava ``fixed_pt`` latents (:class:`~neurodeploy.backends.lava.blocks.ipvae.models.PyIPVAELatentsFixed`
with Lava's bit-accurate ``Dense``/``Sparse``), for every image at once in batched int64 tensors,
on CUDA when available, else the CPU.

It is operation for operation :func:`neurodeploy.library.blocks.ipvae.fixed.fixed_step`
(format, tables and rounding in ``reference.py``):

* ``du = cap(max(drive + lat, u_min), du_max)``, ``u = cap(max(u + du, u_min), u_max)`` in Q
  units, ``lat = a_in 2^lat_shift`` (shift, rounded half up when it is a right shift),
  ``lat_shift = s - 1 + frac_bits`` with the Dense holding ``2 q`` (``q, s =
  quantize_weights(-W)``), the soft cap by the same softplus table (a gather);
* the lateral input ``a_in = z (2 q)^T`` of the previous counts, per image (the block-diagonal
  Dense of the Lava run). It is computed as a **float64** matmul, because CUDA has no int64
  matmul: every product ``2 q_kj z_j`` and every partial sum is an integer of magnitude at most
  ``K max|2 q| count_max`` (64 770 K; 1.7e7 for K = 256), far below 2^53, so each is exactly
  representable and the result is exact in any summation order (checked at run time);
* one xorshift32 per neuron in int64 with 32-bit masks; the uniform is the top 24 bits;
* the count is the inverse CDF read from the packed table (:func:`reference.count_table`):
  ``skip[level] + #(window[level] <= uniform)``. The rows' ``length[level]`` window entries (in
  ``(0, 2^24)``, non-decreasing; the ``2^24`` padding is never counted) are stored one row after
  the other with row ``l`` offset by ``l 2^25``, which makes the whole sequence sorted, so one
  ``torch.searchsorted`` of ``level 2^25 + uniform`` gives ``start[level] + #(row entries <=
  uniform)`` for every neuron at once (``start``: the row's pointer, as in the packed storage);
* the averaged counts ``zbar += (z - zbar) / min(t, AVG_TAU)`` in float64 (the model's
  arithmetic: equal to it up to float64 rounding, in practice bit for bit).

The random numbers follow :func:`~neurodeploy.backends.lava.blocks.ipvae.run_ipvae_lava` exactly: the
initial counts from :func:`~neurodeploy.library.blocks.ipvae.reference.prepare_run`, then per Lava batch
of ``batch`` images (in order) one ``rng.integers(2^31)`` seeding that batch's xorshift32 states
(:func:`reference.seed_states` over its ``batch K`` neurons) and one more (the process seed, unused
in fixed point). So with the same ``seed`` and ``batch`` the run equals ``run_ipvae_lava(...,
fixed=True, batch=batch)`` bit for bit (``u_q``, ``z``; ``zbar`` to float64 rounding); ``batch``
only changes the seeding, never the arithmetic (all images run in one tensor computation).
"""

from __future__ import annotations

import time

import numpy as np

from neurodeploy.backends.torch.simulator import pick_device
from neurodeploy.library.blocks.coder import chunks
from neurodeploy.library.blocks.ipvae.fixed import (
    DEFAULT_SAMPLER,
    SOFTPLUS_RANGE,
    UNIFORM_BITS,
    FixedFormat,
    count_table,
    fixed_format,
    quantize_weights,
    seed_states,
    softplus_table,
)
from neurodeploy.library.blocks.ipvae.reference import AVG_TAU, ipvae_result, prepare_run

__all__ = ["run_ipvae_torch_fixed"]

_MASK32 = 0xFFFFFFFF
#: row offset of the searchable count table (> UNIFORM_BITS: a row's entries are <= 2^24)
_KEY_BITS = UNIFORM_BITS + 1
#: float64 represents every integer of magnitude below this exactly
_FLOAT64_EXACT = 2 ** 53


def _shift_round(a, sh: int):
    """``a 2^sh`` for int64 tensors: left shift, or right shift rounded half up
    (:func:`reference.shift_round`; ``>>`` on int64 is the arithmetic, flooring shift)."""
    if sh >= 0:
        return a << sh
    return (a + (1 << (-sh - 1))) >> (-sh)


class _FixedTables:
    """The format's tables on ``device``: softplus (Q units) and the packed count table."""

    def __init__(self, fmt: FixedFormat, device):
        import torch

        self.fmt = fmt
        self.R = int(SOFTPLUS_RANGE * fmt.one)
        self.softplus = torch.as_tensor(softplus_table(fmt), dtype=torch.int64, device=device)
        tab = count_table(fmt)
        self.levels = tab.levels
        # the packed rows (each row's length[l] window entries, all in (0, 2^24)) one after the
        # other, row l offset by l 2^KEY_BITS: the whole sequence is non-decreasing, and the
        # entries <= l 2^KEY_BITS + uni are the rows before l (start[l] entries) and the entries
        # of row l not above uni
        rows = np.repeat(np.arange(tab.levels, dtype=np.int64), tab.length)
        cols = np.arange(len(rows)) - np.repeat(np.cumsum(tab.length) - tab.length, tab.length)
        keys = (rows << _KEY_BITS) + tab.window[rows, cols]
        self.keys = torch.as_tensor(keys, dtype=torch.int64, device=device)
        self.start = torch.as_tensor(np.cumsum(tab.length) - tab.length, dtype=torch.int64, device=device)
        self.skip = torch.as_tensor(tab.skip, dtype=torch.int64, device=device)
        self.lut_lo = int(np.floor(fmt.u_min * (1 << fmt.lut_bits)))

    def cap(self, y, c_q: int):
        """``c - softplus(c - y)`` by table (soft) or ``min(y, c)`` (:func:`reference.cap_q`)."""
        import torch

        if not self.fmt.soft:
            return torch.clamp(y, max=c_q)
        R = self.R
        d = c_q - y
        sp = torch.take(self.softplus, torch.clamp(d, -R, R) + R)
        sp = torch.where(d > R, d, torch.where(d < -R, 0, sp))
        return c_q - sp

    def counts(self, u_q, state):
        """(counts, new state): :func:`reference.draw_counts` on int64 tensors."""
        import torch

        x = state
        x = x ^ ((x << 13) & _MASK32)
        x = x ^ (x >> 17)
        x = x ^ ((x << 5) & _MASK32)
        uni = x >> (32 - UNIFORM_BITS)
        fmt = self.fmt
        # u_q >= u_min_q (the update's floor), so level >= 0 as in the reference
        level = torch.clamp(_shift_round(u_q, fmt.lut_bits - fmt.frac_bits) - self.lut_lo,
                            max=self.levels - 1)
        # entries of row `level` not above uni: one binary search in the offset packed table
        below = torch.searchsorted(self.keys, (level << _KEY_BITS) + uni, right=True)
        return below - torch.take(self.start, level) + torch.take(self.skip, level), x


def run_ipvae_torch_fixed(arrays: dict, X, T: int, seed: int = 0, batch: int | None = None, z0=None,
                          sampler: str | None = None, device: str = "auto", frac_bits: int = 10,
                          lut_bits: int | None = None, count_bits: int = 8,
                          cpu_threads: int | None = 1) -> dict:
    """Run ``T`` fixed-point iP-VAE iterations for every row of ``X`` (B, M) in one batched torch
    computation (``device``: ``auto`` = CUDA when available, else ``cpu``; or ``cpu``/``cuda``).

    Same integer algorithm, format and random numbers as ``run_ipvae_lava(arrays, X, T,
    fixed=True, seed=seed, batch=batch, z0=z0, sampler=sampler, ...)`` (module doc): with the
    same ``seed`` and ``batch`` its ``u_q`` and ``z`` are equal and ``zbar`` equal to float64
    rounding. ``batch`` is the Lava batch whose PRNG seeding is reproduced (``None``: one batch
    of all B images, i.e. ``run_ipvae_lava(..., batch=B)``); it does not split the computation.
    ``sampler``: ``'full'`` or ``'core'`` count table (:func:`fixed_format`; default
    ``DEFAULT_SAMPLER``), ``lut_bits`` overrides its resolution. ``cpu_threads``: torch's
    intra-op threads on the CPU during the run (restored afterwards; ``None``: leave torch's
    setting). The default is 1 because a step is ~35 small elementwise operations: on the shared,
    loaded 2-core development machine two threads made each one ~100x slower than one thread
    (8 ms instead of 55 us for an int64 add of 297 x 256, measured).

    Returns the dict of :func:`neurodeploy.library.blocks.ipvae.reference.ipvae_result` (``u`` converted
    to float) plus ``seconds`` (the T iterations and the copy back, not the table set-up),
    ``backend`` (``'torch-fixed'``), ``T``, ``mode``, ``device``, ``batch``, ``u_q`` (integers),
    ``weight_exponent``, ``format``, ``state0`` (initial xorshift32 states, (B, K)), ``state``
    (final ones) and ``z0`` (the initial counts, clipped to the payload).
    """
    import torch

    dev = pick_device(device)
    st = prepare_run(arrays, X, T, seed, "exact", z0)
    p, X, B, K, D, W, rng, z0, T = st.p, st.X, st.B, st.K, st.D, st.W, st.rng, st.z0, st.T
    batch = B if batch is None else int(batch)
    sampler = DEFAULT_SAMPLER if sampler is None else sampler
    fmt = fixed_format(p, frac_bits, lut_bits, count_bits, sampler)
    q, s = quantize_weights(-W)
    w_block, lat_shift = 2 * q.astype(np.int64), s - 1 + fmt.frac_bits
    bound = K * int(np.abs(w_block).max(initial=0)) * fmt.count_max
    if bound >= _FLOAT64_EXACT:  # the float64 matmul would no longer be exact
        raise ValueError(f"lateral sums up to {bound} exceed 2^53: the float64 matmul is not exact")
    u_init = np.clip(fmt.q(p.u0), fmt.u_min_q, fmt.u_max_q)
    D_in = fmt.q(D)
    z0 = np.clip(np.round(z0), 0, fmt.count_max)
    state0 = np.empty((B, K), np.int64)
    for sl in chunks(B, batch):  # run_ipvae_lava's rng calls, in its order
        nb = sl.stop - sl.start
        state0[sl] = seed_states(nb * K, int(rng.integers(2 ** 31))).reshape(nb, K)
        rng.integers(2 ** 31)  # the Lava process seed (unused by the fixed-point model)

    tabs = _FixedTables(fmt, dev)
    i64, f64 = torch.int64, torch.float64
    Wt = torch.as_tensor(w_block.T, dtype=f64, device=dev).contiguous()  # a_in = z @ (2q)^T
    drive_q = torch.as_tensor(D_in, dtype=i64, device=dev)
    u = torch.as_tensor(np.tile(u_init, (B, 1)), dtype=i64, device=dev)
    z = torch.as_tensor(z0, dtype=i64, device=dev)
    state = torch.as_tensor(state0, dtype=i64, device=dev)
    zbar = torch.zeros((B, K), dtype=f64, device=dev)
    u_min_q, u_max_q, du_max_q = fmt.u_min_q, fmt.u_max_q, fmt.du_max_q
    threads = torch.get_num_threads()
    if dev.type == "cpu" and cpu_threads is not None:
        torch.set_num_threads(int(cpu_threads))
    try:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t_start = time.perf_counter()
        zf = z.to(f64)
        for t in range(1, T + 1):
            a_in = (zf @ Wt).to(i64)  # exact: integers below 2^53 (module doc)
            du = tabs.cap(torch.clamp(drive_q + _shift_round(a_in, lat_shift), min=u_min_q), du_max_q)
            u = tabs.cap(torch.clamp(u + du, min=u_min_q), u_max_q)
            z, state = tabs.counts(u, state)
            zf = z.to(f64)
            zbar = zbar + (zf - zbar) / min(t, AVG_TAU)
        U_q, Z, ZB, S = (a.cpu().numpy() for a in (u, z, zbar, state))
        seconds = time.perf_counter() - t_start
    finally:
        torch.set_num_threads(threads)
    return ipvae_result(p, X, fmt.to_float(U_q), Z.astype(np.float64), ZB, seconds=seconds,
                        backend="torch-fixed", T=T, mode="exact", device=str(dev), batch=batch,
                        u_q=U_q.astype(np.int64), weight_exponent=int(s), format=fmt, state0=state0,
                        state=S.astype(np.int64), z0=z0)
