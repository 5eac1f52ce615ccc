"""Shared helpers for the backend tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

#: Lava's CPU simulator is slow (~25-90 ms per step for the E/I network's 13 processes on 2
#: cores): backend tests run short
STEPS = {"ei_network": 150}


def shorten(net, steps=None):
    """``net`` with at most ``steps`` steps (default: STEPS for the model, else 600)."""
    steps = steps or STEPS.get(net.name, 600)
    return dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, steps=min(steps, net.simulation.steps)))


def with_all_spike_probes(net):
    """``net`` with a spike probe on every population that has none."""
    from neurodeploy.ir import Probe

    extra = tuple(Probe(f"{p.name}.all_spikes", p.name, "spikes") for p in net.populations
                  if not any(pb.target == p.name and pb.variable == "spikes" for pb in net.probes))
    return dataclasses.replace(net, probes=net.probes + extra)


def assert_fixed_run_matches_reference(arrays, X, r, T):
    """A Lava fixed-point run ``r`` (all of ``X`` in one batch) equals the numpy reference
    ``fixed_run`` bit for bit from the same initial counts, drive and PRNG states."""
    from neurodeploy.library.blocks.ipvae.reference import drive, ipvae_params, lateral_matrix
    from neurodeploy.library.blocks.ipvae.fixed import fixed_run, quantize_weights

    n, p, fmt = len(X), ipvae_params(arrays), r["format"]
    q, s = quantize_weights(-lateral_matrix(p))
    Wq = np.kron(np.eye(n, dtype=np.int64), 2 * q)
    u, z, zbar, _ = fixed_run(np.tile(fmt.q(p.u0), n), r["z0"].ravel(), fmt.q(drive(p, X)).ravel(), Wq,
                              s - 1 + fmt.frac_bits, r["state0"].ravel(), T, fmt)
    np.testing.assert_array_equal(r["u_q"].ravel(), u)
    np.testing.assert_array_equal(r["z"].ravel(), z)
    np.testing.assert_allclose(r["zbar"].ravel(), zbar, atol=1e-12)
    assert r["z"].sum() > 0


#: the shipped LCA dictionary of the digits coder (64 pixels x 256 atoms) and the parameters of
#: models/ipvae/lca_digits.yaml
LCA_DICT = Path(__file__).resolve().parents[2] / "models" / "weights" / "ipvae_digits" / "lca_dictionary.npz"
LCA_LAM, LCA_DT_TAU = 0.2, 0.1


def lca_dictionary() -> np.ndarray:
    with np.load(LCA_DICT, allow_pickle=False) as z:
        return np.asarray(z["Phi"], np.float64)
