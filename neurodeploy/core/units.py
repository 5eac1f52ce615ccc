"""Physical quantities in specs, parsed and dimension-checked without importing Brian2.

A spec writes quantities as strings such as ``"20 ms"``, ``"-65 mV"``, ``"1.5 nA"``,
``"10 Mohm"``, ``"5 mV/ms"``, ``"2 s"``, ``"10 mS"`` or ``"1e-3 * second"``. The number is read
with Python's float syntax; the unit expression may use

* every unit name Brian2 knows (``brian2.core.namespace.DEFAULT_UNITS``: the SI base and derived
  units by name -- ``second``, ``volt``, ``amp``/``ampere``, ``ohm``, ``siemens``, ``farad``,
  ``hertz``, ``metre``, ``gram``, ``mole``, ``molar``, ``liter``, ... -- with the prefixes
  ``y z a f p n u m k M G T P E Z Y`` and the powers ``2``/``3``, plus Brian2's short forms
  ``ms``, ``mV``, ``nA``, ``Hz``, ``kHz``, ``nS``, ``pF``, ``um``, ``cm2``, ...);
* the SI symbols a person types, with the same prefixes (and ``u``, ``μ`` or ``µ`` for micro):
  ``s``, ``V``, ``A``, ``S``, ``F``, ``Hz``, ``ohm``/``Ω``, ``m``, ``g``, ``K``, ``mol``, ``cd``,
  ``N``, ``Pa``, ``J``, ``W``, ``C``, ``Wb``, ``T``, ``H``, ``lm``, ``lx``, ``Bq``, ``Gy``,
  ``Sv``, ``kat``, ``rad``, ``sr``, ``l``/``L``, ``M`` (molar), so ``2 s``, ``1 V``,
  ``10 mS`` (millisiemens; ``ms`` is milliseconds), ``3 kohm``, ``1 F`` all work;

combined with ``*``, ``/``, ``**`` (integer exponents) and parentheses. The expression is
evaluated by walking its AST (no ``eval``) over the table below, which mirrors Brian2's unit
algebra exactly (a unit is ``10**scale`` times a product of SI base units, scales add up as
integers), so a value parsed here equals ``float()`` of the same Brian2 expression; a test
checks every Brian2 unit name against Brian2 itself. Brian2 is imported only to *display*
quantities (:func:`format_si`) and by the Brian2 backend (:func:`_eval_unit`).

Dimensions are :class:`Dimensions`: the exponents of (m, kg, s, A, K, mol, cd). The IR stores
plain floats in SI base units.
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
_MAX_EXPR_CHARS = 200


class UnitParseError(ValueError):
    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


_BASE_SYMBOLS = ("m", "kg", "s", "A", "K", "mol", "cd")


@dataclass(frozen=True)
class Dimensions:
    """Exponents of the SI base units (m, kg, s, A, K, mol, cd)."""

    exps: tuple = (0, 0, 0, 0, 0, 0, 0)

    def __mul__(self, other: "Dimensions") -> "Dimensions":
        return Dimensions(tuple(a + b for a, b in zip(self.exps, other.exps)))

    def __truediv__(self, other: "Dimensions") -> "Dimensions":
        return Dimensions(tuple(a - b for a, b in zip(self.exps, other.exps)))

    def __pow__(self, n: int) -> "Dimensions":
        return Dimensions(tuple(a * n for a in self.exps))

    @property
    def is_dimensionless(self) -> bool:
        return not any(self.exps)

    def __str__(self) -> str:  # Brian2's display: "m^2 kg s^-3 A^-1", "1"
        parts = [s if e == 1 else f"{s}^{e}" for s, e in zip(_BASE_SYMBOLS, self.exps) if e]
        return " ".join(parts) if parts else "1"


DIMENSIONLESS = Dimensions()


def _d(m=0, kg=0, s=0, A=0, K=0, mol=0, cd=0) -> Dimensions:
    return Dimensions((m, kg, s, A, K, mol, cd))


# Brian2's base and derived units by name: name -> (dimensions, scale of the unprefixed unit).
_NAMED = {
    "metre": (_d(m=1), 0), "meter": (_d(m=1), 0),
    "gram": (_d(kg=1), -3), "gramme": (_d(kg=1), -3),
    "second": (_d(s=1), 0),
    "amp": (_d(A=1), 0), "ampere": (_d(A=1), 0),
    "mole": (_d(mol=1), 0), "mol": (_d(mol=1), 0),
    "candle": (_d(cd=1), 0),
    "radian": (DIMENSIONLESS, 0), "steradian": (DIMENSIONLESS, 0),
    "hertz": (_d(s=-1), 0), "becquerel": (_d(s=-1), 0),
    "newton": (_d(m=1, kg=1, s=-2), 0),
    "pascal": (_d(m=-1, kg=1, s=-2), 0),
    "joule": (_d(m=2, kg=1, s=-2), 0),
    "watt": (_d(m=2, kg=1, s=-3), 0),
    "coulomb": (_d(s=1, A=1), 0),
    "volt": (_d(m=2, kg=1, s=-3, A=-1), 0),
    "farad": (_d(m=-2, kg=-1, s=4, A=2), 0),
    "ohm": (_d(m=2, kg=1, s=-3, A=-2), 0),
    "siemens": (_d(m=-2, kg=-1, s=3, A=2), 0),
    "weber": (_d(m=2, kg=1, s=-2, A=-1), 0),
    "tesla": (_d(kg=1, s=-2, A=-1), 0),
    "henry": (_d(m=2, kg=1, s=-2, A=-2), 0),
    "lumen": (_d(cd=1), 0), "lux": (_d(m=-2, cd=1), 0),
    "gray": (_d(m=2, s=-2), 0), "sievert": (_d(m=2, s=-2), 0),
    "katal": (_d(s=-1, mol=1), 0),
    "molar": (_d(m=-3, mol=1), 3),
}
_PREFIXES = {"y": -24, "z": -21, "a": -18, "f": -15, "p": -12, "n": -9, "u": -6, "m": -3, "": 0,
             "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18, "Z": 21, "Y": 24}
_LITRE_PREFIXES = {**_PREFIXES, "c": -2, "d": -1, "da": 1, "h": 2}
# SI symbols -> the named unit (Brian2 spells units out; people type the symbols)
_SYMBOLS = {
    "m": "metre", "g": "gram", "s": "second", "A": "amp", "mol": "mole", "cd": "candle",
    "rad": "radian", "sr": "steradian", "Hz": "hertz", "Bq": "becquerel", "N": "newton",
    "Pa": "pascal", "J": "joule", "W": "watt", "C": "coulomb", "V": "volt", "F": "farad",
    "Ω": "ohm", "S": "siemens", "Wb": "weber", "T": "tesla", "H": "henry", "lm": "lumen",
    "lx": "lux", "Gy": "gray", "Sv": "sievert", "kat": "katal", "M": "molar",
}
_MICRO = ("μ", "µ")  # Greek mu and the micro sign (Python's parser folds the latter into the former)


@lru_cache(maxsize=1)
def unit_table() -> dict[str, tuple[Dimensions, int]]:
    """Every unit name accepted in a spec -> (dimensions, scale): the unit is ``10**scale`` SI."""
    t: dict[str, tuple[Dimensions, int]] = {}

    def add(name, dims, scale, powers=("", "2", "3")):
        for pw in powers:
            n = int(pw) if pw else 1
            t.setdefault(name + pw, (dims ** n, scale * n))

    # Brian2's names: every named unit with every prefix and the powers 2 and 3
    for name, (dims, s0) in _NAMED.items():
        for p, e in _PREFIXES.items():
            add(p + name, dims, s0 + e)
    add("kilogram", _d(kg=1), 0)
    add("kilogramme", _d(kg=1), 0)
    add("kelvin", _d(K=1), 0)
    for stem in ("liter", "litre"):
        for p, e in _LITRE_PREFIXES.items():
            t[p + stem] = (_d(m=3), e - 3)
    # Brian2's short forms
    for short, long in {"Hz": "hertz", "kHz": "khertz", "MHz": "Mhertz", "mA": "mamp", "uA": "uamp",
                        "nA": "namp", "pA": "pamp", "mV": "mvolt", "ms": "msecond", "us": "usecond",
                        "nF": "nfarad", "uF": "ufarad", "pF": "pfarad", "nS": "nsiemens", "uS": "usiemens",
                        "mM": "mmolar", "uM": "umolar", "nM": "nmolar"}.items():
        t[short] = t[long]
    for short, long in {"um": "umetre", "mm": "mmetre", "cm": None}.items():
        for pw in ("", "2", "3"):
            n = int(pw) if pw else 1
            t[short + pw] = t[long + pw] if long else (_d(m=1) ** n, -2 * n)
    # SI symbols with prefixes (micro also as u, μ, µ); names already taken keep their meaning
    for sym, name in _SYMBOLS.items():
        dims, s0 = _NAMED[name]
        prefixes = dict(_PREFIXES, **{mu: -6 for mu in _MICRO})
        if sym == "m":
            prefixes.update(c=-2, d=-1)
        for p, e in prefixes.items():
            add(p + sym, dims, s0 + e)
    add("K", _d(K=1), 0)
    add("ohm", *_NAMED["ohm"])
    for mu in _MICRO:
        add(mu + "ohm", _NAMED["ohm"][0], -6)
    for stem in ("l", "L"):
        for p, e in {**_LITRE_PREFIXES, **{mu: -6 for mu in _MICRO}}.items():
            t.setdefault(p + stem, (_d(m=3), e - 3))
    return t


@dataclass(frozen=True)
class _Q:
    """A unit (``value`` None: exactly ``10**scale``, Brian2's Unit) or a quantity (float value)."""

    dims: Dimensions
    scale: int = 0
    value: float | None = None

    def number(self) -> float:
        return 10.0**self.scale if self.value is None else self.value

    def __mul__(self, o: "_Q") -> "_Q":
        if self.value is None and o.value is None:
            return _Q(self.dims * o.dims, self.scale + o.scale)
        return _Q(self.dims * o.dims, 0, self.number() * o.number())

    def __truediv__(self, o: "_Q") -> "_Q":
        if self.value is None and o.value is None:
            return _Q(self.dims / o.dims, self.scale - o.scale)
        return _Q(self.dims / o.dims, 0, self.number() / o.number())

    def __pow__(self, n: int) -> "_Q":
        if self.value is None:
            return _Q(self.dims ** n, self.scale * n)
        return _Q(self.dims ** n, 0, self.number() ** n)


@dataclass(frozen=True)
class Dim:
    """A physical dimension named by a reference unit (e.g. ``Dim("volt")``, ``Dim("1")``)."""

    unit: str  # a unit expression (e.g. "volt", "volt/second"), or "1" for dimensionless

    @property
    def dimensions(self) -> Dimensions:
        if self.unit == "1":
            return DIMENSIONLESS
        return _unit_expr(self.unit).dims

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


@lru_cache(maxsize=512)
def _unit_expr(expr: str) -> _Q:
    """Evaluate a unit expression over :func:`unit_table` (raises :class:`UnitParseError`)."""
    units = unit_table()
    if len(expr) > _MAX_EXPR_CHARS:
        raise UnitParseError("ND300", f"unit expression longer than {_MAX_EXPR_CHARS} characters",
                             "write e.g. '20 ms', '1.5 nA' or '5 mV/ms'")
    try:
        tree = ast.parse(expr.replace("^", "**"), mode="eval")
    except (SyntaxError, ValueError):
        raise UnitParseError("ND300", f"cannot read unit expression '{expr}'",
                             "write e.g. '20 ms', '1.5 nA' or '5 mV/ms'") from None

    def ev(n) -> _Q:
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Name):
            if n.id in units:
                dims, scale = units[n.id]
                return _Q(dims, scale)
            hint = did_you_mean(n.id, _common_units())
            raise UnitParseError("ND301", f"unknown unit '{n.id}'",
                                 hint or "units are SI symbols or Brian2 names: s, ms, mV, nA, Mohm, Hz, nS, pF ...")
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mult, ast.Div)):
            a, b = ev(n.left), ev(n.right)
            return a * b if isinstance(n.op, ast.Mult) else a / b
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            exp = n.right
            if isinstance(exp, ast.UnaryOp) and isinstance(exp.op, ast.USub) and isinstance(exp.operand, ast.Constant):
                e = -exp.operand.value if isinstance(exp.operand.value, (int, float)) else None
            elif isinstance(exp, ast.Constant):
                e = exp.value
            else:
                raise UnitParseError("ND300", "unit exponents must be integers")
            if not isinstance(e, int) or isinstance(e, bool) or abs(e) > _MAX_EXPONENT:
                raise UnitParseError("ND300", f"unit exponent must be an integer up to {_MAX_EXPONENT}")
            return ev(n.left) ** e
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool):
            return _Q(DIMENSIONLESS, 0, float(n.value))
        raise UnitParseError("ND300", f"cannot read unit expression '{expr}'",
                             "write e.g. '20 ms', '1.5 nA' or '5 mV/ms'")

    try:
        return ev(tree)
    except (OverflowError, ZeroDivisionError):
        raise UnitParseError("ND205", f"unit expression '{expr}' is not finite") from None


@lru_cache(maxsize=1)
def _common_units() -> tuple[str, ...]:
    """The unit names offered in 'did you mean' hints (SI symbols and Brian2's names)."""
    out = {"second", "volt", "amp", "ohm", "siemens", "farad", "hertz", "metre", "gram", "mole",
           "kelvin", "molar", "Hz", "V", "A", "S", "F", "s", "K", "mol"}
    for b in ["second", "volt", "amp", "ohm", "siemens", "farad", "hertz", "s", "V", "A", "S", "F", "Hz"]:
        for p in ["", "m", "u", "n", "p", "k", "M", "G"]:
            out.add(p + b)
    units = unit_table()
    return tuple(sorted(u for u in out if u in units))


def parse_quantity(value, expected: Dim | None):
    """Parse a YAML scalar into a float in SI base units, checking its dimension.

    ``value`` may be a number (allowed only for dimensionless quantities, or when ``expected``
    is None) or a string "NUMBER UNIT". Returns ``(si_value, dimensions)``.
    Raises :class:`UnitParseError` with a code and a hint.
    """
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
        return q, DIMENSIONLESS
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
        unit = _unit_expr(unit_expr)
        try:
            si, dims = mag * unit.number(), unit.dims
        except OverflowError:
            raise UnitParseError("ND205", f"'{value}' is not finite") from None
    else:
        si, dims = mag, DIMENSIONLESS
    if not math.isfinite(si):
        raise UnitParseError("ND205", f"'{value}' is not finite")
    if expected is not None:
        want = expected.dimensions
        if dims != want:
            if dims.is_dimensionless:
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


def _dim_name(dims: Dimensions) -> str:
    if dims.is_dimensionless:
        return "dimensionless"
    for unit, name in _QUANTITY_NAMES.items():
        if _unit_expr(unit).dims == dims:
            return name
    return f"of dimension {dims}"


def dim_of_unit(unit: str) -> Dim:
    """Validate a unit name used in code (registries) and return its :class:`Dim`."""
    d = Dim(unit)
    d.dimensions  # raises if unknown
    return d


def _eval_unit(expr: str):
    """The Brian2 quantity of a unit expression (for the Brian2 backend; imports Brian2)."""
    from brian2.units.fundamentalunits import Quantity, get_or_create_dimension

    q = _unit_expr(expr)
    return Quantity(q.number(), dim=get_or_create_dimension(q.dims.exps))


def format_si(value: float, unit: str) -> str:
    """Format an SI float with Brian2's unit display (e.g. 0.02, 'second' -> '20. ms')."""
    if unit == "1":
        return repr(value)
    return str(value * _eval_unit(unit))
