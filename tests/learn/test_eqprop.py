"""Energy model with hard-sigmoid rate and EqProp: fixed points, update vs finite differences,
early inference vs backprop deltas, feedforward initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodeploy.learn.eqprop import (
    EnergyNet,
    EqPropConfig,
    consistency_update,
    cosine,
    early_inference,
    finite_difference_grad,
    iterations_to_tol,
    onehot,
    rho,
    train_eqprop,
)

F64 = torch.float64
torch.set_num_threads(1)  # 2 shared CPU cores; these nets are tiny


def tiny(sizes=(8, 10, 10, 4), seed=3, batch=6):
    net = EnergyNet(sizes, seed=seed, dtype=F64)
    for w in net.W:
        w.mul_(0.6)
    for b in net.b:
        b.fill_(0.4)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, sizes[0], generator=g, dtype=F64)
    d = onehot(torch.arange(batch) % sizes[-1], sizes[-1], dtype=F64)
    return net, x, d


def test_relaxation_reaches_a_fixed_point_and_lowers_the_energy():
    net, x, d = tiny()
    s0 = net.zeros(len(x))
    s, res = net.relax(x, s0, 400, 0.5, trace_residual=True)
    assert res[-1] < 1e-10 and res[0] > 0.1
    R = [rho(dr) for dr in net.drives(x, s)]
    for a, b in zip(R, s):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)     # s = clip(b + W rho(s))
    e = [float(net.energy(x, net.relax(x, s0, k, 0.2)[0]).sum()) for k in (1, 5, 20, 80)]
    assert all(b <= a + 1e-12 for a, b in zip(e, e[1:])), e


def test_eqprop_update_matches_finite_differences_at_small_beta():
    net, x, d = tiny((6, 8, 8, 3), seed=3, batch=5)
    s0, _ = net.relax(x, net.zeros(len(x)), 400, 1.0)
    fd = finite_difference_grad(net, x, d, n_iter=60, eps=1.0, h=1e-6)
    dW, _, _ = net.eqprop_update(x, d, s0, 0.01, 300, 0.5)
    cos = [cosine(a, -f) for a, f in zip(dW, fd)]
    assert min(cos) >= 0.99, cos
    dW_sym, _, _ = net.eqprop_update(x, d, s0, 0.01, 300, 0.5, symmetric=True)
    assert min(cosine(a, -f) for a, f in zip(dW_sym, fd)) >= 0.99
    dW_big, _, _ = net.eqprop_update(x, d, s0, 0.5, 300, 0.5)   # finite-beta bias is visible
    assert min(cosine(a, -f) for a, f in zip(dW_big, fd)) < min(cos)


def test_early_inference_first_arrival_follows_backprop_deltas():
    net, x, d = tiny((10, 12, 12, 4))
    s, _ = net.relax(x, net.zeros(len(x)), 600, 0.5)
    r = early_inference(net, x, s, d, eta=1e-3, eps=0.1, n_steps=6)
    assert r["first_arrival_step"] == [2, 1]
    assert min(r["cos_first_arrival"]) > 0.999
    assert np.isnan(r["cos"][0][0]) and r["norm"][0][0] == 0.0     # nothing arrives before its time
    assert r["norm"][1][0] > r["norm"][0][1] > 0                   # the signal shrinks per layer


def test_feedforward_init_helps_once_the_branches_are_consistent():
    # untrained weights: the top-down input into the hidden layer is unrelated to the bottom-up one
    # and the doubled-drive sweep saves (almost) nothing; after the local consistency rule, it
    # starts close to the fixed point and needs far fewer iterations than a start from zero
    net, x, _ = tiny((6, 8, 8), seed=1, batch=5)
    tol = 1e-3
    z0, _ = iterations_to_tol(net, x, net.zeros(len(x)), tol, 0.5)
    f0, _ = iterations_to_tol(net, x, net.feedforward_init(x), tol, 0.5)
    assert float(f0.float().mean()) > 0.8 * float(z0.float().mean())
    s = net.zeros(len(x))
    for _ in range(300):
        s, _ = net.relax(x, s, 20, 0.5)
        mism = consistency_update(net, x, s, 0.2)
    assert mism[0] < 0.02
    z1, _ = iterations_to_tol(net, x, net.zeros(len(x)), tol, 0.5)
    f1, trace = iterations_to_tol(net, x, net.feedforward_init(x), tol, 0.5)
    assert float(f1.float().mean()) < 0.5 * float(z1.float().mean()), (f1, z1)
    assert trace[0] < 0.05
    with pytest.raises(ValueError, match="doubled"):
        net.feedforward_init(x, mode="triple")


def test_train_eqprop_learns_digits_and_is_seeded():
    from neurodeploy.learn.digits import digits_split

    xtr, ytr, xte, yte = digits_split()
    data = (xtr, ytr, xte[:200], yte[:200])
    cfg = EqPropConfig(epochs=3, seed=1, eval_iter=50)
    _, h1 = train_eqprop(cfg, data)
    _, h2 = train_eqprop(cfg, data)
    assert h1["test_err"] == h2["test_err"]
    assert h1["test_err"][-1] < 0.35 and h1["test_err"][-1] < h1["test_err"][0], h1["test_err"]
    with pytest.raises(ValueError, match="alphas"):
        EqPropConfig(sizes=(6, 16, 2), alphas=(0.1,))
