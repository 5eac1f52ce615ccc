from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted((ROOT / "models").glob("*.yaml"))


def pytest_configure(config):
    """The interrupt tests send the process SIGINT (a Ctrl-C). A shell without job control starts
    background commands with SIGINT ignored; give the suite Python's usual handler so that it
    behaves the same however it was launched (the handler Brian2 chains to at import included)."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _repo_root_cwd(monkeypatch):
    """Tests use paths relative to the repository root, as the README's commands do."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NO_COLOR", "1")
    yield


def rel(p: Path) -> str:
    return os.path.relpath(p, ROOT)
