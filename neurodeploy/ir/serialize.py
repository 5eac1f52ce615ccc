"""Lossless JSON (de)serialisation of the IR.

Floats are written with ``repr`` precision (Python's ``json`` does this), so
``from_json(to_json(net)) == net`` holds exactly. Stimuli carry a ``"kind"`` tag.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from functools import lru_cache
from typing import Any, Union

from . import nodes
from .nodes import IR_VERSION, STIMULUS_TYPES, Network

#: fields left out of the JSON while they hold their default (added after IR files were written)
_OMIT_DEFAULT = {nodes.Simulation: ("schedule",), nodes.Population: ("v_lsb",)}


def to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        d = {}
        kind = getattr(type(obj), "kind", None)
        if type(obj) in STIMULUS_TYPES.values():
            d["kind"] = kind
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name in _OMIT_DEFAULT.get(type(obj), ()) and value == f.default:
                continue  # written only when it differs from the default (older IR files stay valid)
            d[f.name] = to_dict(value)
        return d
    if isinstance(obj, (tuple, list)):
        return [to_dict(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError("the IR holds only finite numbers")
    return obj


def to_json(net: Network, indent: int | None = 2) -> str:
    payload = {"neurodeploy_ir": IR_VERSION, "network": to_dict(net)}
    return json.dumps(payload, indent=indent, sort_keys=False, allow_nan=False) + "\n"


@lru_cache(maxsize=None)
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(nodes))


def _build(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return _plain(data)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        if all(dataclasses.is_dataclass(a) and a in STIMULUS_TYPES.values() for a in args):
            return _build(STIMULUS_TYPES[data["kind"]], data)
        if len(args) == 1:
            return _build(args[0], data)
        return _plain(data)
    if origin is tuple:
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return tuple(_build(item, x) for x in data)
    if origin is dict:
        _, vt = typing.get_args(tp)
        return {k: _build(vt, v) for k, v in data.items()}
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _build(hints[f.name], data[f.name])
        return tp(**kwargs)
    if tp is float:
        return float(data)
    if tp in (int, str, bool):
        return tp(data)
    return _plain(data)


def _plain(data: Any) -> Any:
    """JSON lists become tuples so that values stay hashable and compare equal."""
    if isinstance(data, list):
        return tuple(_plain(x) for x in data)
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    return data


def from_dict(d: dict) -> Network:
    return _build(Network, d)


def from_json(text: str) -> Network:
    payload = json.loads(text)
    if not isinstance(payload, dict) or "network" not in payload:
        raise ValueError("not a neurodeploy IR file (no 'network' key)")
    version = payload.get("neurodeploy_ir")
    if version != IR_VERSION:
        raise ValueError(f"IR version {version!r} is not supported (this is version {IR_VERSION})")
    return from_dict(payload["network"])
