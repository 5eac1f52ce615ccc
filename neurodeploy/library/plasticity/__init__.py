"""Plasticity rules. Importing this package registers every shipped rule (one file per rule)."""

from . import bengio, eqprop, local_rules, stdp, third_factor  # noqa: F401  (registration side effect)
from .base import RULES, Lowering, PlasticityRuleDef, lowering, register_rule

__all__ = ["RULES", "Lowering", "PlasticityRuleDef", "lowering", "register_rule"]
