"""Changing a model for one run: ``--set KEY=VALUE`` (and the API's ``overrides=``) on the spec's
YAML before it is read, so a bad value gets the same located diagnostic as in the file; and, on a
loaded network, its seed and duration (``--seed``, ``--duration``, the API's ``seed=`` and
``duration=``)."""

from __future__ import annotations

import dataclasses

import yaml

from ..core.errors import Diagnostic, Span, UsageError, did_you_mean
from ..core.source import SourceFile, YList, YMap, YNode, YScalar, parse_yaml
from ..core.units import Dim, UnitParseError, parse_quantity
from ..ir.nodes import Network
from ..library.blocks import BLOCKS
from ..library.neurons import NEURONS
from .checks import verify


def with_seed(net: Network, seed: int) -> Network:
    """``net`` with ``simulation.seed`` set to ``seed``."""
    if int(seed) == net.simulation.seed:
        return net
    return dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, seed=int(seed)))


def with_duration(net: Network, duration) -> Network:
    """``net`` run for ``duration`` (seconds, or a quantity string such as ``'50 ms'``), rounded to
    whole steps of its ``dt``; verified again (spike times past the end, delays, ...)."""
    seconds = parse_duration(duration)
    steps = int(round(seconds / net.simulation.dt))
    if steps < 1:
        raise UsageError(f"duration {duration!r} is shorter than one step of dt = {net.simulation.dt * 1e3:g} ms")
    return verify(dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, steps=steps)))


def parse_duration(duration) -> float:
    """Seconds from a number of seconds or a quantity string (``'50 ms'``, ``'2 s'``)."""
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        seconds = float(duration)
    else:
        try:
            seconds, _ = parse_quantity(str(duration), Dim("second"))
        except UnitParseError as e:
            raise UsageError(f"duration {duration!r}: {e.message}" + (f" ({e.hint})" if e.hint else "")) from None
    if not seconds > 0:
        raise UsageError(f"duration {duration!r} must be positive")
    return seconds


# --- --set KEY=VALUE: changes to the spec's YAML, read and checked like the file itself -----------

#: top-level sections a key may start with
SECTIONS = ("simulation", "populations", "stimuli", "projections", "probes", "blocks", "name", "description")
#: named lists, searched for a node name in that order
NAMED = ("populations", "stimuli", "projections", "blocks")
#: keys of a population mapping itself; any other key of a population is one of its ``params``
POPULATION_KEYS = ("name", "size", "model", "params", "init")


def parse_assignments(items) -> list[tuple[str, object]]:
    """``["KEY=VALUE", ...]`` (the command line) or a mapping ``{KEY: VALUE}`` (the API) as pairs;
    a string VALUE is YAML text (``10 ms``, ``0.5``, ``[1, 2]``)."""
    if items is None:
        return []
    if isinstance(items, dict):
        return [(str(k), v) for k, v in items.items()]
    out = []
    for item in items:
        if isinstance(item, tuple):
            out.append(item)
            continue
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. --set exc.tau_m='10 ms' "
                             "or --set simulation.seed=3")
        out.append((key.strip(), value.strip()))
    return out


def _value_node(key: str, value) -> tuple[YNode | None, list[Diagnostic]]:
    """The YAML node of an override's value, located in a pseudo-file named after the option."""
    text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
    if text.endswith("\n...") or text.endswith("..."):
        text = text.rsplit("...", 1)[0].strip()
    src = SourceFile(f"--set {key}", text, text.splitlines() or [""])
    node, diags = parse_yaml(src)
    if node is None and not diags:
        diags = [src.diag("ND104", Span(src.path, 1, 1), "no value given")]
    if isinstance(node, YMap):
        return None, [src.diag("ND203", node.span, "--set takes a value or a list, not a mapping",
                               hint="set each key separately: --set a.b=1 --set a.c=2")]
    return node, diags


def apply_overrides(root: YNode, assignments, diags: list[Diagnostic]) -> None:
    """Write ``assignments`` (see :func:`parse_assignments`) into the spec's YAML tree ``root``.

    A KEY is a dotted path: ``simulation.duration``; ``NODE.KEY`` for a population, stimulus,
    projection or block called NODE (a population's parameters need no ``params.``:
    ``exc.tau_m``); or a bare parameter name (``tau_m``) for every population whose neuron model
    has it and every block that has it. Setting ``simulation.duration`` removes ``steps`` and the
    other way round. Problems are appended to ``diags``, located at the option."""
    if not isinstance(root, YMap):
        return
    for key, value in parse_assignments(assignments):
        span = Span(f"--set {key}")
        node, problems = _value_node(key, value)
        diags.extend(problems)
        if node is None:
            continue
        parts = [p for p in key.split(".") if p]
        targets = _targets(root, parts, span, diags)
        for mapping, last in targets:
            mapping.entries[last] = (span, node)
            if mapping is root.get("simulation") and last in ("duration", "steps"):
                mapping.entries.pop("steps" if last == "duration" else "duration", None)


def _named(root: YMap) -> dict[str, tuple[str, YMap]]:
    out = {}
    for section in NAMED:
        items = root.get(section)
        for item in (items.items if isinstance(items, YList) else []):
            name = item.get("name") if isinstance(item, YMap) else None
            if isinstance(name, YScalar) and isinstance(name.value, str):
                out.setdefault(name.value, (section, item))
    return out


def _child_map(mapping: YMap, key: str, span: Span) -> YMap | None:
    """``mapping[key]`` as a mapping, created when missing (None if it is something else)."""
    node = mapping.get(key)
    if node is None:
        node = YMap({}, span)
        mapping.entries[key] = (span, node)
    return node if isinstance(node, YMap) else None


def _walk(start: YMap, parts: list[str], span: Span, diags: list[Diagnostic], key: str):
    """[(mapping, last key)] at the end of ``parts`` below ``start``."""
    cur = start
    for i, part in enumerate(parts[:-1]):
        node = cur.get(part)
        if isinstance(node, YList):  # a named item, or an index
            items = node.items
            match = [it for it in items if isinstance(it, YMap) and isinstance(it.get("name"), YScalar)
                     and it.get("name").value == parts[i + 1]]
            if part.isdigit() or not match:
                diags.append(Diagnostic("ND501", f"'{key}': '{part}' holds no item called '{parts[i + 1]}'", span,
                                        key, did_you_mean(parts[i + 1], [it.get("name").value for it in items
                                                          if isinstance(it, YMap) and isinstance(it.get("name"), YScalar)])))
                return []
            if len(parts) <= i + 2:
                diags.append(Diagnostic("ND202", f"'{key}' names an item; say which of its keys to set", span, key))
                return []
            return _walk(match[0], parts[i + 2:], span, diags, key)
        nxt = _child_map(cur, part, span)
        if nxt is None:
            diags.append(Diagnostic("ND203", f"'{key}': '{part}' is not a mapping", span, key))
            return []
        cur = nxt
    return [(cur, parts[-1])]


def _targets(root: YMap, parts: list[str], span: Span, diags: list[Diagnostic]):
    key = ".".join(parts)
    if not parts:
        diags.append(Diagnostic("ND202", "empty key", span, key))
        return []
    if parts[0] in SECTIONS:
        if len(parts) == 1 and parts[0] not in ("name", "description"):
            diags.append(Diagnostic("ND203", f"'{key}' is a section; set one of its keys", span, key,
                                    "e.g. --set simulation.duration='200 ms'"))
            return []
        return _walk(root, parts, span, diags, key)
    named = _named(root)
    if parts[0] in named:
        section, item = named[parts[0]]
        rest = parts[1:]
        if not rest:
            diags.append(Diagnostic("ND202", f"'{key}' names '{parts[0]}'; say which of its keys to set", span,
                                    key, f"e.g. --set {parts[0]}.<parameter>=VALUE"))
            return []
        if section == "populations" and rest[0] not in POPULATION_KEYS:
            rest = ["params"] + rest
        return _walk(item, rest, span, diags, key)
    if len(parts) == 1:  # a bare parameter: every population or block that has it
        found = []
        for name, (section, item) in named.items():
            if section == "populations":
                model = item.get("model")
                cls = NEURONS.get(model.value) if isinstance(model, YScalar) else None
                if cls is not None and parts[0] in cls.param_infos():
                    found += _walk(item, ["params", parts[0]], span, diags, key)
            elif section == "blocks":
                kind = item.get("kind")
                bdef = BLOCKS.get(kind.value) if isinstance(kind, YScalar) else None
                if bdef is not None and parts[0] in bdef.param_infos():
                    found += [(item, parts[0])]
        if not found:
            diags.append(Diagnostic("ND201", f"'{key}': no population or block of this spec has a parameter "
                                             f"'{parts[0]}', and nothing is called so", span, key,
                                    did_you_mean(parts[0], list(named) + list(SECTIONS))
                                    or "give NODE.PARAMETER or a full path such as simulation.duration"))
        return found
    diags.append(Diagnostic("ND501", f"'{key}': nothing in the spec is called '{parts[0]}'", span, key,
                            did_you_mean(parts[0], list(named) + list(SECTIONS))
                            or "names: " + ", ".join(list(named)[:12])))
    return []
