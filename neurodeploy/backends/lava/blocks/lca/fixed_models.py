"""The ``fixed_pt`` ProcessModel of
:class:`~neurodeploy.backends.lava.blocks.lca.fixed_process.LCANeuronsFixed` for CPU simulation
(``Loihi2SimCfg``): integer Q-format potentials and a ``payload_bits`` graded activity,
operation for operation :func:`neurodeploy.library.blocks.lca.fixed.lca_fixed_step`.

Absolute imports only: Lava's model discovery executes this file under a bare name.
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

from neurodeploy.backends.lava.blocks.lca.fixed_process import LCANeuronsFixed  # noqa: E402
from neurodeploy.library.blocks.lca.fixed import LCAFixedFormat, lca_fixed_step  # noqa: E402

__all__ = ["PyLCANeuronsFixed"]


@implements(proc=LCANeuronsFixed, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyLCANeuronsFixed(PyLoihiProcessModel):
    """Fixed-point LCA units (format in ``fixed_reference.py``): ``v`` 24-bit, ``a`` the
    ``payload_bits`` graded spike, counters of clipped payloads and saturated potentials."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=16)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    a: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    drive: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    clipped: np.ndarray = LavaPyType(np.ndarray, np.int64)
    saturated: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        pp = self.proc_params
        self._fmt = LCAFixedFormat(frac_bits=pp["frac_bits"], dt_bits=pp["dt_bits"],
                                   payload_bits=pp["payload_bits"], v_bits=pp["v_bits"])
        self._kw = {"lam_q": pp["lam_q"], "dt_mult": pp["dt_mult"], "dt_shift": pp["dt_shift"],
                    "lat_shift": pp["lat_shift"], "fmt": self._fmt}

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        if self.time_step > 1:
            v, a, clipped, saturated = lca_fixed_step(self.v, self.drive, a_in, **self._kw)
            self.v[:] = v
            self.a[:] = a
            self.clipped[:] = self.clipped + clipped
            self.saturated[:] = self.saturated + saturated
        self.s_out.send(self.a)
