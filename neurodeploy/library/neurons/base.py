"""The neuron model registry.

A neuron model is a class registered with :func:`register_neuron`. It declares

* ``Params``: a frozen dataclass of parameters made with :func:`neurodeploy.core.params.param`
  (units in the metadata; the YAML schema is derived from it);
* ``state``: the state variables and their units (what probes may record and ``init`` may set);
* ``synaptic_target`` / ``weight_unit``: which state variable an incoming spike increments and
  therefore the physical unit of the weights of projections onto this model;
* ``current_input``: the name of the injected-current input (``None`` if currents cannot be
  injected);
* ``equations``: the model's ODE in Brian2 syntax (the backends derive from it, never from a
  per-model branch);
* :meth:`reference_step`: one time step in plain numpy, the test oracle for every backend.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from ...core.params import defaults, param_infos

NEURONS: dict[str, type["NeuronModel"]] = {}


def register_neuron(cls: type["NeuronModel"]) -> type["NeuronModel"]:
    if cls.name in NEURONS:
        raise ValueError(f"neuron model {cls.name!r} registered twice")
    NEURONS[cls.name] = cls
    return cls


def get_neuron(name: str) -> type["NeuronModel"]:
    return NEURONS[name]


def euler_models() -> tuple[str, ...]:
    """The spiking models with a step under the Euler schedules ``discrete`` and ``loihi`` (an
    ``euler_step`` classmethod; docs/spec.md#schedule)."""
    return tuple(n for n, m in NEURONS.items() if hasattr(m, "euler_step") and not m.graded and not m.is_source)


class NeuronModel:
    name: ClassVar[str]
    Params: ClassVar[type]
    #: state variable -> Brian2 unit name ("1" for dimensionless)
    state: ClassVar[dict[str, str]] = {}
    #: parameter that gives a state variable's default initial value
    state_defaults: ClassVar[dict[str, str]] = {}
    synaptic_target: ClassVar[str | None] = None
    weight_unit: ClassVar[str | None] = None
    current_input: ClassVar[str | None] = None
    #: True for sources (no incoming projections; they emit spikes from parameters or data)
    is_source: ClassVar[bool] = False
    #: True for graded-output models (a number per neuron and step instead of a spike;
    #: :mod:`neurodeploy.library.neurons.graded`): only graded sources may drive them, and the spiking
    #: simulators refuse them
    graded: ClassVar[bool] = False
    #: graded models without state whose output is their input in the same step
    algebraic: ClassVar[bool] = False
    equations: ClassVar[str] = ""
    threshold: ClassVar[str | None] = None
    reset: ClassVar[str | None] = None
    refractory: ClassVar[str | None] = None
    #: Brian2 integration method; "euler" is exact where the derivative is constant over a step
    brian2_method: ClassVar[str] = "exact"

    @classmethod
    def reset_code(cls, p) -> str | None:
        """The reset statement for parameters ``p`` (models with reset variants override it)."""
        return cls.reset

    @classmethod
    def param_infos(cls):
        return param_infos(cls.Params)

    @classmethod
    def make_params(cls, values: dict | None = None):
        """A ``Params`` instance from SI values, defaults filled in."""
        v = dict(defaults(cls.Params))
        v.update(values or {})
        return cls.Params(**v)

    @classmethod
    def initial_state(cls, params, size: int, init: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """State arrays at t=0: ``init`` where given, else the declared default parameter."""
        out = {}
        for var in cls.state:
            if init and var in init:
                out[var] = np.broadcast_to(np.asarray(init[var], dtype=float), (size,)).copy()
            elif var in cls.state_defaults:
                out[var] = np.full(size, float(getattr(params, cls.state_defaults[var])))
            else:
                out[var] = np.zeros(size)
        return out

    @classmethod
    def reference_step(cls, params, state: dict[str, np.ndarray], inputs: dict[str, np.ndarray],
                       dt: float, rng: np.random.Generator | None = None):
        """Advance ``state`` by one step of ``dt`` seconds. Returns (new state, spike mask)."""
        raise NotImplementedError

    @classmethod
    def doc(cls) -> str:
        return (cls.__doc__ or "").strip()


class ResetModeMixin:
    """For models with a ``reset_mode`` parameter (``to_value`` or ``subtract``), ``v_th`` and
    ``v_reset``: the Brian2 reset statement and the reference step's reset, from one place."""

    @classmethod
    def reset_code(cls, p) -> str:
        return "v -= v_th - v_reset" if p.reset_mode == "subtract" else "v = v_reset"

    @staticmethod
    def apply_reset(p, v: np.ndarray, spikes: np.ndarray) -> np.ndarray:
        """``v`` with the spiking neurons reset: to ``v_reset``, or by ``v_th - v_reset``."""
        if p.reset_mode == "subtract":
            return np.where(spikes, v - (p.v_th - p.v_reset), v)
        return np.where(spikes, p.v_reset, v)


def params_dict(p) -> dict[str, float]:
    return dataclasses.asdict(p)
