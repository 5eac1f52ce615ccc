"""ProcessModels of :class:`~neurodeploy.backends.lava.blocks.ipvae.process.IPVAELatents` for CPU
simulation (``Loihi2SimCfg``): ``floating_pt`` (float64, numpy Poisson generator) and
``fixed_pt`` (integer Q-format potentials, table soft clamp, inverse-CDF Poisson counts from a
per-neuron xorshift32, 8-bit count payload), the latter operation for operation
:func:`neurodeploy.library.blocks.ipvae.fixed.fixed_step`.

Absolute imports only: Lava's model discovery executes this file under the bare name ``models``.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.core.compat.lava import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

from neurodeploy.backends.lava.blocks.ipvae.process import IPVAELatents  # noqa: E402
from neurodeploy.library.blocks.ipvae.fixed import (
    FixedFormat,
    count_table,
    fixed_step,
    float_update,
    softplus_table,
)

__all__ = ["PyIPVAELatentsFixed", "PyIPVAELatentsFloat"]


def _average(zbar, z, t: int, avg_tau: int):
    return zbar + (z - zbar) / min(t, avg_tau)


@implements(proc=IPVAELatents, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyIPVAELatentsFloat(PyLoihiProcessModel):
    """Float64 iP-VAE latents; counts from ``numpy.random.Generator.poisson`` (unclipped)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    z: np.ndarray = LavaPyType(np.ndarray, float)
    zbar: np.ndarray = LavaPyType(np.ndarray, float)
    drive: np.ndarray = LavaPyType(np.ndarray, float)
    state: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        pp = self.proc_params
        self._kw = {k: pp[k] for k in ("u_min", "u_max", "du_max", "soft")}
        self._rate = pp["mode"] == "rate"
        self._avg_tau = pp["avg_tau"]
        self._rng = np.random.default_rng(pp["seed"])

    def run_spk(self) -> None:
        lat = self.a_in.recv()
        if self.time_step > 1:
            t = self.time_step - 1
            self.u[:] = float_update(self.u, self.drive, lat, **self._kw)
            rate = np.exp(self.u)
            self.z[:] = rate if self._rate else self._rng.poisson(rate)
            self.zbar[:] = _average(self.zbar, self.z, t, self._avg_tau)
        self.s_out.send(self.z)


def fixed_latent_setup(pp: dict, process: str):
    """(format, lateral shift, averaging tau) of a fixed-point latent model from its process
    parameters, with the lookup tables built before the first step (shared by the lateral and
    the predictive-coding latents)."""
    if pp["mode"] != "exact":
        raise ValueError(f"the fixed_pt {process} model draws counts; mode must be 'exact'")
    fmt = FixedFormat(frac_bits=pp["frac_bits"], lut_bits=pp["lut_bits"], count_bits=pp["count_bits"],
                      u_min=pp["u_min"], u_max=pp["u_max"], du_max=pp["du_max"], soft=pp["soft"])
    softplus_table(fmt)
    count_table(fmt)
    return fmt, pp["lat_shift"], pp["avg_tau"]


@implements(proc=IPVAELatents, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIPVAELatentsFixed(PyLoihiProcessModel):
    """Fixed-point iP-VAE latents (format in ``reference.py``); counts clipped to count_bits,
    drawn from the packed count table of the format (``reference.count_table``; the core-sized
    sampler is the same code with ``lut_bits = 5``)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=8)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    z: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    zbar: np.ndarray = LavaPyType(np.ndarray, float)
    drive: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    state: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._fmt, self._lat_shift, self._avg_tau = fixed_latent_setup(self.proc_params, "IPVAELatents")

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        if self.time_step > 1:
            t = self.time_step - 1
            u, z, state = fixed_step(self.u, self.drive, a_in, self.state, self._lat_shift, self._fmt)
            self.u[:] = u
            self.z[:] = z
            self.state[:] = state
            self.zbar[:] = _average(self.zbar, self.z, t, self._avg_tau)
        self.s_out.send(self.z)
