"""``TorchPart``: a Lava Process whose model steps a torch sub-network (the fallback part).

Ports are made per run: ``in_<k>`` (graded, from an identity ``Dense`` fed by the k-th Lava
emitter the torch part listens to) and ``out_<k>`` (the spikes of the k-th torch emitter that Lava
nodes listen to); the Var ``record`` brings the torch part's recordings back to the parent.
Absolute imports only (Lava's model discovery executes this file under a bare name).
"""

from __future__ import annotations

from neurodeploy.core.compat.lava import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402


class TorchPart(AbstractProcess):
    def __init__(self, *, inputs: dict, outputs: dict, record_size: int, sim, steps: int, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, record_size=record_size, sim=sim, steps=steps, **kwargs)
        for k, size in enumerate(inputs.values()):
            setattr(self, f"in_{k}", InPort(shape=(size,)))
        for k, size in enumerate(outputs.values()):
            setattr(self, f"out_{k}", OutPort(shape=(size,)))
        self.record = Var(shape=(max(record_size, 1),), init=0.0)
