"""Safe YAML loading with source positions."""

from __future__ import annotations

import pytest

from neurodeploy.core.source import MAX_NODES, SourceFile, YList, YMap, YScalar, parse_yaml


def parse(text: str):
    src = SourceFile("t.yaml", text, text.splitlines())
    return parse_yaml(src)


def test_positions_are_one_based_and_point_at_values():
    root, diags = parse("a: 1\nb:\n  - x\n  - {c: 2 ms}\n")
    assert not diags
    assert isinstance(root, YMap)
    assert root.key_span("b").line == 2 and root.key_span("b").col == 1
    items = root.get("b")
    assert isinstance(items, YList)
    assert items.items[0].span.line == 3 and items.items[0].span.col == 5
    inner = items.items[1]
    assert isinstance(inner, YMap) and inner.get("c").value == "2 ms"
    assert inner.get("c").span.line == 4


def test_python_tags_are_refused_not_constructed():
    root, diags = parse("a: !!python/object/apply:os.system ['echo pwned']\n")
    assert [d.code for d in diags] == ["ND107"]
    root, diags = parse("a: !!python/name:os.system\n")
    assert [d.code for d in diags] == ["ND107"]


def test_duplicate_keys_are_reported_with_both_lines():
    root, diags = parse("a: 1\nb: 2\na: 3\n")
    assert [d.code for d in diags] == ["ND106"]
    assert diags[0].span.line == 3 and "line 1" in diags[0].message


def test_alias_bomb_is_bounded():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    root, diags = parse("\n".join(lines) + "\n")
    assert any(d.code == "ND102" and str(MAX_NODES) in d.message for d in diags)


def test_recursive_alias_is_reported():
    root, diags = parse("a: &x [1, *x]\n")
    assert any(d.code == "ND107" for d in diags)


@pytest.mark.parametrize("text, code", [("", "ND104"), ("# only a comment\n", "ND104"), ("a: 1\n---\nb: 2\n", "ND105"),
                                        ("a: [1, 2\n", "ND103"), ("a:\n\tb: 1\n", "ND103")])
def test_document_level_errors(text, code):
    root, diags = parse(text)
    assert root is None
    assert diags[0].code == code
    assert diags[0].span.line >= 1


def test_scalars_keep_yaml_types():
    root, _ = parse("i: 3\nf: 1.5\nb: true\ns: '3'\nn: null\n")
    vals = {k: v.value for k, (_, v) in root.entries.items()}
    assert vals == {"i": 3, "f": 1.5, "b": True, "s": "3", "n": None}
    assert isinstance(root.get("s"), YScalar) and root.get("s").quoted
