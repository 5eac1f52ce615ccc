"""Numpy reference of the fixed-point PC-form iP-VAE network (no Lava import): the integer
constants, the error-unit step and the full run that the ``fixed_pt`` ProcessModels in
``pc_models.py`` execute bit for bit with Lava's bit-accurate ``Dense``.

Format (on top of :class:`~neurodeploy.library.blocks.ipvae.fixed.FixedFormat`, whose
``frac_bits`` F, count table, xorshift32 generator and soft-clamp table the latents reuse):

* decoder (latents -> errors): ``Phi`` as 8-bit ``q_d`` with shared exponent ``s_d``; the
  Dense holds ``2 q_d`` (Lava stores a mixed-sign 8-bit weight as an even mantissa) and delivers
  ``a = sum_k 2 q_d z_k``; the prediction in Q units (F fractional bits) is
  ``pred = a 2^(s_d - 1 + F)`` (a shift, rounded half up when it is a right shift);
* error unit: image ``x_q`` (Q units, a bias), gain ``g = round(2^G / sigma^2)`` (G = ``gain_bits``),
  output ``eps = clip(round((x_q - pred) g 2^-(G + F - Fe)), +-(2^(P-1) - 1))``: a signed graded
  spike with ``Fe`` fractional bits (``eps_frac_bits``) in ``P`` payload bits (``eps_bits``);
* encoder (errors -> latents): ``eta Psi`` (``Psi = Phi^T``; ``eta`` folded into the weights)
  as 8-bit ``q_e`` with exponent ``s_e``, Dense holds ``2 q_e``; the latents convert
  ``a = sum_m 2 q_e eps_m`` with ``lat = a 2^(s_e - 1 - Fe + F)``;
* latents: ``du = lat - leak`` with ``leak = round(eta exp(b) 2^F)``, then exactly
  :func:`~neurodeploy.library.blocks.ipvae.fixed.fixed_step` (caps, inverse-CDF counts
  clipped to ``count_bits``).
"""

# no ``from __future__ import annotations``: Lava's model discovery executes this file under
# the bare name ``pc_reference``.

import numpy as np

from neurodeploy.library.blocks.ipvae.fixed import FixedFormat, fixed_step, quantize_weights, shift_round
from neurodeploy.library.blocks.ipvae.reference import average_counts


def pc_fixed_constants(p, fmt: FixedFormat, gain_bits: int = 12, eps_frac_bits: int = 8,
                       eps_bits: int = 16, encoder=None) -> dict:
    """Integer weights, shifts, gains and leaks of the fixed-point PC network for params ``p``
    (:class:`~neurodeploy.library.blocks.ipvae.reference.IPVAEParams`); ``encoder`` (K, M) defaults to
    ``Phi^T``."""
    Psi = p.Phi.T if encoder is None else np.asarray(encoder, np.float64)
    qd, sd = quantize_weights(p.Phi)
    qe, se = quantize_weights(p.eta * Psi)
    F = fmt.frac_bits
    return {"dec_w": 2 * qd, "dec_exp": int(sd), "dec_shift": int(sd - 1 + F),
            "enc_w": 2 * qe, "enc_exp": int(se), "lat_shift": int(se - 1 - eps_frac_bits + F),
            "gain_q": np.round(2.0 ** gain_bits / p.sigma ** 2).astype(np.int64),
            "leak_q": np.round(p.eta * np.exp(p.b) * fmt.one).astype(np.int64),
            "gain_bits": int(gain_bits), "eps_frac_bits": int(eps_frac_bits), "eps_bits": int(eps_bits)}


def errors_fixed(x_q, a_in, gain_q, dec_shift: int, gain_bits: int, frac_bits: int,
                 eps_frac_bits: int, eps_bits: int) -> np.ndarray:
    """Integer error-unit output (see module doc) from the decoder Dense's integers ``a_in``."""
    diff = np.asarray(x_q, np.int64) - shift_round(a_in, dec_shift)
    eps = shift_round(diff * np.asarray(gain_q, np.int64), -(gain_bits + frac_bits - eps_frac_bits))
    lim = (1 << (eps_bits - 1)) - 1
    return np.clip(eps, -lim, lim)


def pc_fixed_run(u0_q, z0, x_q, gain_q, leak_q, dec_w, enc_w, c: dict, state, T: int, fmt: FixedFormat):
    """T fixed-point PC iterations on flat arrays (``dec_w``/``enc_w`` the integer matrices the
    bit-accurate Dense processes hold, block-diagonal over images). Returns
    ``(u_q, z, zbar, state, eps)`` with ``eps`` the errors of iteration ``T - 1``'s counts."""
    u, z = np.asarray(u0_q, np.int64), np.asarray(z0, np.int64)
    zbar = np.zeros(z.shape)
    eps = None
    for t in range(1, T + 1):
        eps = errors_fixed(x_q, dec_w @ z, gain_q, c["dec_shift"], c["gain_bits"], fmt.frac_bits,
                           c["eps_frac_bits"], c["eps_bits"])
        u, z, state = fixed_step(u, -np.asarray(leak_q, np.int64), enc_w @ eps, state, c["lat_shift"], fmt)
        zbar = average_counts(zbar, z, t)
    return u, z, zbar, state, eps
