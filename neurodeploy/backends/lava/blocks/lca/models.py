"""The ``floating_pt`` ProcessModel of :class:`~neurodeploy.backends.lava.blocks.lca.process.LCANeurons`
for CPU simulation (``Loihi2SimCfg``): float64, operation for operation
:func:`neurodeploy.library.blocks.lca.reference.lca_step`.

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

from neurodeploy.backends.lava.blocks.lca.process import LCANeurons  # noqa: E402

__all__ = ["PyLCANeuronsFloat"]


@implements(proc=LCANeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLCANeuronsFloat(PyLoihiProcessModel):
    """Float64 LCA units: ``v += dt_tau (drive - v - lat)``, ``a = max(v - lam, 0)``."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    a: np.ndarray = LavaPyType(np.ndarray, float)
    drive: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._lam = self.proc_params["lam"]
        self._dt_tau = self.proc_params["dt_tau"]

    def run_spk(self) -> None:
        lat = self.a_in.recv()
        if self.time_step > 1:
            self.v[:] = self.v + self._dt_tau * (self.drive - self.v - lat)
            self.a[:] = np.maximum(self.v - self._lam, 0.0)
        self.s_out.send(self.a)
