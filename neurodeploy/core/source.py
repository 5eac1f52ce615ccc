"""Safe YAML loading that remembers where every key and value came from.

PyYAML's *composer* (the step before object construction) gives us nodes with source marks.
We walk those nodes ourselves, build plain Python values wrapped in :class:`YMap` /
:class:`YList` / :class:`YScalar`, and construct scalars with :class:`yaml.SafeLoader` only, so
no Python object is ever built from a tag. Duplicate keys, unknown tags, anchors that expand
into huge or recursive documents, binary garbage and oversized files are all reported as
:class:`~neurodeploy.core.errors.Diagnostic` records rather than exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from .errors import Diagnostic, Span

#: Largest spec file accepted (bytes). Large arrays belong in .npy/.npz files.
MAX_SPEC_BYTES = 8 * 1024 * 1024
#: Largest number of YAML nodes after alias expansion ("billion laughs" guard).
MAX_NODES = 1_000_000
#: Deepest nesting accepted.
MAX_DEPTH = 64


@dataclass
class YScalar:
    value: Any
    span: Span
    tag: str = ""
    quoted: bool = False
    invalid: bool = False  # already reported (e.g. a refused tag): readers stay silent about it


@dataclass
class YList:
    items: list["YNode"]
    span: Span


@dataclass
class YMap:
    # key -> (span of the key, value node); insertion order is source order
    entries: dict[str, tuple[Span, "YNode"]]
    span: Span

    def get(self, key: str) -> "YNode | None":
        e = self.entries.get(key)
        return e[1] if e else None

    def key_span(self, key: str) -> Span:
        e = self.entries.get(key)
        return e[0] if e else self.span


YNode = Union[YScalar, YList, YMap]

_TYPE_NAMES = {
    "tag:yaml.org,2002:str": "string",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:null": "null",
}


def type_name(node: YNode | None) -> str:
    if node is None:
        return "nothing"
    if isinstance(node, YMap):
        return "mapping"
    if isinstance(node, YList):
        return "list"
    return _TYPE_NAMES.get(node.tag, "a tagged value")


@dataclass
class SourceFile:
    """The text of a user file, kept so diagnostics can quote the offending line."""

    path: str
    text: str = ""
    lines: list[str] = field(default_factory=list)

    def line(self, n: int) -> str | None:
        if 1 <= n <= len(self.lines):
            return self.lines[n - 1]
        return None

    def diag(self, code: str, span: Span, message: str, path: str = "", hint: str | None = None):
        return Diagnostic(code, message, span, path, hint, source_line=self.line(span.line))


def _span(src: SourceFile, mark) -> Span:
    return Span(src.path, mark.line + 1, mark.column + 1) if mark is not None else Span(src.path)


def read_text(path: str | Path, display: str | None = None) -> tuple[SourceFile, list[Diagnostic]]:
    """Read a user file as UTF-8 text, bounded in size."""
    display = display or str(path)
    src = SourceFile(display)
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        return src, [Diagnostic("ND100", "file not found", Span(display),
                                hint="check the path; it is relative to the current directory")]
    except OSError as e:
        return src, [Diagnostic("ND100", f"cannot read file: {e.strerror or e}", Span(display))]
    if p.is_dir():
        return src, [Diagnostic("ND100", "is a directory, not a spec file", Span(display),
                                hint="pass a .yaml file, or a glob such as models/*.yaml")]
    if size > MAX_SPEC_BYTES:
        return src, [Diagnostic(
            "ND102", f"file is {size} bytes; specs are limited to {MAX_SPEC_BYTES} bytes",
            Span(display), hint="put large arrays in .npy/.npz files and reference them with `file:`")]
    try:
        raw = p.read_bytes()
    except OSError as e:
        return src, [Diagnostic("ND100", f"cannot read file: {e.strerror or e}", Span(display))]
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        return src, [Diagnostic("ND101", "file contains NUL bytes (binary data, not a YAML spec)",
                                Span(display, line, 1), hint="is this the right file?")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        return src, [Diagnostic("ND101", f"byte 0x{raw[e.start]:02x} is not valid UTF-8",
                                Span(display, line, col), hint="save the file as UTF-8 text")]
    src.text = text
    src.lines = text.splitlines()
    return src, []


class _TooDeep(Exception):
    def __init__(self, mark):
        super().__init__("nesting too deep")
        self.mark = mark


class _DepthLimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader whose composer counts nesting. The composer recurses once per level
    (its scanner and parser do not), so a 10,000-deep ``[[[[...`` would exhaust Python's stack
    before anything could look at it; here composing stops at the first node deeper than
    :data:`MAX_DEPTH` (the root is depth 0), having read no further than that node."""

    def __init__(self, stream):
        super().__init__(stream)
        self._nd_depth = 0

    def compose_node(self, parent, index):
        self._nd_depth += 1
        try:
            if self._nd_depth > MAX_DEPTH + 1:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._nd_depth -= 1


def _too_deep(src: SourceFile, mark) -> Diagnostic:
    return src.diag("ND102", _span(src, mark), f"nesting deeper than {MAX_DEPTH} levels",
                    hint="a spec needs only a few levels of lists and mappings; is a bracket or an "
                         "indentation wrong?")


def parse_yaml(src: SourceFile) -> tuple[YNode | None, list[Diagnostic]]:
    """Parse ``src.text`` into located nodes. Returns (root or None, diagnostics)."""
    loader = _DepthLimitedLoader(src.text)
    diags: list[Diagnostic] = []
    try:
        if not loader.check_node():
            return None, [src.diag("ND104", Span(src.path, 1, 1), "the file is empty",
                                   hint="start from an example in models/ or docs/spec.md")]
        node = loader.get_node()
        if loader.check_node():
            end = node.end_mark.line if node is not None else 0
            sep = next((i for i in range(end, len(src.lines)) if src.lines[i].startswith(("---", "..."))), None)
            extra = loader.get_node()
            where = Span(src.path, sep + 1, 1) if sep is not None else _span(src, extra.start_mark)
            return None, [src.diag("ND105", where,
                                   "a spec file holds one YAML document; found a second one",
                                   hint="remove the '---' separator or split the file")]
    except _TooDeep as e:
        return None, [_too_deep(src, e.mark)]
    except yaml.MarkedYAMLError as e:
        return None, [_syntax_diag(src, e)]
    except yaml.YAMLError as e:  # reader errors (control characters) etc.
        return None, [src.diag("ND103", Span(src.path, 1, 1), str(e).splitlines()[0])]
    finally:
        loader.dispose()

    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
        return None, [src.diag("ND104", Span(src.path, 1, 1), "the document is empty",
                               hint="start from an example in models/ or docs/spec.md")]
    walker = _Walker(src, diags)
    root = walker.walk(node, 0, set())
    return root, diags


def _syntax_diag(src: SourceFile, e: yaml.MarkedYAMLError) -> Diagnostic:
    problem = (e.problem or "syntax error").strip()
    context = (e.context or "").strip()
    mark, ctx = e.problem_mark, e.context_mark
    at_end = mark is None or mark.line >= len(src.lines) or "end of stream" in problem
    hint = "check indentation and that ':' is followed by a space"
    if "'\\t'" in problem or "\t" in problem:
        hint = "YAML does not allow tabs for indentation; use spaces"
    elif "quoted scalar" in context:
        hint = "a quoted string is not closed: add the closing quote"
    elif "flow sequence" in context or "flow mapping" in context:
        hint = "a '[' or '{' is not closed, or items are missing commas"
    if at_end and ctx is not None:
        # e.g. an unclosed quote: the end of the file is where YAML noticed, not where it is
        msg = f"{problem} ({context} that starts here)"
        return src.diag("ND103", _span(src, ctx), msg, hint=hint)
    msg = problem
    if context:
        msg += f" ({context}" + (f" that starts on line {ctx.line + 1}" if ctx is not None and ctx.line != mark.line else "") + ")"
    return src.diag("ND103", _span(src, mark), msg, hint=hint)


class _TooBig(Exception):
    pass


class _Walker:
    def __init__(self, src: SourceFile, diags: list[Diagnostic]):
        self.src = src
        self.diags = diags
        self.count = 0
        self.constructor = yaml.SafeLoader("")

    def walk(self, node: yaml.Node, depth: int, stack: set[int]) -> YNode | None:
        try:
            return self._walk(node, depth, stack)
        except _TooBig:
            return None

    def _walk(self, node: yaml.Node, depth: int, stack: set[int]) -> YNode:
        self.count += 1
        span = _span(self.src, node.start_mark)
        if self.count > MAX_NODES:
            self.diags.append(self.src.diag(
                "ND102", span, f"document expands to more than {MAX_NODES} nodes",
                hint="anchors/aliases that multiply content are not allowed"))
            raise _TooBig
        if depth > MAX_DEPTH:  # through aliases: the composer has seen each level only once
            self.diags.append(_too_deep(self.src, node.start_mark))
            raise _TooBig
        if id(node) in stack:
            self.diags.append(self.src.diag("ND107", span, "recursive alias",
                                            hint="an alias may not refer to its own anchor"))
            return YScalar(None, span, "tag:yaml.org,2002:null")
        if isinstance(node, yaml.ScalarNode):
            try:
                value = self.constructor.construct_object(node, deep=True)
            except yaml.constructor.ConstructorError as e:
                self.diags.append(self.src.diag(
                    "ND107", span, f"tag {node.tag!r} is not allowed" if node.tag.startswith("!")
                    or "python" in node.tag else (e.problem or "cannot read value"),
                    hint="specs are plain data: remove the '!' tag"))
                return YScalar(None, span, node.tag, invalid=True)
            except (ValueError, OverflowError) as e:
                self.diags.append(self.src.diag("ND203", span, f"cannot read value: {e}"))
                return YScalar(None, span, node.tag, invalid=True)
            return YScalar(value, span, node.tag, quoted=node.style in ("'", '"'))
        if node.tag not in ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map", "tag:yaml.org,2002:omap"):
            self.diags.append(self.src.diag("ND107", span, f"tag {node.tag!r} is not allowed",
                                            hint="specs are plain data: remove the '!' tag"))
            return YScalar(None, span, node.tag, invalid=True)
        stack = stack | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            return YList([self._walk(n, depth + 1, stack) for n in node.value], span)
        entries: dict[str, tuple[Span, YNode]] = {}
        for knode, vnode in node.value:
            kspan = _span(self.src, knode.start_mark)
            if knode.tag == "tag:yaml.org,2002:merge":
                self.diags.append(self.src.diag("ND107", kspan, "merge keys ('<<') are not supported",
                                                hint="write the keys out"))
                continue
            if not isinstance(knode, yaml.ScalarNode):
                self.diags.append(self.src.diag("ND203", kspan, "mapping keys must be plain names"))
                continue
            key = knode.value
            if key in entries:
                first = entries[key][0]
                self.diags.append(self.src.diag(
                    "ND106", kspan, f"duplicate key '{key}' (first defined on line {first.line})",
                    hint="YAML keeps only the last value; remove one of them"))
                continue
            entries[key] = (kspan, self._walk(vnode, depth + 1, stack))
        return YMap(entries, span)


def load_yaml_file(path: str | Path, display: str | None = None):
    """Read and parse ``path``. Returns (SourceFile, root node or None, diagnostics)."""
    src, diags = read_text(path, display)
    if diags:
        return src, None, diags
    root, diags = parse_yaml(src)
    return src, root, diags
