"""Quantities are parsed and dimension-checked with Brian2's unit system."""

from __future__ import annotations

import pytest

from neurodeploy.core.units import Dim, UnitParseError, parse_quantity


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
