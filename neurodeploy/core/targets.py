"""Targets as data: ``targets/<name>.yaml`` describes a target's backend, number format,
precision and per-core limits. Adding a chip variant is a new YAML file, not new code.

A target is named either by its name (looked up in the target directories: ``$NEURODEPLOY_TARGETS``
then the shipped targets) or by a path to a YAML file. The shipped targets are package data
(``neurodeploy/_targets``, the project's ``targets/`` folder), read with :mod:`importlib.resources`,
so an installed wheel finds them from any directory.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Diagnostic, Span, SpecError, did_you_mean
from .reader import Reader
from .source import YMap, load_yaml_file

BACKENDS = ("brian2", "lava", "torch")
NUMBER_FORMATS = ("float64", "float32", "fixed")
DEVICES = ("cpu", "cuda", "auto", "loihi2")
TARGET_KEYS = ["target", "name", "description", "backend", "number_format", "device", "fallback",
               "requires", "precision", "limits"]


@dataclass(frozen=True)
class Target:
    name: str
    backend: str
    number_format: str
    device: str = "cpu"
    description: str = ""
    fallback: str | None = None
    requires: tuple[str, ...] = ()
    precision: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    path: str = ""


def target_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("NEURODEPLOY_TARGETS")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(shipped_dir("_targets"))
    return dirs


def shipped_dir(name: str) -> Path:
    """A folder of package data shipped with neurodeploy (``_targets``, ``_models``)."""
    return Path(str(importlib.resources.files("neurodeploy") / name))


def available_targets() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for d in target_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                out.setdefault(p.stem, p)
    return out


def load_target(name_or_path: str) -> Target:
    """Load a target by name or path; raises :class:`SpecError` with located diagnostics."""
    known = available_targets()
    if name_or_path in known:
        path = known[name_or_path]
    elif name_or_path.endswith((".yaml", ".yml")) or os.sep in name_or_path:
        path = Path(name_or_path)
    else:
        raise SpecError([Diagnostic("ND405", f"unknown target '{name_or_path}'", Span("<command line>"),
                                    "--target", did_you_mean(name_or_path, known) or
                                    "available targets: " + ", ".join(sorted(known)))])
    src, root, diags = load_yaml_file(path, str(path))
    if root is None:
        raise SpecError(diags)
    r = Reader(src)
    r.diags.extend(diags)
    m = r.mapping(root, (), TARGET_KEYS, required=["target", "name", "backend", "number_format"],
                  what="a target description")
    if m is None:
        raise SpecError(r.diags)
    get = m.get
    if "target" in m.entries:
        r.integer(get("target"), ("target",), lo=1, hi=1)
    name = r.string(get("name"), ("name",), path.stem) if "name" in m.entries else path.stem
    backend = r.choice(get("backend"), ("backend",), BACKENDS, "brian2") if "backend" in m.entries else "brian2"
    fmt = r.choice(get("number_format"), ("number_format",), NUMBER_FORMATS, "float64") if "number_format" in m.entries else "float64"
    device = r.choice(get("device"), ("device",), DEVICES, "cpu") if "device" in m.entries else "cpu"
    desc = r.string(get("description"), ("description",)) if "description" in m.entries else ""
    fallback = None
    if get("fallback") is not None and getattr(get("fallback"), "value", 0) is not None:
        fallback = r.string(get("fallback"), ("fallback",))
    requires = tuple(r.string(n, ("requires", i)) for i, n in enumerate(r.seq(get("requires"), ("requires",))))
    ints = {}
    for section in ("precision", "limits"):
        node = get(section)
        vals = {}
        if node is not None:
            sm = r.mapping(node, (section,), list(node.entries) if isinstance(node, YMap) else [], what=section)
            for k, (_, vn) in (sm.entries.items() if sm else ()):
                vals[k] = r.integer(vn, (section, k))
        ints[section] = vals
    errors = [d for d in r.diags if d.severity == "error"]
    if errors:
        raise SpecError(errors)
    return Target(name, backend, fmt, device, desc, fallback, requires, ints["precision"],
                  ints["limits"], str(path))
