"""ProcessModels of :class:`~neurodeploy.backends.lava.procs3f.process_3f.NDLIF3F` for CPU
simulation (``Loihi2SimCfg``): ``floating_pt`` and ``fixed_pt``.

The models are NDLIF's (:class:`~neurodeploy.backends.lava.procs.models.PyNDLIFModelFloat`,
``PyNDLIFModelFixed``) plus the modulator trace and the learning-neuron ports. Absolute imports only: Lava's model
discovery executes this file under the bare name ``models_3f``.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.core.compat.lava import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

from neurodeploy.backends.lava.procs.models import PyNDLIFModelFixed, PyNDLIFModelFloat, _scalar  # noqa: E402
from neurodeploy.backends.lava.procs3f.process_3f import NDLIF3F  # noqa: E402

__all__ = ["PyNDLIF3FModelFixed", "PyNDLIF3FModelFloat"]

#: fixed_pt: fractional bits of the modulator trace state, and the largest y2 (7-bit trace)
MOD_FRAC_BITS, Y_MAX = 12, 127


@implements(proc=NDLIF3F, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyNDLIF3FModelFloat(PyNDLIFModelFloat):
    """NDLIF3F in floating point: the modulator trace, then exactly NDLIF's float step."""

    # the parent model implements NDLIF; reset what Lava's decorators would otherwise inherit
    implements_process = None
    required_resources = []
    tags = []

    a_third_factor_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out_bap: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    s_out_y1: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    s_out_y2: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    s_out_y3: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y1: np.ndarray = LavaPyType(np.ndarray, float)
    y2: np.ndarray = LavaPyType(np.ndarray, float)
    y3: np.ndarray = LavaPyType(np.ndarray, float)
    mod_decay: float = LavaPyType(float, float)
    mod_impulse: float = LavaPyType(float, float)
    mod_state: np.ndarray = LavaPyType(np.ndarray, float)  # unused in floating point (y2 is the trace)

    def run_spk(self) -> None:
        third = self.a_third_factor_in.recv()
        self.y2[:] = self.y2 * _scalar(self.mod_decay) + _scalar(self.mod_impulse) * third
        super().run_spk()  # receives a_in, steps NDLIF, sends s_out
        self.s_out_bap.send(self.s_out_buff)
        self.s_out_y1.send(self.y1)
        self.s_out_y2.send(self.y2)
        self.s_out_y3.send(self.y3)


@implements(proc=NDLIF3F, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNDLIF3FModelFixed(PyNDLIFModelFixed):
    """NDLIF3F in fixed point: the integer modulator trace (see the Process), then exactly NDLIF's
    fixed step (bit-accurate with Lava's ``PyLifModelBitAcc`` where NDLIF's options are off)."""

    implements_process = None
    required_resources = []
    tags = []

    a_third_factor_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=7)
    s_out_bap: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    s_out_y1: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    s_out_y2: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    s_out_y3: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y1: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=7)
    y2: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=7)
    y3: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=7)
    mod_decay: int = LavaPyType(int, np.int32, precision=13)
    mod_impulse: int = LavaPyType(int, np.int32, precision=7)
    mod_state: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self) -> None:
        third = np.asarray(self.a_third_factor_in.recv(), dtype=np.int64)
        state = (np.int64(1) * self.mod_state * int(_scalar(self.mod_decay))) >> MOD_FRAC_BITS
        state = state + ((third * int(_scalar(self.mod_impulse))) << MOD_FRAC_BITS)
        state = np.minimum(state, (Y_MAX + 1) << MOD_FRAC_BITS)  # stays within 24 bits
        self.mod_state[:] = state
        self.y2[:] = np.minimum((state + (1 << (MOD_FRAC_BITS - 1))) >> MOD_FRAC_BITS, Y_MAX)
        super().run_spk()  # receives a_in, steps NDLIF, sends s_out
        self.s_out_bap.send(self.s_out_buff)
        self.s_out_y1.send(self.y1)
        self.s_out_y2.send(self.y2)
        self.s_out_y3.send(self.y3)
