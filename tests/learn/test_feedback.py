"""BP / FA / SS / KP / WM on a small MLP: BP equals autograd, KP's B converges to W^T with weight
decay (exactly (1-lambda)^t), WM's mirror estimate aligns with W^T from noise, SS/FA paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurodeploy.learn.feedback import RULES, FeedbackConfig, FeedbackNet, angle_deg, train_feedback

torch.set_num_threads(1)  # 2 shared CPU cores; these nets are tiny


def _batch(seed=0, n=16, d=7, k=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, k, (n,), generator=g)


def test_bp_gradients_equal_autograd():
    net = FeedbackNet((7, 9, 8, 4), "bp", seed=1, dtype=torch.float64)
    x, t = _batch()
    dW, db, _, _ = net.gradients(x, t)
    Ws = [w.clone().requires_grad_(True) for w in net.W]
    bs = [b.clone().requires_grad_(True) for b in net.b]
    h = x
    for l, (W, b) in enumerate(zip(Ws, bs)):
        h = h @ W.T + b
        if l < len(Ws) - 1:
            h = torch.tanh(h)
    torch.nn.functional.cross_entropy(h, t).backward()
    for a, w in zip(dW, Ws):
        torch.testing.assert_close(a, w.grad, rtol=1e-10, atol=1e-12)
    for a, b in zip(db, bs):
        torch.testing.assert_close(a, b.grad, rtol=1e-10, atol=1e-12)


def test_feedback_paths():
    net = FeedbackNet((7, 9, 8, 4), "fa", seed=2, dtype=torch.float64)
    x, t = _batch(1)
    # FA's error uses B, not W^T: hidden deltas differ from backprop, output deltas agree
    d_fa = net.gradients(x, t)[3]
    d_bp = net.gradients(x, t, rule="bp")[3]
    torch.testing.assert_close(d_fa[-1], d_bp[-1])
    assert angle_deg(d_fa[0], d_bp[0]) > 20
    B0 = [b.clone() for b in net.B]
    net.train_step(x, t, 0.1)
    for a, b in zip(B0, net.B):
        torch.testing.assert_close(a, b)            # FA never changes B
    # SS: feedback is a scaled sign(W)^T, the Gaussian-init angle is near arccos(sqrt(2/pi)) = 37 deg
    ss = FeedbackNet((200, 200, 10), "ss", seed=0, dtype=torch.float64)
    torch.testing.assert_close(torch.sign(ss.feedback(1)), torch.sign(ss.W[1]).T)
    assert ss.weight_angles()[0] == pytest.approx(math.degrees(math.acos(math.sqrt(2 / math.pi))), abs=1.0)
    with pytest.raises(ValueError, match="unknown rule"):
        FeedbackNet((3, 2), "dfa")


def test_kp_backward_matrix_converges_to_w_transpose_with_weight_decay():
    net = FeedbackNet((7, 9, 8, 4), "kp", seed=3, dtype=torch.float64)
    lam = 0.01
    gap0 = [float((W - B.T).norm()) for W, B in zip(net.W, net.B)]
    angle0 = net.weight_angles()
    g = torch.Generator().manual_seed(5)
    teacher = torch.randn(7, 4, generator=g, dtype=torch.float64)
    for step in range(1, 601):
        x = torch.randn(32, 7, generator=g, dtype=torch.float64)
        net.train_step(x, (x @ teacher).argmax(1), 0.5, lam)
    for l, (W, B) in enumerate(zip(net.W, net.B)):
        assert float((W - B.T).norm()) == pytest.approx(gap0[l] * (1 - lam) ** 600, rel=1e-6)
    assert all(a0 > 60 for a0 in angle0) and all(a < 1 for a in net.weight_angles()), net.weight_angles()
    assert min(float(W.norm()) for W in net.W) > 1.0   # aligned because W stayed large, not because W -> 0


def test_wm_mirror_estimate_aligns_with_w_transpose():
    net = FeedbackNet((20, 30, 25, 10), "wm", seed=4, dtype=torch.float64)
    assert min(net.weight_angles()) > 60
    for _ in range(1000):
        net.mirror_step(eta_b=0.01, sigma=1.0, samples=64, decay=0.01)
    angles = net.weight_angles()
    assert max(angles) < 8, angles
    # scale: B -> (eta sigma^2 / lambda) W^T = W^T
    for l in (1, 2):
        assert net.norm_ratios()[l - 1] == pytest.approx(1.0, abs=0.1)


def test_training_is_seeded_and_learns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    data = (x[:150], y[:150], x[150:], y[150:])
    for rule in RULES:
        cfg = FeedbackConfig(sizes=(8, 16, 2), rule=rule, epochs=15, batch=16, lr=0.1, seed=3)
        _, h1 = train_feedback(cfg, data)
        _, h2 = train_feedback(cfg, data)
        assert h1["test_acc"] == h2["test_acc"], rule
        assert h1["test_acc"][-1] > 0.85, (rule, h1["test_acc"])
