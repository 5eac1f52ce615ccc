"""The ``IPVAELatents`` Lava Process: the K latent neurons of iP-VAE (for a batch of images,
``n`` = images x K), one inference iteration per time step.

Kept in its own package (with ``models.py`` and the numpy-only ``reference.py``) because Lava's
ProcessModel discovery imports and executes every module in a Process's directory. Absolute
imports only: discovery executes ``models.py`` under the bare name ``models``.
"""

from __future__ import annotations

import typing as ty

import numpy as np

from neurodeploy.core.compat.lava import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess, LogConfig  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402

__all__ = ["IPVAELatents"]


class IPVAELatents(AbstractProcess):
    """iP-VAE latent neurons: log-rate potential ``u``, graded output = Poisson spike count.

    Time step 1 only sends the initial counts ``z`` (the Dense that closes the loop delivers a
    step's input one step later); every later step ``m`` is iteration ``t = m - 1``::

        lat = a_in                                    (= -W z_{t-1}, through the Dense)
        du  = cap(max(drive + lat, u_min), du_max)
        u   = cap(max(u + du, u_min), u_max)          cap(y, c) = c - softplus(c - y) or min(y, c)
        z   = Pois(exp(u))                            sent on s_out (graded spike)
        zbar += (z - zbar) / min(t, avg_tau)          (readout, as torch ``infer``)

    So ``T`` iterations take ``T + 1`` time steps.

    Parameters
    ----------
    shape : (n,)
    u, z, drive : arrays of length n
        Initial potentials, initial counts, constant drive ``eta (Phi^T Sigma^-1 x - exp(b))``.
        Floats for the ``floating_pt`` model; for ``fixed_pt``, integers in Q units
        (``2^-frac_bits``) for ``u`` and ``drive`` and counts for ``z``.
    u_min, u_max, du_max : float
        Bounds (``floating_pt``); ``fixed_pt`` uses the same values via its ``FixedFormat``.
    soft : bool
        Soft (softplus) upper clamp, else hard.
    mode : "exact" or "rate"
        ``rate`` sends ``z = exp(u)`` instead of a count (``floating_pt`` only; a check).
    seed : int
        Seed of the float model's numpy generator.
    state : array of length n (``fixed_pt``)
        xorshift32 states (non-zero uint32 values held as int64).
    frac_bits, lut_bits, count_bits, lat_shift : int (``fixed_pt``)
        Q-format of u, resolution of the rate / CDF table, payload bits of the counts, and the
        shift that turns the Dense's integer output into Q units (see ``reference.py``).
    avg_tau : int
        Time constant (iterations) of the averaged-count readout ``zbar``.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], u, z, drive, u_min: float = -8.0,
                 u_max: float = 10.0, du_max: float = 10.0, soft: bool = True, mode: str = "exact",
                 seed: int = 0, state=None, frac_bits: int = 10, lut_bits: int = 8,
                 count_bits: int = 8, lat_shift: int = 0, avg_tau: int = 16,
                 name: ty.Optional[str] = None, log_config: ty.Optional[LogConfig] = None) -> None:
        if mode not in ("exact", "rate"):
            raise ValueError(f"IPVAELatents mode must be 'exact' or 'rate', got {mode!r}")
        super().__init__(shape=shape, u_min=float(u_min), u_max=float(u_max), du_max=float(du_max),
                         soft=bool(soft), mode=mode, seed=int(seed), frac_bits=int(frac_bits),
                         lut_bits=int(lut_bits), count_bits=int(count_bits), lat_shift=int(lat_shift),
                         avg_tau=int(avg_tau), name=name, log_config=log_config)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=np.asarray(u))
        self.z = Var(shape=shape, init=np.asarray(z))
        self.zbar = Var(shape=shape, init=np.zeros(shape))
        self.drive = Var(shape=shape, init=np.asarray(drive))
        self.state = Var(shape=shape, init=np.ones(shape, np.int64) if state is None else np.asarray(state))
