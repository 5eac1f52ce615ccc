"""Fixtures shared by the iP-VAE backend tests (test_ipvae_spiking.py, test_ipvae_pc.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

#: the shipped digits coder (trained by `neurodeploy train models/train/ipvae_digits.yaml`)
IPVAE_WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights" / "ipvae_digits" / "decoder.npz"


@pytest.fixture(scope="module")
def arrays():
    """The shipped digits coder's arrays (Phi, u0, b, eta, sigma, caps)."""
    with np.load(IPVAE_WEIGHTS, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def X():
    """The held-out digits (the coder never saw them)."""
    from neurodeploy.core.data import train_test

    return train_test("digits")[1]

