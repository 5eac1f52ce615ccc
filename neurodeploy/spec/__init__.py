"""Spec v1: YAML with physical units -> IR, with located diagnostics; the semantic checks."""

from .checks import problems, verify
from .loader import SPEC_VERSIONS, check, load

__all__ = ["SPEC_VERSIONS", "check", "load", "problems", "verify"]
