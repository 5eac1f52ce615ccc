"""The ProcessModel of :class:`TorchPart`, made per run (its port attributes depend on the
network) by :func:`make_model`; the run binds it with ``exception_proc_model_map``.
Absolute imports only (Lava's model discovery executes this file under a bare name).
"""

from __future__ import annotations

import sys

import numpy as np

from neurodeploy.core.compat.lava import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402


def _run_spk(self):
    """One Lava step ``m``: take the Lava spikes of step m - 1 (the identity Dense delivers one
    step late, exactly the delay every Lava connection has), step the torch part, send its
    spikes of step m (a Lava Dense downstream delivers them in step m + 1, as from any neuron)."""
    import torch

    sim = self.proc_params["sim"]
    names_in = list(self.proc_params["inputs"])
    names_out = list(self.proc_params["outputs"])
    m = int(self.time_step)
    if m == 1:
        torch.set_num_threads(1)  # a forked child: no OpenMP pool inherited from the parent
    with torch.inference_mode():
        for k, name in enumerate(names_in):
            a = getattr(self, f"in_{k}").recv()
            sim.push(name, m - 1, torch.as_tensor(np.asarray(a) != 0, dtype=sim.hist[name].dtype))
        sim.step(m)
        for k, name in enumerate(names_out):
            getattr(self, f"out_{k}").send(sim.hist[name][m % sim.L][0].cpu().numpy().astype(float))
        if m == self.proc_params["steps"]:
            flat = sim.export()
            self.record[: len(flat)] = flat


def make_model(proc_cls, n_in: int, n_out: int):
    # Lava's compiler looks for models in the Process's own module first (and fails when it finds
    # none, before it consults exception_proc_model_map): register the per-run class there
    home = sys.modules[proc_cls.__module__]
    attrs = {"__module__": home.__name__, "run_spk": _run_spk,
             "record": LavaPyType(np.ndarray, float),
             "__annotations__": {}}
    for k in range(n_in):
        attrs[f"in_{k}"] = LavaPyType(PyInPort.VEC_DENSE, float)
        attrs["__annotations__"][f"in_{k}"] = PyInPort
    for k in range(n_out):
        attrs[f"out_{k}"] = LavaPyType(PyOutPort.VEC_DENSE, float)
        attrs["__annotations__"][f"out_{k}"] = PyOutPort
    attrs["__annotations__"]["record"] = np.ndarray
    cls = type(f"PyTorchPartModel_{n_in}_{n_out}", (PyLoihiProcessModel,), attrs)
    cls = implements(proc=proc_cls, protocol=LoihiProtocol)(requires(CPU)(tag("floating_pt", "fixed_pt")(cls)))
    setattr(home, cls.__name__, cls)
    return cls
