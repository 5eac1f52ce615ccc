"""neurodeploy's NIR exports read by a peer framework (snnTorch), not only by ``nir.read``.

The NIR paper's single-LIF neuron is imported, exported again by neurodeploy, loaded with
snnTorch's own NIR importer and driven with the recorded input: it must spike at the steps
snnTorch itself recorded for the original file (``lif_snntorch.csv``, from the paper).
"""

from __future__ import annotations

import warnings

import nir
import numpy as np
import torch
from snntorch import import_nir as snntorch_import  # requirements-dev.txt

from neurodeploy.interop.nir import export_nir, import_nir


FIX = "tests/fixtures/nir-paper-lif"


def _drive(module, x: np.ndarray) -> np.ndarray:
    state, out = None, []
    with torch.no_grad():
        for t in range(len(x)):
            xt = torch.tensor(x[t], dtype=torch.float32).reshape(1, -1)
            r = module(xt) if state is None else module(xt, state)
            o, state = r if isinstance(r, tuple) else (r, state)
            out.append(o.detach().numpy().reshape(-1))
    return np.array(out)


def test_snntorch_runs_our_export_of_the_nir_paper_lif(tmp_path):
    csv = np.loadtxt(f"{FIX}/lif_snntorch.csv", delimiter=",")
    expected = np.flatnonzero(csv[:, 2])
    assert expected.tolist() == [460, 510, 710, 760]  # the paper's recorded snnTorch run
    net, _ = import_nir(f"{FIX}/lif_norse.nir", tmp_path / "lif.yaml")
    export_nir(net, tmp_path / "lif.nir")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = snntorch_import.import_from_nir(nir.read(tmp_path / "lif.nir"))
        spikes = _drive(module, csv[:, :1])
    assert np.flatnonzero(spikes[:, 0]).tolist() == expected.tolist()


def test_snntorch_loads_and_runs_our_export_of_a_recurrent_cuba_network(tmp_path):
    net, _ = import_nir("tests/fixtures/nir-graphs/braille_norse.nir", tmp_path / "braille.yaml")
    export_nir(net, tmp_path / "braille.nir")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = snntorch_import.import_from_nir(nir.read(tmp_path / "braille.nir"))
        x = (np.random.default_rng(0).random((20, 12)) < 0.3).astype(np.float32)
        out = _drive(module, x)
    assert out.shape == (20, 7) and np.all(np.isin(out, (0.0, 1.0)))
