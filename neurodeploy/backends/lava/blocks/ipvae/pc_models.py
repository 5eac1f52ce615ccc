"""ProcessModels of the PC-form iP-VAE Processes (:mod:`neurodeploy.backends.lava.blocks.ipvae.pc_process`)
for ``Loihi2SimCfg``: ``floating_pt`` (arithmetic of :func:`neurodeploy.library.blocks.ipvae.pc.error_units`
and :func:`~neurodeploy.library.blocks.ipvae.pc.latent_update`) and ``fixed_pt`` (integer errors and
latents, operation for operation :func:`~neurodeploy.library.blocks.ipvae.pc_fixed.pc_fixed_run`
with Lava's bit-accurate ``Dense``).

Absolute imports only: Lava's model discovery executes this file under the bare name ``pc_models``.
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

from neurodeploy.backends.lava.blocks.ipvae.models import fixed_latent_setup  # noqa: E402
from neurodeploy.backends.lava.blocks.ipvae.pc_process import IPVAEErrors, IPVAEPCLatents  # noqa: E402
from neurodeploy.library.blocks.ipvae.fixed import fixed_step  # noqa: E402
from neurodeploy.library.blocks.ipvae.pc import latent_update  # noqa: E402
from neurodeploy.library.blocks.ipvae.pc_fixed import errors_fixed  # noqa: E402

__all__ = ["PyIPVAEErrorsFixed", "PyIPVAEErrorsFloat", "PyIPVAEPCLatentsFixed", "PyIPVAEPCLatentsFloat"]


class _ErrorSchedule:
    """Error units compute ``eps = self._errors(a_in)`` and send it on even steps, 0 on odd ones."""

    def run_spk(self) -> None:
        a = self.a_in.recv()
        if self.time_step % 2 == 0:
            self.eps[:] = self._errors(a)
            self.s_out.send(self.eps)
        else:
            self.s_out.send(np.zeros_like(self.eps))


class _LatentSchedule:
    """Latents send their initial counts at step 1; at every later odd step m, iteration
    t = (m - 1) / 2, they update from the errors' input (``self._iterate``), average the counts and
    send them; even steps send 0."""

    def run_spk(self) -> None:
        a = self.a_in.recv()
        m = self.time_step
        if m > 1 and m % 2 == 1:
            self._iterate(a)
            self.zbar[:] = self.zbar + (self.z - self.zbar) / min((m - 1) // 2, self._avg_tau)
        self.s_out.send(self.z if m % 2 == 1 else np.zeros_like(self.z))


@implements(proc=IPVAEErrors, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyIPVAEErrorsFloat(_ErrorSchedule, PyLoihiProcessModel):
    """Float64 error units: ``eps = gain (x - a_in)`` sent on even steps, 0 on odd steps."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    x: np.ndarray = LavaPyType(np.ndarray, float)
    gain: np.ndarray = LavaPyType(np.ndarray, float)
    eps: np.ndarray = LavaPyType(np.ndarray, float)

    def _errors(self, a):
        return (self.x - a) * self.gain


@implements(proc=IPVAEPCLatents, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyIPVAEPCLatentsFloat(_LatentSchedule, PyLoihiProcessModel):
    """Float64 PC-form latents; counts from ``numpy.random.Generator.poisson`` (unclipped)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    z: np.ndarray = LavaPyType(np.ndarray, float)
    zbar: np.ndarray = LavaPyType(np.ndarray, float)
    leak: np.ndarray = LavaPyType(np.ndarray, float)
    state: np.ndarray = LavaPyType(np.ndarray, np.int64)  # unused (fixed_pt generator state)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        pp = self.proc_params
        self._kw = {k: pp[k] for k in ("u_min", "u_max", "du_max", "soft")}
        self._eta = pp["eta"]
        self._rate = pp["mode"] == "rate"
        self._avg_tau = pp["avg_tau"]
        self._rng = np.random.default_rng(pp["seed"])

    def _iterate(self, a) -> None:
        u, _ = latent_update(self.u, a, self.leak, self._eta, **self._kw)
        self.u[:] = u
        rate = np.exp(self.u)
        self.z[:] = rate if self._rate else self._rng.poisson(rate)



@implements(proc=IPVAEErrors, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIPVAEErrorsFixed(_ErrorSchedule, PyLoihiProcessModel):
    """Integer error units (``pc_reference.errors_fixed``), signed graded output of eps_bits."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    x: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    gain: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    eps: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        pp = self.proc_params
        self._kw = {k: pp[k] for k in ("dec_shift", "gain_bits", "frac_bits", "eps_frac_bits", "eps_bits")}

    def _errors(self, a):
        return errors_fixed(self.x, a, self.gain, **self._kw)


@implements(proc=IPVAEPCLatents, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIPVAEPCLatentsFixed(_LatentSchedule, PyLoihiProcessModel):
    """Fixed-point PC-form latents: ``reference.fixed_step`` with drive ``-leak``."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=8)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    z: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    zbar: np.ndarray = LavaPyType(np.ndarray, float)
    leak: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    state: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._fmt, self._lat_shift, self._avg_tau = fixed_latent_setup(self.proc_params, "IPVAEPCLatents")

    def _iterate(self, a) -> None:
        u, z, state = fixed_step(self.u, -self.leak.astype(np.int64), a, self.state, self._lat_shift, self._fmt)
        self.u[:] = u
        self.z[:] = z
        self.state[:] = state
