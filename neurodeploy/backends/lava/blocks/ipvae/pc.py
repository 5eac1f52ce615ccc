"""Runner of the predictive-coding (two-population) form of iP-VAE inference on Lava:
:func:`run_ipvae_pc_lava`. Processes in ``pc_process.py``, ProcessModels in ``pc_models.py``,
numpy reference and the local-learning rationale in :mod:`neurodeploy.library.blocks.ipvae.pc`.

Does not import Lava at module level (Lava's model discovery executes this file under the bare
name ``pc``; absolute imports only).
"""

from __future__ import annotations

import time

import numpy as np

from neurodeploy.backends.lava.procs import lazy_attribute
from neurodeploy.backends.lava.teardown import stopped_after
from neurodeploy.core.compat.lava import ensure_lava_importable
from neurodeploy.library.blocks.coder import chunks
from neurodeploy.library.blocks.ipvae.fixed import fixed_format, seed_states
from neurodeploy.library.blocks.ipvae.pc_fixed import pc_fixed_constants
from neurodeploy.library.blocks.ipvae.reference import AVG_TAU, check_run_args, ipvae_params, ipvae_result

__all__ = ["run_ipvae_pc_lava"]

#: the Lava processes, imported (and Lava with them) when a run needs them
_LAZY = {"IPVAEErrors": "neurodeploy.backends.lava.blocks.ipvae.pc_process",
         "IPVAEPCLatents": "neurodeploy.backends.lava.blocks.ipvae.pc_process"}


def run_ipvae_pc_lava(arrays: dict, X, T: int, seed: int = 0, batch: int = 8, mode: str = "exact",
                      connection: str = "dense", z0=None, encoder=None, fixed: bool = False,
                      frac_bits: int = 10, lut_bits: int | None = None, count_bits: int = 8, gain_bits: int = 12,
                      eps_frac_bits: int = 8, eps_bits: int = 16, sampler: str | None = None) -> dict:
    """Run ``T`` iP-VAE iterations in the PC form for every row of ``X`` (B, M) on Lava
    (``Loihi2SimCfg``, ``floating_pt`` or, with ``fixed``, ``fixed_pt`` with Lava's bit-accurate
    ``Dense``/``Sparse``), ``batch`` images per Lava run, ``2 T + 1`` time steps.

    Network per run: ``IPVAEPCLatents`` (batch K) -> decoder ``Dense``/``Sparse`` (block-diagonal
    ``Phi``) -> ``IPVAEErrors`` (batch M, bias ``x``, gain ``1/sigma^2``) -> encoder (block-diagonal
    ``encoder``, default ``Phi^T``) -> latents; graded spikes (24 message bits) on both.

    Returns the dict of :func:`neurodeploy.library.blocks.ipvae.reference.ipvae_result` (same keys as
    :func:`~neurodeploy.backends.lava.blocks.ipvae.run_ipvae_lava`) plus ``eps`` (the errors' last
    output, from the counts of iteration ``T - 1``), ``seconds``, ``steps`` (= 2 T + 1),
    ``backend`` (``'lava-pc-float'`` / ``'lava-pc-fixed'``); with ``fixed`` also ``u_q``,
    ``eps`` as integers (``eps_frac_bits`` fractional bits), ``format``, ``constants`` (the
    integer weights and shifts of ``pc_reference.pc_fixed_constants``), ``state0`` and ``z0``
    (clipped initial counts); fixed-point format in ``pc_reference.py``. Random numbers are
    drawn exactly as ``run_ipvae_lava`` draws them (``default_rng(seed)``: initial counts
    ``Pois(exp(u0))``, then one model seed per chunk), so with the same ``seed`` and ``batch``
    both forms see the same random stream (float; fixed point also the same xorshift seeds).
    ``sampler`` (fixed point): the count table, ``'core'`` or ``'full'`` (default
    ``DEFAULT_SAMPLER``, as the lateral form); ``lut_bits`` overrides its resolution.
    """
    ensure_lava_importable()
    IPVAEErrors = lazy_attribute(globals(), _LAZY, "IPVAEErrors")
    IPVAEPCLatents = lazy_attribute(globals(), _LAZY, "IPVAEPCLatents")
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.sparse.process import Sparse

    T = check_run_args(mode, T)
    if fixed and mode != "exact":
        raise ValueError("fixed point draws counts: mode must be 'exact'")
    if connection not in ("dense", "sparse"):
        raise ValueError(f"connection must be 'dense' or 'sparse', got {connection!r}")
    p = ipvae_params(arrays)
    X = np.atleast_2d(np.asarray(X, np.float64))
    B, M, K = len(X), p.inputs, p.latents
    if X.shape[1] != M:
        raise ValueError(f"inputs have {X.shape[1]} features, the decoder expects {M}")
    Psi = p.Phi.T if encoder is None else np.asarray(encoder, np.float64)
    if Psi.shape != (K, M):
        raise ValueError(f"encoder must have shape {(K, M)}, got {Psi.shape}")
    rng = np.random.default_rng(seed)
    if z0 is None:
        rate0 = np.broadcast_to(np.exp(p.u0), (B, K))
        z0 = rate0.copy() if mode == "rate" else rng.poisson(rate0).astype(np.float64)
    z0 = np.asarray(z0, np.float64).reshape(B, K)
    fmt = c = None
    if fixed:
        fmt = fixed_format(p, frac_bits, lut_bits, count_bits, sampler)  # default: the core-sized table
        c = pc_fixed_constants(p, fmt, gain_bits, eps_frac_bits, eps_bits, encoder=Psi)
        w_dec, w_enc, gain, leak = c["dec_w"], c["enc_w"], c["gain_q"], c["leak_q"]
        u_init, X_in = np.clip(fmt.q(p.u0), fmt.u_min_q, fmt.u_max_q), fmt.q(X)
        z0 = np.clip(np.round(z0), 0, fmt.count_max)
        state0 = np.empty((B, K), np.int64)
        err_kw = {"dec_shift": c["dec_shift"], "gain_bits": gain_bits, "frac_bits": fmt.frac_bits,
                  "eps_frac_bits": eps_frac_bits, "eps_bits": eps_bits}
    else:
        w_dec, w_enc, gain, leak = p.Phi, Psi, 1.0 / p.sigma ** 2, np.exp(p.b)
        u_init, X_in, state0, err_kw = p.u0, X, None, {}
    U, Z, ZB, E = np.empty((B, K)), np.empty((B, K)), np.empty((B, K)), np.empty((B, M))

    def block(w, nb):
        if connection == "dense":
            return np.kron(np.eye(nb, dtype=w.dtype), w)

        from scipy.sparse import block_diag  # slow to import: not at `import neurodeploy`

        return block_diag([w] * nb, format="csr")

    Conn = Dense if connection == "dense" else Sparse
    t_start = time.perf_counter()
    for sl in chunks(B, batch):
        nb = sl.stop - sl.start
        lat_kw = {}
        if fixed:
            state0[sl] = seed_states(nb * K, int(rng.integers(2 ** 31))).reshape(nb, K)
            lat_kw = {"state": state0[sl].ravel(), "frac_bits": fmt.frac_bits, "lut_bits": fmt.lut_bits,
                      "count_bits": fmt.count_bits, "lat_shift": c["lat_shift"]}
        lat = IPVAEPCLatents(shape=(nb * K,), u=np.tile(u_init, nb), z=z0[sl].ravel(),
                             leak=np.tile(leak, nb), eta=p.eta, u_min=p.u_min, u_max=p.u_max,
                             du_max=p.du_max, soft=p.soft, mode=mode, seed=int(rng.integers(2 ** 31)),
                             avg_tau=AVG_TAU, **lat_kw)
        err = IPVAEErrors(shape=(nb * M,), x=X_in[sl].ravel(), gain=np.tile(gain, nb), **err_kw)
        dec = Conn(weights=block(w_dec, nb), num_message_bits=fmt.count_bits if fixed else 24)
        enc = Conn(weights=block(w_enc, nb), num_message_bits=eps_bits if fixed else 24)
        lat.s_out.connect(dec.s_in)
        dec.a_out.connect(err.a_in)
        err.s_out.connect(enc.s_in)
        enc.a_out.connect(lat.a_in)
        with stopped_after(lat):  # Ctrl-C: abandons the run (Lava's stop() would hang)
            lat.run(condition=RunSteps(num_steps=2 * T + 1),
                    run_cfg=Loihi2SimCfg(select_tag="fixed_pt" if fixed else "floating_pt"))
            U[sl] = np.asarray(lat.u.get(), np.float64).reshape(nb, K)
            Z[sl] = np.asarray(lat.z.get(), np.float64).reshape(nb, K)
            ZB[sl] = np.asarray(lat.zbar.get(), np.float64).reshape(nb, K)
            E[sl] = np.asarray(err.eps.get(), np.float64).reshape(nb, M)
    extra = {"eps": E, "seconds": time.perf_counter() - t_start, "T": T, "steps": 2 * T + 1, "mode": mode,
             "backend": "lava-pc-fixed" if fixed else "lava-pc-float"}
    if fixed:
        extra.update(u_q=U.astype(np.int64), eps=E.astype(np.int64), format=fmt, constants=c,
                     state0=state0, z0=z0)
        U = fmt.to_float(U)
    return ipvae_result(p, X, U, Z, ZB, **extra)
