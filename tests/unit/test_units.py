"""Quantities are parsed and dimension-checked with a table that mirrors Brian2's unit system
(cross-checked against Brian2 itself below) plus the SI symbols people type."""

from __future__ import annotations

import pytest

from neurodeploy.core.units import Dim, UnitParseError, parse_quantity, unit_table


@pytest.mark.parametrize(
    "text, unit, si",
    [
        ("20 ms", "second", 0.020),
        ("20ms", "second", 0.020),
        ("-65 mV", "volt", -0.065),
        ("1.5 nA", "amp", 1.5e-9),
        ("10 Mohm", "ohm", 1e7),
        ("10 Hz", "hertz", 10.0),
        ("1e-3 * second", "second", 1e-3),
        ("5 mV/ms", "volt/second", 5.0),
        ("2 * nA", "amp", 2e-9),
        ("1 kHz", "hertz", 1000.0),
        ("3 uS", "siemens", 3e-6),
        ("0.5", "1", 0.5),
        (0.5, "1", 0.5),
        ("1 metre**2", "metre**2", 1.0),
    ],
)
def test_parses_to_si(text, unit, si):
    v, _ = parse_quantity(text, Dim(unit))
    assert v == pytest.approx(si, rel=1e-12)


@pytest.mark.parametrize(
    "text, unit, code, hint_part",
    [
        ("20 mV", "second", "ND302", "20 ms"),
        ("20", "second", "ND303", "20 ms"),
        (20, "volt", "ND303", "mV"),
        ("20 mss", "second", "ND301", "ms"),
        ("abc ms", "second", "ND300", "20 ms"),
        ("20 ms ms ms", "second", "ND300", None),
        ("1 ms**1.5", "second", "ND300", None),
        ("1 ms**99", "second", "ND300", None),
        ("__import__('os')", "second", "ND300", None),
        ("1 __import__", "second", "ND301", None),
        ("1 (lambda: 0)()", "second", "ND300", None),
        (True, "second", "ND203", None),
    ],
)
def test_rejects_with_code_and_hint(text, unit, code, hint_part):
    with pytest.raises(UnitParseError) as e:
        parse_quantity(text, Dim(unit))
    assert e.value.code == code
    if hint_part:
        assert hint_part in (e.value.hint or ""), e.value.hint


def test_dimension_message_names_both_sides():
    with pytest.raises(UnitParseError) as e:
        parse_quantity("1 nA", Dim("volt"))
    assert "current" in e.value.message and "voltage" in e.value.message


def test_any_dimension_when_not_constrained():
    v, dims = parse_quantity("3 nA", None)
    assert v == pytest.approx(3e-9)
    assert str(dims) == "A"


# --- SI symbols a person types (issue 16.5) ---------------------------------------------------

@pytest.mark.parametrize(
    "text, unit, si",
    [
        ("2 s", "second", 2.0),
        ("1 V", "volt", 1.0),
        ("10 mS", "siemens", 0.01),  # millisiemens; "ms" is milliseconds
        ("1 A", "amp", 1.0),
        ("5 Hz", "hertz", 5.0),
        ("3 ohm", "ohm", 3.0),
        ("3 kΩ", "ohm", 3e3),
        ("1 F", "farad", 1.0),
        ("200 pF", "farad", 2e-10),
        ("1 µs", "second", 1e-6),  # the micro sign
        ("1 μs", "second", 1e-6),  # Greek mu
        ("1 us", "second", 1e-6),
        ("20 ks", "second", 2e4),
        ("5 mV/s", "volt/second", 5e-3),
        ("1 nA/s", "amp/second", 1e-9),
        ("2 MΩ", "ohm", 2e6),
        ("4 GS", "siemens", 4e9),
    ],
)
def test_si_symbols(text, unit, si):
    v, _ = parse_quantity(text, Dim(unit))
    assert v == pytest.approx(si, rel=1e-15)


@pytest.mark.parametrize(
    "text, unit, code",
    [("2 s", "volt", "ND302"), ("1 V", "second", "ND302"), ("10 mS", "second", "ND302"),
     ("1 A", "ohm", "ND302"), ("1 F", "siemens", "ND302"), ("2 sec", "second", "ND301")],
)
def test_si_symbols_keep_dimension_checks(text, unit, code):
    with pytest.raises(UnitParseError) as e:
        parse_quantity(text, Dim(unit))
    assert e.value.code == code


def test_unknown_unit_hint_offers_symbols():
    with pytest.raises(UnitParseError) as e:
        parse_quantity("2 sec", Dim("second"))
    assert "second" in e.value.hint or "'s'" in e.value.hint, e.value.hint


# --- the table agrees with Brian2 (issue 20: parsing without importing Brian2) ---------------

def test_every_brian2_unit_name_matches_brian2():
    from brian2.core.namespace import DEFAULT_UNITS

    table = unit_table()
    assert len(DEFAULT_UNITS) > 1500
    for name, unit in DEFAULT_UNITS.items():
        dims, scale = table[name]
        assert 10.0**scale == float(unit), name
        assert dims.exps == tuple(unit.dim._dims), name


_CROSS = [
    "20 ms", "-65 mV", "1.5 nA", "10 Mohm", "10 Hz", "1e-3 * second", "5 mV/ms", "2 * nA", "1 kHz",
    "3 uS", "1 metre**2", "7 nA/ms", "0.25 msecond", "3.3 mvolt/second", "1 ufarad/cm2",
    "2 msiemens/cm2", "4 umetre**2", "1 mM", "60 mV**2", "1 volt*second", "1 amp**-1", "2 (mV/ms)**2",
    "1 kgram*metre/second**2", "0.1 liter", "5 pA/pF", "1.5 Gohm", "1e2 khertz",
]
_SYMBOL_SPELLED_OUT = {  # SI symbol -> the Brian2 name it means
    "2 s": "2 second", "1 V": "1 volt", "10 mS": "10 msiemens", "1 A": "1 amp", "5 Hz": "5 hertz",
    "3 ohm": "3 ohm", "1 F": "1 farad", "4 kV/us": "4 kvolt/usecond", "2 nS*mV": "2 nsiemens*mvolt",
    "1 g": "1 gram", "3 km": "3 kmetre", "1 mol/L": "1 mole/liter", "1 Wb": "1 weber", "1 J/s": "1 joule/second",
    "1 C": "1 coulomb", "2 T": "2 tesla", "2 H": "2 henry", "3 W": "3 watt", "4 N": "4 newton", "5 Pa": "5 pascal",
}


def _brian2_value(text):
    from brian2.core.namespace import DEFAULT_UNITS
    from brian2.units.fundamentalunits import get_dimensions

    from neurodeploy.core.units import _NUMBER

    number, expr = _NUMBER.match(text).groups()
    expr = expr.lstrip("*").strip()
    q = float(number) * eval(expr, {"__builtins__": {}}, dict(DEFAULT_UNITS))  # trusted test strings
    return float(q), tuple(get_dimensions(q)._dims)


@pytest.mark.parametrize("text", _CROSS)
def test_parse_equals_brian2(text):
    v, dims = parse_quantity(text, None)
    bv, bdims = _brian2_value(text)
    assert v == bv
    assert dims.exps == bdims


@pytest.mark.parametrize("text, spelled", sorted(_SYMBOL_SPELLED_OUT.items()))
def test_symbols_equal_brian2_names(text, spelled):
    v, dims = parse_quantity(text, None)
    bv, bdims = _brian2_value(spelled)
    assert v == pytest.approx(bv, rel=1e-15)
    assert dims.exps == bdims


def test_checking_a_spec_does_not_import_brian2():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import sys, neurodeploy; net, diags = neurodeploy.check('models/ei_network.yaml'); "
            "assert net is not None and not [d for d in diags if d.severity == 'error'], diags; "
            "print('brian2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_spec_in_si_symbols_loads_to_the_same_ir(tmp_path):
    import dataclasses

    import neurodeploy as nd

    spec = """\
neurodeploy: 1
name: symbols
simulation: {{dt: {dt}, duration: {duration}}}
populations:
  - {{name: a, size: 3, model: lif, params: {{tau_m: {tau}, v_th: {vth}, R_m: {R}, v_rest: {vr}}}}}
stimuli:
  - {{name: drive, kind: current, target: a, amplitude: {I}}}
"""
    symbols = dict(dt="1e-4 s", duration="0.2 s", tau="0.02 s", vth="-0.05 V", R="0.01 Gohm", vr="-65 mV", I="2e-9 A")
    names = dict(dt="0.1 ms", duration="200 ms", tau="20 ms", vth="-50 mV", R="10 Mohm", vr="-0.065 volt", I="2 nA")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(spec.format(**symbols))
    b.write_text(spec.format(**names))
    na, nb = nd.load(str(a)), nd.load(str(b))
    assert dataclasses.replace(na, origin=None) == dataclasses.replace(nb, origin=None)
    assert na.populations[0].params["v_th"] == -0.05
