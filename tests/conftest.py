from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted((ROOT / "models").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _repo_root_cwd(monkeypatch):
    """Tests use paths relative to the repository root, as the README's commands do."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NO_COLOR", "1")
    yield


def rel(p: Path) -> str:
    return os.path.relpath(p, ROOT)
