"""Lava Processes of the predictive-coding (two-population) form of iP-VAE inference:
:class:`IPVAEErrors` (M graded error units per image) and :class:`IPVAEPCLatents` (K latents
per image). The numpy reference and the reason for this form (local learning of the decoder and
encoder without weight transport) are in :mod:`neurodeploy.library.blocks.ipvae.pc`.

Network (:func:`neurodeploy.backends.lava.blocks.ipvae.pc.run_ipvae_pc_lava`)::

    IPVAEPCLatents.s_out -> Dense(Phi)   -> IPVAEErrors.a_in       (decoder, latents -> errors)
    IPVAEErrors.s_out    -> Dense(Phi^T) -> IPVAEPCLatents.a_in    (encoder, errors -> latents)

Each Dense delivers a step's input one step later, so one iteration takes two time steps: the
latents send counts on odd steps, the errors send on even steps, and nothing else is sent
(``0`` = no graded spike). Step ``2t + 1`` (t >= 1) is iteration ``t``; ``T`` iterations take
``2 T + 1`` steps (the lateral form, :class:`~neurodeploy.backends.lava.blocks.ipvae.process.IPVAELatents`,
takes ``T + 1``).

Absolute imports only: Lava's ProcessModel discovery executes every module of this directory
under its bare name.
"""

from __future__ import annotations

import typing as ty

import numpy as np

from neurodeploy.core.compat.lava import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess, LogConfig  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402

__all__ = ["IPVAEErrors", "IPVAEPCLatents"]


class IPVAEErrors(AbstractProcess):
    """Graded error units ``eps = gain (x - a_in)`` with ``a_in = Phi z`` (through the decoder
    Dense), ``x`` the image (a per-unit bias) and ``gain = 1 / sigma^2``. Stateless: on even
    time steps the unit computes ``eps`` from its input (the counts the latents sent on the step
    before) and sends it; on odd steps it sends 0. ``eps`` holds the last value sent.

    Parameters
    ----------
    shape : (n,)    n = images x M
    x, gain : arrays of length n
        Floats (``floating_pt``); for ``fixed_pt`` integers: ``x`` in Q units and ``gain`` the
        mantissa ``round(2^gain_bits / sigma^2)`` (format in ``pc_reference.py``).
    dec_shift, gain_bits, frac_bits, eps_frac_bits, eps_bits : int (``fixed_pt``)
        Shift of the decoder Dense's integers to Q units, gain resolution, Q-format of x and of
        the prediction, fractional and payload bits of the graded error spike.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], x, gain, dec_shift: int = 0, gain_bits: int = 12,
                 frac_bits: int = 10, eps_frac_bits: int = 8, eps_bits: int = 16,
                 name: ty.Optional[str] = None, log_config: ty.Optional[LogConfig] = None) -> None:
        super().__init__(shape=shape, dec_shift=int(dec_shift), gain_bits=int(gain_bits),
                         frac_bits=int(frac_bits), eps_frac_bits=int(eps_frac_bits), eps_bits=int(eps_bits),
                         name=name, log_config=log_config)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.x = Var(shape=shape, init=np.asarray(x))
        self.gain = Var(shape=shape, init=np.asarray(gain))
        self.eps = Var(shape=shape, init=np.zeros(shape))


class IPVAEPCLatents(AbstractProcess):
    """iP-VAE latents of the PC form: log-rate ``u``, graded output = Poisson count, input
    ``a_in = Psi eps`` (through the encoder Dense; ``Psi = Phi^T``).

    Step 1 sends the initial counts ``z``. Odd step ``m = 2t + 1`` (t >= 1), iteration t::

        du  = cap(max(eta (a_in - leak), u_min), du_max)          leak = exp(b)
        u   = cap(max(u + du, u_min), u_max)
        z   = Pois(exp(u))                                         sent on s_out
        zbar += (z - zbar) / min(t, avg_tau)

    Even steps send 0 and change nothing (their input is the errors' 0 of the odd step).

    Parameters
    ----------
    shape : (n,)    n = images x K
    u, z, leak : arrays of length n (initial potentials, initial counts, ``exp(b)``)
    eta, u_min, u_max, du_max, soft, mode, seed, avg_tau :
        as :class:`~neurodeploy.backends.lava.blocks.ipvae.process.IPVAELatents` (``mode='rate'``
        sends ``exp(u)``; ``seed`` seeds the float model's numpy generator).
    state, frac_bits, lut_bits, count_bits, lat_shift : (``fixed_pt``)
        As ``IPVAELatents``. In fixed point ``u`` is in Q units, ``eta`` is folded into the
        encoder weights and ``leak`` holds ``round(eta exp(b) 2^frac_bits)``: ``du = lat - leak``
        with ``lat = a_in 2^lat_shift``.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], u, z, leak, eta: float = 1.0, u_min: float = -8.0,
                 u_max: float = 10.0, du_max: float = 10.0, soft: bool = True, mode: str = "exact",
                 seed: int = 0, avg_tau: int = 16, state=None, frac_bits: int = 10, lut_bits: int = 8,
                 count_bits: int = 8, lat_shift: int = 0, name: ty.Optional[str] = None,
                 log_config: ty.Optional[LogConfig] = None) -> None:
        if mode not in ("exact", "rate"):
            raise ValueError(f"IPVAEPCLatents mode must be 'exact' or 'rate', got {mode!r}")
        super().__init__(shape=shape, eta=float(eta), u_min=float(u_min), u_max=float(u_max),
                         du_max=float(du_max), soft=bool(soft), mode=mode, seed=int(seed),
                         avg_tau=int(avg_tau), frac_bits=int(frac_bits), lut_bits=int(lut_bits),
                         count_bits=int(count_bits), lat_shift=int(lat_shift), name=name,
                         log_config=log_config)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=np.asarray(u))
        self.z = Var(shape=shape, init=np.asarray(z))
        self.zbar = Var(shape=shape, init=np.zeros(shape))
        self.leak = Var(shape=shape, init=np.asarray(leak))
        self.state = Var(shape=shape, init=np.ones(shape, np.int64) if state is None else np.asarray(state))
