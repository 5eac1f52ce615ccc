"""The intermediate representation: frozen, typed dataclasses in SI units.

The IR is data, not behaviour (the maths lives with the neuron models and rules). Every
physical value is a float in SI base units (second, volt, amp, ohm, hertz); sequences are
tuples; nothing here imports a backend. :func:`neurodeploy.spec.checks` checks shapes and
references; :mod:`neurodeploy.ir.serialize` gives a lossless JSON round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Union

from ..core.limits import (  # noqa: F401  (re-exported: the IR's bounds)
    MAX_ARRAY_ELEMENTS,
    MAX_DENSE_SYNAPSES,
    MAX_POPULATION_SIZE,
    MAX_STEPS,
    MAX_TOTAL_NEURONS,
)

IR_VERSION = 1
#: the values of ``simulation.schedule``; the first is the default (see :class:`Simulation`)
SCHEDULES = ("exact", "discrete", "loihi")


@dataclass(frozen=True)
class Simulation:
    """``schedule``: what one time step means (docs/spec.md#schedule), one of :data:`SCHEDULES`:

    * ``exact`` (default): exact integration of the linear ODEs in Brian2's default order
      (integrate, threshold, this step's synaptic input, reset: input arriving in a spike step
      is lost);
    * ``discrete``: Euler with ``beta = 1 - dt/tau`` and reset before delivery (snnTorch, Norse,
      NIR's discrete reading): the reset of step k-1's spike, then ``v = beta v + input``, then
      the threshold; zero-delay connections carry a spike within its step, in topological order;
    * ``loihi``: Lava's CUBA LIF as Lava means its parameters (Euler, ``u`` then ``v``) and a
      connection delivers one step late, also from spike sources (Lava / Loihi 2).
    """

    dt: float  # s
    steps: int
    seed: int = 0
    schedule: str = "exact"

    @property
    def duration(self) -> float:
        return self.dt * self.steps


@dataclass(frozen=True)
class ArrayRef:
    """Array data: a file (.npy/.npz), a bundled dataset, or inline values.

    ``shape`` is known at load time (read from the file header without loading the data); it is
    the shape of the materialised array, i.e. after ``transform``. ``scale`` multiplies the values
    (SI) when they are materialised. ``transform`` (2-D data only): ``transpose`` (A^T) or
    ``gram`` (A^T A), applied before ``scale``; the block expansion derives its weight matrices
    from one decoder file this way (:mod:`neurodeploy.passes.expand`).
    """

    source: str  # "file" | "dataset" | "inline"
    shape: tuple[int, ...]
    path: Optional[str] = None  # as written in the spec, relative to the spec's directory
    key: Optional[str] = None  # member of an .npz
    dataset: Optional[str] = None  # "digits"
    samples: Optional[tuple[int, ...]] = None  # dataset rows
    values: Optional[tuple] = None  # inline (nested tuples of floats)
    scale: float = 1.0
    unit: str = "1"
    transform: Optional[str] = None  # None | "transpose" | "gram"


@dataclass(frozen=True)
class Init:
    """Initial value of a state variable: ``constant`` (a), ``uniform`` (a..b), ``normal`` (mean a, std b)."""

    kind: str
    a: float
    b: float = 0.0


@dataclass(frozen=True)
class Population:
    name: str
    size: int
    model: str
    params: dict[str, Any] = field(default_factory=dict)  # SI floats, or str/bool for choices
    init: dict[str, Init] = field(default_factory=dict)
    #: the spec's ``fixed_point: {v_lsb: ...}``: volts per integer unit of ``v`` on the integer
    #: targets (None: the quantize pass chooses the scale); docs/spec.md#fixed_point
    v_lsb: Optional[float] = None


@dataclass(frozen=True)
class PoissonStimulus:
    """Poisson spike trains: one rate for all (``rate``) or one per neuron (``rates``, Hz)."""

    kind: ClassVar[str] = "poisson"
    model: ClassVar[str] = "poisson_source"
    name: str
    size: int
    rate: Optional[float] = None  # Hz
    rates: Optional[ArrayRef] = None


@dataclass(frozen=True)
class SpikeTimesStimulus:
    """Spikes at given times: neuron ``indices[k]`` spikes at ``times[k]`` (s)."""

    kind: ClassVar[str] = "spike_times"
    model: ClassVar[str] = "spike_source"
    name: str
    size: int
    indices: tuple[int, ...] = ()
    times: tuple[float, ...] = ()


@dataclass(frozen=True)
class CurrentStimulus:
    """A current injected into ``target``'s current input (all neurons, or ``indices``).

    Constant ``amplitude`` between ``start`` and ``stop``, or piecewise constant: ``values[k]``
    from ``times[k]`` until the next time.
    """

    kind: ClassVar[str] = "current"
    model: ClassVar[None] = None
    name: str
    target: str
    amplitude: Optional[float] = None  # A
    start: float = 0.0
    stop: Optional[float] = None
    times: Optional[tuple[float, ...]] = None
    values: Optional[tuple[float, ...]] = None
    indices: Optional[tuple[int, ...]] = None


@dataclass(frozen=True)
class ArrayStimulus:
    """Clamped array data (e.g. images), one frame per ``frame_duration``.

    ``encoding``: ``rate`` (Poisson spikes at value x gain Hz; a spike source), ``current``
    (injected into ``target``, gain in amp), or ``value`` (a graded source of the values times
    gain, for blocks and rate models).
    """

    kind: ClassVar[str] = "array"
    model: ClassVar[None] = None
    name: str
    data: ArrayRef
    encoding: str
    frame_duration: float
    gain: float = 1.0
    target: Optional[str] = None

    @property
    def size(self) -> int:
        return int(self.data.shape[-1])

    @property
    def frames(self) -> int:
        return int(self.data.shape[0]) if len(self.data.shape) > 1 else 1


Stimulus = Union[PoissonStimulus, SpikeTimesStimulus, CurrentStimulus, ArrayStimulus]
STIMULUS_TYPES: dict[str, type] = {
    c.kind: c for c in (PoissonStimulus, SpikeTimesStimulus, CurrentStimulus, ArrayStimulus)
}


@dataclass(frozen=True)
class Weights:
    """Initial weights (SI, in the target model's weight unit).

    ``constant`` (value), ``uniform`` (low, high), ``normal`` (mean, std), ``inline`` or
    ``file`` (``data``). With a ``sign`` other than ``mixed`` on the projection these are
    magnitudes.
    """

    kind: str
    params: dict[str, float] = field(default_factory=dict)
    data: Optional[ArrayRef] = None
    unit: str = "1"


@dataclass(frozen=True)
class Connectivity:
    """``dense``, ``one_to_one``, ``random`` (probability ``p``) or ``sparse`` (pairs i->j)."""

    kind: str
    p: Optional[float] = None
    i: Optional[tuple[int, ...]] = None
    j: Optional[tuple[int, ...]] = None
    data: Optional[ArrayRef] = None  # sparse pairs from a file: shape (2, n) or (n, 2)
    allow_self: bool = True


@dataclass(frozen=True)
class PlasticityRule:
    rule: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Projection:
    name: str
    source: str
    target: str
    weights: Weights
    connectivity: Connectivity = Connectivity("dense")
    delay: float = 0.0  # s
    sign: str = "mixed"  # "excitatory" | "inhibitory" | "mixed"
    plasticity: Optional[PlasticityRule] = None


@dataclass(frozen=True)
class Probe:
    """Record ``variable`` (``spikes``, ``weights`` or a state variable) of ``target``."""

    name: str
    target: str
    variable: str
    indices: Optional[tuple[int, ...]] = None
    period: Optional[float] = None  # s; None = every step


@dataclass(frozen=True)
class Block:
    """A high-level block, expanded later by the ``expand`` pass. ``params`` is plain JSON data."""

    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Network:
    name: str
    simulation: Simulation
    populations: tuple[Population, ...] = ()
    stimuli: tuple[Stimulus, ...] = ()
    projections: tuple[Projection, ...] = ()
    probes: tuple[Probe, ...] = ()
    blocks: tuple[Block, ...] = ()
    description: str = ""
    spec_version: int = 1
    origin: Optional[str] = None  # the spec file it came from (as given), for relative paths

    def node(self, name: str):
        """The population, stimulus, projection or block called ``name`` (KeyError if none)."""
        for group in (self.populations, self.stimuli, self.projections, self.blocks):
            for n in group:
                if n.name == name:
                    return n
        raise KeyError(name)
