"""The ``LCANeurons`` Lava Process: the K units of Rozell's LCA (for a batch of images,
``n`` = images x K), one Euler step per time step.

Kept in its own package (with ``models.py``) because Lava's ProcessModel discovery imports and
executes every module in a Process's directory. Absolute imports only: discovery executes
``models.py`` under the bare name ``models``.
"""

from __future__ import annotations

import typing as ty

import numpy as np

from neurodeploy.core.compat.lava import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess, LogConfig  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402

__all__ = ["LCANeurons"]


class LCANeurons(AbstractProcess):
    """LCA units: membrane potential ``v``, graded output = activity ``a = max(v - lam, 0)``.

    Time step 1 only sends the initial activity ``a`` (the Dense/Sparse that closes the loop
    delivers a step's input one step later); every later step ``m`` is iteration ``t = m - 1``::

        lat = a_in                                    (= (Phi^T Phi - I) a_{t-1}, through the Dense)
        v   = v + dt_tau (drive - v - lat)
        a   = max(v - lam, 0)                         sent on s_out (graded spike)

    which is :func:`neurodeploy.library.blocks.lca.reference.lca_step`. So ``T`` iterations take ``T + 1`` steps.

    Parameters
    ----------
    shape : (n,)
    v : array of length n
        Initial potentials (LCA starts from 0); the initial activity is ``max(v - lam, 0)``.
    drive : array of length n
        Constant feedforward drive ``Phi^T x``.
    lam : float
        Soft threshold (non-negative).
    dt_tau : float
        Euler step ``dt / tau``.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], v, drive, lam: float, dt_tau: float,
                 name: ty.Optional[str] = None, log_config: ty.Optional[LogConfig] = None) -> None:
        super().__init__(shape=shape, lam=float(lam), dt_tau=float(dt_tau), name=name, log_config=log_config)
        v = np.asarray(v, np.float64)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=v)
        self.a = Var(shape=shape, init=np.maximum(v - float(lam), 0.0))
        self.drive = Var(shape=shape, init=np.asarray(drive, np.float64))
