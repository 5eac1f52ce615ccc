"""Physical quantities in specs, parsed and dimension-checked with Brian2's unit system.

A spec writes quantities as strings such as ``"20 ms"``, ``"-65 mV"``, ``"1.5 nA"``,
``"10 Mohm"``, ``"5 mV/ms"`` or ``"1e-3 * second"``. The number is read with Python's float
syntax; the unit expression may use unit names known to Brian2 (``DEFAULT_UNITS``: every SI
unit with every prefix), ``*``, ``/``, ``**`` with integer exponents and parentheses. It is
evaluated by walking its AST: no ``eval``. Dimensions are compared with Brian2's
``Dimension`` objects, and the IR stores plain floats in SI base units.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import did_you_mean

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")
_MAX_EXPONENT = 8


class UnitParseError(ValueError):
    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


@lru_cache(maxsize=None)
def _brian():
    # Imported lazily: brian2 takes ~1.5 s to import and most of the CLI does not need it.
    from brian2.core.namespace import DEFAULT_UNITS
    from brian2.units.fundamentalunits import DIMENSIONLESS, Quantity, get_dimensions, get_unit

    return DEFAULT_UNITS, DIMENSIONLESS, Quantity, get_dimensions, get_unit


@dataclass(frozen=True)
class Dim:
    """A physical dimension named by a reference unit (e.g. ``Dim("volt")``, ``Dim("1")``)."""

    unit: str  # a Brian2 unit name, or "1" for dimensionless

    @property
    def dimensions(self):
        units, dimless, *_ = _brian()
        if self.unit == "1":
            return dimless
        return _eval_unit(self.unit).dim

    @property
    def is_dimensionless(self) -> bool:
        return self.unit == "1"

    def example(self) -> str:
        return _EXAMPLES.get(self.unit, f"1 {self.unit}")


_EXAMPLES = {
    "second": "20 ms",
    "volt": "10 mV",
    "amp": "1 nA",
    "ohm": "10 Mohm",
    "hertz": "10 Hz",
    "siemens": "10 nS",
    "farad": "200 pF",
    "volt/second": "5 mV/ms",
    "amp/second": "1 nA/ms",
    "1": "0.5",
}


def _eval_unit(expr: str):
    units, dimless, Quantity, *_ = _brian()
    try:
        tree = ast.parse(expr.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise UnitParseError("ND300", f"cannot read unit expression '{expr}'",
                             "write e.g. '20 ms', '1.5 nA' or '5 mV/ms'") from None

    def ev(n):
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Name):
            if n.id in units:
                return units[n.id]
            hint = did_you_mean(n.id, _common_units())
            raise UnitParseError("ND301", f"unknown unit '{n.id}'",
                                 hint or "units are Brian2 names: ms, mV, nA, Mohm, Hz, nS, pF ...")
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mult, ast.Div)):
            a, b = ev(n.left), ev(n.right)
            return a * b if isinstance(n.op, ast.Mult) else a / b
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            exp = n.right
            if isinstance(exp, ast.UnaryOp) and isinstance(exp.op, ast.USub) and isinstance(exp.operand, ast.Constant):
                e = -exp.operand.value
            elif isinstance(exp, ast.Constant):
                e = exp.value
            else:
                raise UnitParseError("ND300", "unit exponents must be integers")
            if not isinstance(e, int) or abs(e) > _MAX_EXPONENT:
                raise UnitParseError("ND300", f"unit exponent must be an integer up to {_MAX_EXPONENT}")
            return ev(n.left) ** e
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool):
            return n.value
        raise UnitParseError("ND300", f"cannot read unit expression '{expr}'",
                             "write e.g. '20 ms', '1.5 nA' or '5 mV/ms'")

    return Quantity(ev(tree))


@lru_cache(maxsize=1)
def _common_units() -> tuple[str, ...]:
    base = ["second", "volt", "amp", "ohm", "siemens", "farad", "hertz", "metre", "gram", "mole",
            "kelvin", "candela", "Hz", "V", "A", "S", "F", "s", "ohm", "hertz"]
    prefixes = ["", "m", "u", "n", "p", "k", "M", "G"]
    out = set()
    for b in ["second", "volt", "amp", "ohm", "siemens", "farad", "hertz", "s", "V", "A", "S",
              "F", "Hz"]:
        for p in prefixes:
            out.add(p + b)
    units, *_ = _brian()
    return tuple(sorted(u for u in out | set(base) if u in units))


def parse_quantity(value, expected: Dim | None):
    """Parse a YAML scalar into a float in SI base units, checking its dimension.

    ``value`` may be a number (allowed only for dimensionless quantities, or when ``expected``
    is None) or a string "NUMBER UNIT". Returns ``(si_value, dimensions)``.
    Raises :class:`UnitParseError` with a code and a hint.
    """
    units, dimless, Quantity, get_dimensions, get_unit = _brian()
    if isinstance(value, bool) or value is None:
        raise UnitParseError("ND203", f"expected a quantity, got {value!r}",
                             f"write e.g. '{expected.example()}'" if expected else None)
    if isinstance(value, (int, float)):
        q = float(value)
        if not math.isfinite(q):
            raise UnitParseError("ND205", "value must be finite")
        if expected is not None and not expected.is_dimensionless:
            raise UnitParseError(
                "ND303", f"{value} has no unit; expected a quantity in {expected.unit}",
                f"write e.g. '{value} {_suggest_prefixed(expected)}'")
        return q, dimless
    if not isinstance(value, str):
        raise UnitParseError("ND203", f"expected a quantity, got a {type(value).__name__}")
    m = _NUMBER.match(value)
    if not m:
        raise UnitParseError("ND300", f"cannot read quantity '{value}'",
                             f"write a number then a unit, e.g. '{expected.example() if expected else '20 ms'}'")
    number, unit_expr = m.group(1), m.group(2)
    if unit_expr.startswith("*"):
        unit_expr = unit_expr[1:].strip()
    mag = float(number)
    if unit_expr:
        unit = _eval_unit(unit_expr)
        q = mag * unit
    else:
        q = Quantity(mag)
    si = float(q)
    if not math.isfinite(si):
        raise UnitParseError("ND205", f"'{value}' is not finite")
    dims = get_dimensions(q)
    if expected is not None:
        want = expected.dimensions
        if dims != want:
            if dims is dimless or dims == dimless:
                raise UnitParseError(
                    "ND303", f"'{value}' has no unit; expected a quantity in {expected.unit}",
                    f"write e.g. '{value.strip()} {_suggest_prefixed(expected)}'")
            raise UnitParseError(
                "ND302", f"'{value}' is {_dim_name(dims)}; expected {_dim_name(want)} (in {expected.unit})",
                f"write e.g. '{expected.example()}'")
    return si, dims


def _suggest_prefixed(expected: Dim) -> str:
    ex = expected.example()
    return ex.split(" ", 1)[1] if " " in ex else expected.unit


_QUANTITY_NAMES = {
    "volt": "a voltage", "amp": "a current", "second": "a time", "hertz": "a rate",
    "ohm": "a resistance", "siemens": "a conductance", "farad": "a capacitance",
    "volt/second": "a voltage rate", "amp/second": "a current rate", "metre": "a length",
}


def _dim_name(dims) -> str:
    _, dimless, _, _, get_unit = _brian()
    if dims == dimless:
        return "dimensionless"
    for unit, name in _QUANTITY_NAMES.items():
        if _eval_unit(unit).dim == dims:
            return name
    return f"of dimension {get_unit(dims)}"



def dim_of_unit(unit: str) -> Dim:
    """Validate a unit name used in code (registries) and return its :class:`Dim`."""
    d = Dim(unit)
    d.dimensions  # raises if unknown
    return d


def format_si(value: float, unit: str) -> str:
    """Format an SI float with Brian2's unit display (e.g. 0.02, 'second' -> '20. ms')."""
    units, dimless, Quantity, *_ = _brian()
    if unit == "1":
        return repr(value)
    return str(value * _eval_unit(unit))
