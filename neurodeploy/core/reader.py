"""Typed reading of located YAML nodes, collecting diagnostics instead of raising.

Each ``Reader`` method reads one value at a key path, records where it came from (so later
semantic problems, found by key path, can be located) and returns a best-effort value: on
error it appends a diagnostic and returns the ``default`` it was given, so that reading goes on
and *all* problems are reported in one pass.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

from .errors import Diagnostic, Span, close_matches, did_you_mean, format_path, one_of
from .params import REQUIRED, ParamInfo, param_infos
from .source import SourceFile, YList, YMap, YNode, YScalar, type_name
from .units import Dim, UnitParseError, parse_quantity

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REF_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class Reader:
    def __init__(self, src: SourceFile):
        self.src = src
        self.diags: list[Diagnostic] = []
        self.spans: dict[tuple, Any] = {}  # path -> span of the value
        self.key_spans: dict[tuple, Any] = {}  # path -> span of the key
        self.bad_paths: set[tuple] = set()

    # --- reporting -------------------------------------------------------------------------
    def error(self, code: str, where, path: tuple, message: str, hint: str | None = None,
              severity: str = "error") -> None:
        span = where.span if hasattr(where, "span") else where
        if span is None:
            span = self.locate(path)
        d = self.src.diag(code, span, message, format_path(path), hint)
        if severity != "error":
            d = Diagnostic(d.code, d.message, d.span, d.path, d.hint, severity, d.source_line)
        self.diags.append(d)
        if severity == "error":
            self.bad_paths.add(path)

    def locate(self, path: tuple, prefer_key: bool = False):
        p = tuple(path)
        while True:
            if prefer_key and p in self.key_spans:
                return self.key_spans[p]
            if p in self.spans:
                return self.spans[p]
            if p in self.key_spans:
                return self.key_spans[p]
            if not p:
                return Span(self.src.path, 1, 1)
            p = p[:-1]

    def has_error_at(self, path: tuple) -> bool:
        """True if ``path``, something above it, or (within one list item) something below it
        already has an error: problems that follow from a reported one are not repeated."""
        p = tuple(path)
        return any(p[: len(b)] == b or (len(p) >= 2 and b[: len(p)] == p) for b in self.bad_paths)

    def _seen(self, node: YNode | None, path: tuple) -> bool:
        """Record where ``path`` is; False when the node was already reported as invalid."""
        if node is not None:
            self.spans[path] = node.span
        if isinstance(node, YScalar) and node.invalid:
            self.bad_paths.add(path)
            return False
        return True

    # --- structure ---------------------------------------------------------------------------
    def mapping(self, node: YNode | None, path: tuple, allowed: Iterable[str],
                required: Iterable[str] = (), what: str = "",
                hints: dict[str, str] | None = None) -> YMap | None:
        if not self._seen(node, path):
            return None
        if not isinstance(node, YMap):
            self.error("ND203", node, path, f"expected a mapping{' (' + what + ')' if what else ''}, got {type_name(node)}",
                       "write 'key: value' pairs, one per line")
            return None
        allowed = list(allowed)
        misspelt = set()  # required keys an unknown key is a misspelling of: reported once, as ND201
        for key, (kspan, vnode) in node.entries.items():
            self.key_spans[path + (key,)] = kspan
            self.spans[path + (key,)] = vnode.span
            if key not in allowed:
                misspelt.update(close_matches(key, allowed))
                self.error("ND201", kspan, path + (key,), f"unknown key '{key}'" + (f" in {what}" if what else ""),
                           did_you_mean(key, allowed) or ("allowed keys: " + ", ".join(allowed)))
        for key in required:
            if key not in node.entries and key not in misspelt:
                self.error("ND202", node, path + (key,), f"missing required key '{key}'" + (f" in {what}" if what else ""),
                           (hints or {}).get(key))
        return node

    def seq(self, node: YNode | None, path: tuple, what: str = "list") -> list[YNode]:
        if not self._seen(node, path) or node is None:
            return []
        if not isinstance(node, YList):
            self.error("ND203", node, path, f"expected a {what}, got {type_name(node)}",
                       "write one '- item' per line")
            return []
        for i, item in enumerate(node.items):
            self.spans[path + (i,)] = item.span
        return node.items

    # --- scalars -----------------------------------------------------------------------------
    def scalar(self, node, path, types: tuple, expected: str, default=None):
        if not self._seen(node, path):
            return default
        if not isinstance(node, YScalar) or not isinstance(node.value, types) or (
                bool not in types and isinstance(node.value, bool)):
            got = type_name(node)
            self.error("ND203", node, path, f"expected {expected}, got {got}"
                       + (f" {node.value!r}" if isinstance(node, YScalar) and node.value is not None else ""))
            return default
        return node.value

    def string(self, node, path, default="") -> str:
        return self.scalar(node, path, (str,), "a string", default)

    def name(self, node, path, default="") -> str:
        v = self.scalar(node, path, (str,), "a name", None)
        if v is None:
            return default
        if not NAME_RE.match(v):
            self.error("ND204", node, path, f"'{v}' is not a valid name",
                       "names start with a letter or '_' and contain only letters, digits and '_'")
            return default
        return v

    def ref(self, node, path, default="") -> str:
        v = self.scalar(node, path, (str,), "a name", None)
        if v is None:
            return default
        if not REF_RE.match(v):
            self.error("ND204", node, path, f"'{v}' is not a valid reference",
                       "refer to a name, or to a block output as 'block.output'")
            return default
        return v

    def integer(self, node, path, lo: int | None = None, hi: int | None = None, default=0) -> int:
        v = self.scalar(node, path, (int,), "an integer", None)
        if v is None:
            if isinstance(node, YScalar) and isinstance(node.value, float) and node.value.is_integer():
                self.diags.pop()
                self.bad_paths.discard(path)
                v = int(node.value)
            else:
                return default
        if lo is not None and v < lo:
            self.error("ND205", node, path, f"{v} is below the minimum of {lo}")
            return default
        if hi is not None and v > hi:
            self.error("ND206", node, path, f"{v} exceeds the maximum of {hi}")
            return default
        return v

    def number(self, node, path, lo=None, hi=None, default=0.0, lo_exclusive=False) -> float:
        v = self.scalar(node, path, (int, float), "a number", None)
        if v is None:
            return default
        v = float(v)
        if not math.isfinite(v):  # YAML's .nan / .inf
            self.error("ND205", node, path, f"{'NaN' if math.isnan(v) else 'infinity'} is not allowed here",
                       "NaN and infinity are not allowed in a spec; write a number")
            return default
        return self._range(node, path, v, lo, hi, lo_exclusive, default, str(v))

    def boolean(self, node, path, default=False) -> bool:
        return self.scalar(node, path, (bool,), "true or false", default)

    def choice(self, node, path, choices: Iterable[str], default=None, code="ND204") -> str | None:
        choices = list(choices)
        v = self.scalar(node, path, (str,), "one of " + ", ".join(choices), None)
        if v is None:
            return default
        if v not in choices:
            self.error(code, node, path, f"'{v}' is not a valid choice",
                       did_you_mean(v, choices) or one_of(choices))
            return default
        return v

    def quantity(self, node, path, dim: Dim | None, lo=None, hi=None, default=0.0,
                 lo_exclusive=False) -> float:
        if not self._seen(node, path):
            return default
        if not isinstance(node, YScalar):
            self.error("ND203", node, path, f"expected a quantity, got {type_name(node)}",
                       f"write e.g. '{dim.example()}'" if dim else None)
            return default
        try:
            v, _ = parse_quantity(node.value, dim)
        except UnitParseError as e:
            self.error(e.code, node, path, e.message, e.hint)
            return default
        return self._range(node, path, v, lo, hi, lo_exclusive, default, str(node.value))

    def _range(self, node, path, v, lo, hi, lo_exclusive, default, shown):
        if lo is not None and (v < lo or (lo_exclusive and v == lo)):
            word = "positive" if lo == 0 and lo_exclusive else ("non-negative" if lo == 0 else f"at least {lo}")
            self.error("ND205", node, path, f"{shown} must be {word}")
            return default
        if hi is not None and v > hi:
            self.error("ND205", node, path, f"{shown} must be at most {hi}")
            return default
        return v

    # --- registry-derived parameter sets ----------------------------------------------------
    def params(self, node: YNode | None, path: tuple, cls, weight_unit: str | None,
               what: str, keys: Iterable[str] | None = None, check_unknown: bool = True,
               fill_defaults: bool = False) -> dict[str, Any]:
        """Read the parameters declared on dataclass ``cls`` (the schema comes from it).

        Unknown keys are reported here when ``check_unknown``; otherwise they are read as
        plain quantities and left to ``ir.verify`` (so a rule is written once).
        """
        infos = param_infos(cls) if cls is not None else {}
        out: dict[str, Any] = {}
        if node is None:
            m = None
        elif check_unknown:
            m = self.mapping(node, path, list(infos) + list(keys or ()), what=what)
        else:
            m = self.mapping(node, path, [*(n for n in node.entries)] if isinstance(node, YMap) else [], what=what)
        entries = m.entries if m is not None else {}
        for name, (info, default) in infos.items():
            if info.kind == "data":
                continue  # arrays are read by the caller (they need a base directory)
            if name in entries:
                out[name] = self.param_value(entries[name][1], path + (name,), info, weight_unit)
            elif default is REQUIRED:
                self.error("ND202", m if m is not None else self.locate(path), path + (name,),
                           f"{what} needs parameter '{name}'" + (f" ({info.doc})" if info.doc else ""),
                           f"e.g. {name}: {Dim(_unit(info, weight_unit)).example()}" if info.kind == "quantity" else None)
            elif fill_defaults:
                out[name] = default
        if not check_unknown:
            for name, (_, vnode) in entries.items():
                if name not in infos:
                    out[name] = self.quantity(vnode, path + (name,), None, default=0.0)
        return out

    def param_value(self, node, path, info: ParamInfo, weight_unit: str | None):
        lo = info.min
        if info.kind == "quantity":
            unit = _unit(info, weight_unit)
            return self.quantity(node, path, Dim(unit) if unit else None, lo, info.max,
                                 lo_exclusive=info.min_exclusive)
        if info.kind == "int":
            return self.integer(node, path, None if lo is None else int(lo),
                                None if info.max is None else int(info.max))
        if info.kind == "bool":
            return self.boolean(node, path)
        if info.kind == "choice":
            return self.choice(node, path, info.choices, default=info.choices[0])
        if info.kind == "ref":
            return self.ref(node, path)
        raise AssertionError(f"param kind {info.kind} is read by the caller")


def _unit(info: ParamInfo, weight_unit: str | None) -> str | None:
    if info.unit == "weight":
        return weight_unit
    if info.unit.startswith("weight/"):  # e.g. "weight/second": a learning rate
        return None if weight_unit is None else f"{weight_unit}/{info.unit[len('weight/'):]}"
    return info.unit


def finite(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x)
