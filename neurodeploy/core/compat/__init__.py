"""Compatibility shims for third-party packages that do not support our Python version as-is."""
