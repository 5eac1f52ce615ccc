"""Declaring parameters once, on a dataclass, so that the YAML schema is derived from it.

Neuron models, plasticity rules and blocks each declare a frozen dataclass whose fields are made
with :func:`param`. The spec reader walks :func:`dataclasses.fields` of that class to know which
keys exist, their type or physical unit, their range and default; nothing keeps a second list.

Units are Brian2 unit names (``"second"``, ``"volt"``, ``"amp"``, ``"ohm"``, ``"hertz"``) or
``"1"`` for dimensionless. The pseudo-unit ``"weight"`` means "the unit of the weights of the
projection this belongs to" (resolved from the target neuron model).
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass
from typing import Any

from .units import format_si

REQUIRED = MISSING


@dataclass(frozen=True)
class ParamInfo:
    kind: str  # "quantity" | "int" | "bool" | "choice" | "ref" | "data"
    unit: str = "1"
    doc: str = ""
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] = ()
    required: bool = False


def param(kind: str = "quantity", default: Any = REQUIRED, *, unit: str = "1", doc: str = "",
          min: float | None = None, max: float | None = None, min_exclusive: bool = False,
          choices: tuple[str, ...] = ()):
    """A dataclass field with the metadata the spec reader and the docs need."""
    info = ParamInfo(kind, unit, doc, min, max, min_exclusive, tuple(choices),
                     required=default is REQUIRED)
    if default is REQUIRED:
        return dataclasses.field(metadata={"nd": info})
    return dataclasses.field(default=default, metadata={"nd": info})


def param_infos(cls) -> dict[str, tuple[ParamInfo, Any]]:
    """name -> (info, default or REQUIRED) for every declared parameter of ``cls``."""
    out = {}
    for f in dataclasses.fields(cls):
        info = f.metadata.get("nd")
        if info is None:
            continue
        out[f.name] = (info, f.default if f.default is not MISSING else REQUIRED)
    return out


def defaults(cls) -> dict[str, Any]:
    return {k: d for k, (i, d) in param_infos(cls).items() if d is not REQUIRED}


def param_table(cls) -> str:
    """A Markdown table of a parameter class (used by docs and `--help`)."""
    rows = ["| parameter | unit | default | meaning |", "|---|---|---|---|"]
    for name, (info, default) in param_infos(cls).items():
        unit = info.unit if info.kind == "quantity" else info.kind
        if unit == "1":
            unit = "dimensionless"
        if info.kind == "choice":
            unit = " / ".join(info.choices)
        if default is REQUIRED:
            d = "required"
        elif info.kind == "quantity" and info.unit != "1" and not info.unit.startswith("weight"):
            d = format_si(default, info.unit)
        else:
            d = repr(default)
        rows.append(f"| `{name}` | {unit} | {d} | {info.doc} |")
    return "\n".join(rows)
