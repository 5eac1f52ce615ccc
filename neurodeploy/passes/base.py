"""The pass contract: every conversion step reads and fills one :class:`Compilation`.

A pass has a ``name``, says what it ``requires`` (fields of the compilation an earlier pass must
have set) and what it ``provides``, and returns a :class:`PassReport` from ``run``.
:func:`run_passes` checks the requirements before each pass, times it, keeps its report, and
names the pass in any error it raises (``error.pass_name``), after torch.fx's ``PassBase`` and
``PassManager``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Protocol, Sequence

from ..core.errors import CompileError, NeurodeployError
from ..core.targets import Target
from ..ir.nodes import Network

#: a backend's answer to "which nodes of this network can you not run, and why"
Unsupported = Callable[[Network], dict]


@dataclass
class PassReport:
    """What a pass did: a one-line ``summary``, JSON-able ``data`` and ``warnings``."""

    name: str
    summary: str = ""
    data: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Compilation:
    """A network on its way to a target; each pass fills some of the fields.

    ``unsupported`` / ``fallback_unsupported``: the target backend's and its fallback's
    :data:`Unsupported` callables (the placement pass sees backends only through them; ``None``
    for a backend that runs what it can itself, without placement).
    """

    net: Network
    target: Target
    allow_fallback: bool = True
    unsupported: Unsupported | None = None
    fallback_unsupported: Unsupported | None = None
    placement: object | None = None  # passes.place.Placement
    part: Network | None = None  # the part the target runs (the whole network without a fallback)
    lowered: object | None = None  # lowering.loihi.LoweredNetwork
    quantized: object | None = None  # passes.quantize.Quantized (fixed-point targets)
    coremap: object | None = None  # passes.partition.CoreMap (targets with per-core limits)
    reports: dict[str, PassReport] = field(default_factory=dict)

    @property
    def timings(self) -> dict[str, float]:
        return {f"{name}_s": r.seconds for name, r in self.reports.items()}


class Pass(Protocol):
    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    provides: ClassVar[tuple[str, ...]]

    def run(self, c: Compilation) -> PassReport: ...


def run_passes(c: Compilation, passes: Sequence[Pass]) -> Compilation:
    """Run ``passes`` in order on ``c`` (see the module docstring)."""
    for p in passes:
        missing = [r for r in p.requires if getattr(c, r) is None]
        if missing:
            raise CompileError(f"pass '{p.name}' needs {', '.join(missing)}, which no earlier pass provided")
        t0 = time.perf_counter()
        try:
            report = p.run(c)
        except NeurodeployError as e:
            e.pass_name = p.name
            raise
        report.seconds = time.perf_counter() - t0
        c.reports[p.name] = report
    return c
