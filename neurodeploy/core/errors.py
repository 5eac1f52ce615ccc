"""Diagnostics and the error hierarchy.

Every problem found in a user's input becomes a :class:`Diagnostic` that points at the user's
source (file, line, column, key path), carries a stable code from :data:`CODES`, a one-line
message and, when a fix can be guessed, a hint. Loading collects *all* diagnostics before it
fails, and the CLI renders them either for people (source line + caret) or as JSON records.

Exit codes used by the CLI (and by :attr:`NeurodeployError.exit_code`):

====  =====================================================
0     success
1     invalid input (spec, target, data file)
2     usage error (bad command line)
3     backend or runtime failure, or feature not implemented yet
====  =====================================================
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3

#: Stable error codes. Never renumber; add new codes at the end of their group.
CODES: dict[str, str] = {
    # reading the file
    "ND100": "file cannot be read",
    "ND101": "file is not UTF-8 text",
    "ND102": "file or document too large",
    "ND103": "YAML syntax error",
    "ND104": "empty document",
    "ND105": "more than one YAML document",
    "ND106": "duplicate key",
    "ND107": "YAML tag or construct not allowed",
    # structure and types
    "ND200": "wrong document shape",
    "ND201": "unknown key",
    "ND202": "missing required key",
    "ND203": "wrong type",
    "ND204": "invalid choice",
    "ND205": "value out of range",
    "ND206": "size too large",
    "ND207": "conflicting keys",
    # units
    "ND300": "malformed quantity",
    "ND301": "unknown unit",
    "ND302": "dimension mismatch",
    "ND303": "missing unit",
    # registries
    "ND400": "unknown neuron model",
    "ND401": "unknown parameter",
    "ND402": "unknown state variable",
    "ND403": "unknown plasticity rule",
    "ND404": "unknown block kind",
    "ND405": "unknown target",
    # references and shapes
    "ND500": "duplicate name",
    "ND501": "dangling reference",
    "ND502": "forbidden cycle",
    "ND503": "shape mismatch",
    "ND504": "index out of range",
    "ND505": "invalid connection",
    # data files
    "ND600": "data file not found",
    "ND601": "data file not readable",
    # versions
    "ND700": "unsupported spec version",
}


@dataclass(frozen=True)
class Span:
    """A place in a source file. ``line`` and ``col`` are 1-based; 0 means unknown."""

    file: str
    line: int = 0
    col: int = 0


@dataclass(frozen=True)
class Diagnostic:
    """One problem in the user's input, located in the user's source."""

    code: str
    message: str
    span: Span
    path: str = ""  # key path, e.g. "populations[1].params.tau_m"
    hint: str | None = None
    severity: str = "error"
    source_line: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.code not in CODES:  # programming error, not user input
            raise ValueError(f"unregistered diagnostic code {self.code!r}")

    @property
    def location(self) -> str:
        s = self.span
        if s.line:
            return f"{s.file}:{s.line}:{s.col}"
        return s.file

    def to_json(self) -> dict:
        d = {
            "code": self.code,
            "severity": self.severity,
            "file": self.span.file,
            "line": self.span.line,
            "col": self.span.col,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }
        return d

    def render(self, color: bool = False) -> str:
        red, bold, dim, reset = ("\033[31m", "\033[1m", "\033[2m", "\033[0m") if color else ("",) * 4
        head = f"{bold}{self.location}{reset}: {red}{self.severity} {self.code}{reset}: {self.message}"
        if self.path:
            head += f" {dim}[{self.path}]{reset}"
        lines = [head]
        if self.source_line is not None and self.span.line:
            num = str(self.span.line)
            text = self.source_line.rstrip("\n").expandtabs(1)
            lines.append(f" {num} | {text}")
            caret_at = max(self.span.col - 1, 0)
            lines.append(f" {' ' * len(num)} | {' ' * caret_at}{red}^{reset}")
        if self.hint:
            lines.append(f"   hint: {self.hint}")
        return "\n".join(lines)


class NeurodeployError(Exception):
    """Base of every error neurodeploy raises on purpose. Carries the CLI exit code."""

    exit_code = EXIT_BACKEND


class SpecError(NeurodeployError):
    """Invalid user input; carries every diagnostic that was found."""

    exit_code = EXIT_INVALID

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        n = len(self.diagnostics)
        first = self.diagnostics[0].render() if n else "invalid input"
        super().__init__(first if n == 1 else f"{n} problems; first:\n{first}")


class IRError(NeurodeployError):
    """An IR object that fails :func:`neurodeploy.spec.checks` (built in code, not from a spec)."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: Sequence["Problem"]):
        self.problems = list(problems)
        text = "; ".join(f"{p.path}: {p.message}" for p in self.problems[:5])
        more = f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"IR verification failed: {text}{more}")


class CompileError(NeurodeployError):
    """A valid model that cannot be compiled for the chosen target (it does not fit a limit,
    or a value cannot be represented). The message names the node, the quantity and the limit."""

    exit_code = EXIT_INVALID


class BackendError(NeurodeployError):
    """A backend could not run (missing package, runtime failure)."""

    exit_code = EXIT_BACKEND


class NotImplementedYet(NeurodeployError):
    """A command or feature that is part of the contract but has not landed yet."""

    exit_code = EXIT_BACKEND


class UsageError(NeurodeployError):
    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Problem:
    """A semantic problem found by IR verification, located by key path only.

    The spec loader turns these into :class:`Diagnostic` records by looking the key path up in
    the source map, so every semantic rule is written once (in ``ir.verify``).
    """

    code: str
    path: tuple  # key path as a tuple of str/int
    message: str
    hint: str | None = None


def close_matches(word: str, choices: Iterable[str], n: int = 1) -> list[str]:
    """The choices ``word`` is probably a misspelling of (at most ``n``; case-insensitive equal
    counts), best first."""
    choices = list(choices)
    close = difflib.get_close_matches(str(word), choices, n=n, cutoff=0.6)
    if not close:
        lower = {c.lower(): c for c in choices}
        if str(word).lower() in lower:
            close = [lower[str(word).lower()]]
    return close


def did_you_mean(word: str, choices: Iterable[str], n: int = 1) -> str | None:
    """A 'did you mean ...?' hint for a misspelt name, or None when nothing is close."""
    close = close_matches(word, choices, n)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return None


def one_of(choices: Iterable[str]) -> str:
    items = sorted(choices)
    return "expected one of: " + ", ".join(items)


def format_path(path: Sequence) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def diagnostics_to_json(diags: Sequence[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diags], indent=2)


__all__ = [
    "CODES",
    "Diagnostic",
    "Span",
    "Problem",
    "NeurodeployError",
    "SpecError",
    "IRError",
    "BackendError",
    "CompileError",
    "NotImplementedYet",
    "UsageError",
    "did_you_mean",
    "one_of",
    "format_path",
    "EXIT_OK",
    "EXIT_INVALID",
    "EXIT_USAGE",
    "EXIT_BACKEND",
    "asdict",
]
