"""Plasticity rules. Each rule is a file here, registered with :func:`register_rule`.

A rule declares its parameters on a frozen dataclass (the spec schema is derived from it).
Parameters in the pseudo-unit ``"weight"`` (or ``"weight/second"``) take the unit of the weights
of the projection the rule is attached to. This registry is what the spec checker validates
against.

How a rule reaches the backends (:func:`lowering`): every rule says, through ``lower(p, dt)``,
either that it *is* pair STDP (``stdp``, and rules with an exactly equal pair window such as
``bengio_stdp``: every backend runs those through its pair-STDP path, Lava's fixed-point
learning engine included), or gives its canonical trace form (:mod:`.canonical`), which the
reference, Brian2, torch and Lava float/fixed lower generically with the *event semantics*
stated in :mod:`.canonical` ("impulses first": in each step this step's trace impulses are added,
then every product is evaluated; the semantics of Lava's learning engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...core.params import param_infos

RULES: dict[str, type["PlasticityRuleDef"]] = {}


def register_rule(cls):
    if cls.name in RULES:
        raise ValueError(f"plasticity rule {cls.name!r} registered twice")
    RULES[cls.name] = cls
    return cls


class PlasticityRuleDef:
    name: ClassVar[str]
    Params: ClassVar[type]

    @classmethod
    def param_infos(cls):
        return param_infos(cls.Params)

    @classmethod
    def doc(cls) -> str:
        return (cls.__doc__ or "").strip()

    @classmethod
    def lower(cls, p, dt: float) -> "Lowering":
        raise NotImplementedError(f"rule {cls.name!r} declares no lowering")

    @classmethod
    def problems(cls, p, duration: float) -> list[tuple[str, str]]:
        """(parameter, message) for parameter values that are wrong together (checked by verify)."""
        return []


@dataclass(frozen=True)
class Lowering:
    """What a backend runs for a rule: ``kind == "stdp"`` with pair-STDP parameters (SI) in
    ``stdp``, or ``kind == "canonical"`` with the trace form in ``canonical``."""

    kind: str
    stdp: dict | None = None
    canonical: object | None = None  # canonical.CanonicalRule
    #: the third factor ``r`` of a canonical rule, per postsynaptic neuron j: the spike trace of
    #: neuron j of ``modulator["source"]`` (impulse 1, decay ``tau``) minus ``offset``
    modulator: dict | None = None
    #: a phase gate instead: ``r = 1`` in steps ``k0 < k <= k1`` (reference step indices), else 0
    gate: tuple | None = None

    @property
    def w_min(self) -> float:
        return float(self.stdp.get("w_min", 0.0)) if self.kind == "stdp" else float(self.canonical.w_min)

    def problem(self) -> str:
        """Why no spiking backend can run this rule from a spec ('' if they can)."""
        if self.kind == "canonical" and self.canonical.uses("r") and self.modulator is None and self.gate is None:
            return "the third factor r has no source (give the rule a modulator)"
        return ""

    @property
    def w_max(self) -> float:
        return float(self.stdp["w_max"]) if self.kind == "stdp" else float(self.canonical.w_max)


def lowering(rule: str, params: dict, dt: float) -> Lowering:
    """The :class:`Lowering` of a spec rule with SI ``params`` (defaults filled in here)."""
    rdef = RULES.get(rule)
    if rdef is None:
        raise KeyError(f"unknown plasticity rule {rule!r}")
    return rdef.lower(rdef.Params(**params), dt)


__all__ = ["RULES", "Lowering", "PlasticityRuleDef", "lowering", "register_rule"]
