"""Start-up: `import neurodeploy`, `neurodeploy --help` and `neurodeploy check` import none of the
heavy libraries (module sets, not times: the times are measured, see docs/running.md).

Each case runs in a fresh interpreter (this test process has imported everything already)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..conftest import ROOT

#: never imported unless a command needs them (a backend's run, plotting, interop, data frames)
HEAVY = ("torch", "brian2", "lava", "matplotlib", "pandas", "scipy", "sympy", "Cython", "nir", "onnx",
         "onnxruntime", "h5py", "sklearn", "skimage", "neo", "quantities", "pynwb", "elephant", "snntorch")

PROBE = """
import json, sys
{body}
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))
"""


def _imported(body: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


CASES = {
    "import neurodeploy": "import neurodeploy",
    "neurodeploy --help": ("import contextlib, io\nfrom neurodeploy.app.cli import main\n"
                           "with contextlib.redirect_stdout(io.StringIO()):\n"
                           "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"),
    "neurodeploy check": ("import contextlib, io\nfrom neurodeploy.app.cli import main\n"
                          "with contextlib.redirect_stdout(io.StringIO()):\n"
                          "    assert main(['check', 'models/ei_network.yaml']) == 0"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_no_heavy_import(case):
    loaded = _imported(CASES[case])
    assert "neurodeploy" in loaded and "numpy" in loaded  # the probe really ran
    assert not loaded & set(HEAVY), f"{case} imports {sorted(loaded & set(HEAVY))}"
