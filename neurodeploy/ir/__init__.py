"""The IR: frozen dataclasses in SI units, verification and a lossless JSON round trip."""

from .nodes import (
    IR_VERSION,
    ArrayRef,
    ArrayStimulus,
    Block,
    Connectivity,
    CurrentStimulus,
    Init,
    Network,
    PlasticityRule,
    PoissonStimulus,
    Population,
    Probe,
    Projection,
    Simulation,
    SpikeTimesStimulus,
    Stimulus,
    Weights,
)
from .serialize import from_dict, from_json, to_dict, to_json

__all__ = [
    "IR_VERSION", "ArrayRef", "ArrayStimulus", "Block", "Connectivity", "CurrentStimulus", "Init",
    "Network", "PlasticityRule", "PoissonStimulus", "Population", "Probe", "Projection",
    "Simulation", "SpikeTimesStimulus", "Stimulus", "Weights", "from_dict", "from_json",
    "to_dict", "to_json",
]
