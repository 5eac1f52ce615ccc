"""Plasticity rules. Each rule is a file here, registered with :func:`register_rule`.

A rule declares its parameters on a frozen dataclass (the spec schema is derived from it).
Parameters in the pseudo-unit ``"weight"`` take the unit of the weights of the projection the
rule is attached to. The learning-rules issue adds the canonical trace form and the lowerings;
this registry is what the spec checker validates against.
"""

from __future__ import annotations

from typing import ClassVar

from ..params import param_infos

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


from . import stdp  # noqa: E402,F401  (registration side effect)

__all__ = ["RULES", "PlasticityRuleDef", "register_rule"]
