r"""Backprop and its weight-transport-free relatives on a fully connected net, batched in PyTorch.

Rules (research note learning_rules.md section 5; Akrout et al. 2019 and its baselines):

* ``bp``: :math:`\delta_l = \phi'(v_l) \odot (W_{l+1}^T \delta_{l+1})`.
* ``fa`` (feedback alignment): the error goes back through a fixed random ``B_{l+1}`` instead of
  :math:`W_{l+1}^T`.
* ``ss`` (sign symmetry, uSF): :math:`B_{l+1} = \mathrm{rms}(W_{l+1})\,\mathrm{sign}(W_{l+1})^T`,
  recomputed every step (one bit per synapse is transported).
* ``kp`` (Kolen-Pollack): ``B`` gets the transposed forward update and the same weight decay,
  :math:`\Delta B_{l+1} = -\eta\, y_l \delta_{l+1}^T - \lambda B_{l+1}`, so
  :math:`W - B^T` shrinks by :math:`(1-\lambda)` per step.
* ``wm`` (weight mirror): engaged steps as FA; after each engaged step a mirror step in which each
  layer fires fresh zero-mean noise :math:`\xi_l` and
  :math:`\Delta B_{l+1} = \eta_B \langle \xi_l (W_{l+1}\xi_l)^T \rangle - \lambda_{WM} B_{l+1}`
  (expected fixed point :math:`(\eta_B\sigma^2/\lambda_{WM}) W_{l+1}^T`).

Forward: tanh hidden units, softmax output, mean cross-entropy. Conventions: ``W[l]`` is
(out, in), ``B[l]`` is (in, out); ``B[0]`` (into the input) is never used. Every update is local:
the forward synapse uses its presynaptic activity and the postsynaptic error; only the path the
error takes back differs between rules.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

RULES = ("bp", "fa", "ss", "kp", "wm")


@dataclass
class FeedbackConfig:
    sizes: tuple = (64, 64, 64, 64, 10)
    rule: str = "bp"
    lr: float = 0.05
    batch: int = 32
    epochs: int = 200
    weight_decay: float = 5e-4      # lambda, applied per step as W -= lambda W (not scaled by lr)
    seed: int = 0
    wm_lr: float = 0.01             # eta_B
    wm_sigma: float = 1.0
    wm_samples: int = 32
    wm_decay: float | None = None   # lambda_WM; None -> eta_B sigma^2 (fixed point B = W^T)
    metric_samples: int = 256       # training samples used for the delta angle

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; expected one of {', '.join(RULES)}")
        self.sizes = tuple(int(s) for s in self.sizes)
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(f"sizes must list at least two positive layer widths, got {self.sizes}")

    def to_dict(self):
        return asdict(self)


def angle_deg(a: torch.Tensor, c: torch.Tensor) -> float:
    """Angle between two arrays flattened to vectors, in degrees (0 = same direction)."""
    a, c = a.reshape(-1).double(), c.reshape(-1).double()
    cos = torch.dot(a, c) / (a.norm() * c.norm()).clamp_min(1e-300)
    return float(torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0))))


class FeedbackNet:
    """A tanh MLP trained with one of :data:`RULES`; state lives on ``device`` in ``dtype``."""

    def __init__(self, sizes, rule: str = "bp", seed: int = 0, device=None, dtype=torch.float32):
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")
        self.sizes, self.rule = tuple(sizes), rule
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        g = torch.Generator().manual_seed(seed)
        self.gen = g
        self.W, self.b, self.B = [], [], []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            std = 1.0 / math.sqrt(n_in)
            self.W.append((torch.randn(n_out, n_in, generator=g, dtype=torch.float64) * std).to(self.device, dtype))
            self.b.append(torch.zeros(n_out, device=self.device, dtype=dtype))
            # independent random feedback with the same scale as W (FA, KP, WM start here)
            self.B.append((torch.randn(n_in, n_out, generator=g, dtype=torch.float64) * std).to(self.device, dtype))
        self.steps = 0

    # ---------------------------------------------------------------- forward / backward
    def forward(self, x):
        ys, vs = [x], []
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            v = ys[-1] @ W.T + b
            vs.append(v)
            ys.append(v if l == len(self.W) - 1 else torch.tanh(v))
        return ys, vs

    def feedback(self, l: int, rule: str | None = None) -> torch.Tensor:
        """The (in, out) matrix that carries the error back through weight layer ``l``."""
        rule = rule or self.rule
        W = self.W[l]
        if rule == "bp":
            return W.T
        if rule == "ss":
            return W.pow(2).mean().sqrt() * torch.sign(W).T
        return self.B[l]

    def backward(self, ys, vs, delta_out, rule: str | None = None):
        """Deltas (dLoss/dv) for every weight layer, the error going back along ``rule``'s path."""
        deltas = [None] * len(self.W)
        deltas[-1] = delta_out
        for l in range(len(self.W) - 1, 0, -1):
            deltas[l - 1] = (deltas[l] @ self.feedback(l, rule).T) * (1.0 - ys[l].pow(2))
        return deltas

    def output_delta(self, logits, target):
        """Mean softmax cross-entropy: dL/dlogits = (p - onehot) / batch."""
        p = torch.softmax(logits, dim=1)
        p[torch.arange(len(target), device=p.device), target] -= 1.0
        return p / len(target)

    def gradients(self, x, target, rule: str | None = None):
        """(dW, db) lists the rule uses in place of the loss gradient (exactly it for ``bp``)."""
        ys, vs = self.forward(x)
        deltas = self.backward(ys, vs, self.output_delta(vs[-1], target), rule)
        return [d.T @ y for d, y in zip(deltas, ys[:-1])], [d.sum(0) for d in deltas], ys, deltas

    # ---------------------------------------------------------------- learning
    def train_step(self, x, target, lr: float, weight_decay: float = 0.0):
        dW, db, ys, deltas = self.gradients(x, target)
        for l in range(len(self.W)):
            self.W[l].mul_(1.0 - weight_decay).sub_(lr * dW[l])
            self.b[l].sub_(lr * db[l])
            if self.rule == "kp":  # transposed update, identical decay
                self.B[l].mul_(1.0 - weight_decay).sub_(lr * dW[l].T)
        self.steps += 1

    def mirror_step(self, eta_b: float, sigma: float, samples: int, decay: float):
        """Weight-mirror mode: fresh noise per layer, Hebbian B update with decay (linear mirror path)."""
        for l in range(1, len(self.W)):
            xi = torch.randn(samples, self.sizes[l], generator=self.gen, dtype=torch.float64)
            xi = (xi * sigma).to(self.device, self.dtype)
            post = xi @ self.W[l].T                     # what layer l+1 receives through W
            self.B[l].mul_(1.0 - decay).add_(eta_b * (xi.T @ post) / samples)

    # ---------------------------------------------------------------- metrics
    @torch.no_grad()
    def accuracy(self, x, target) -> float:
        return float((self.forward(x)[1][-1].argmax(1) == target).float().mean())

    def weight_angles(self) -> list[float]:
        """Angle between the feedback path and W^T for weight layers 1..L-1 (bottom -> top)."""
        return [angle_deg(self.feedback(l), self.W[l].T) for l in range(1, len(self.W))]

    def delta_angles(self, x, target) -> list[float]:
        """Angle between the rule's hidden deltas and the true backprop deltas (same forward pass,
        same output error), per hidden layer bottom -> top."""
        ys, vs = self.forward(x)
        d_out = self.output_delta(vs[-1], target)
        mine = self.backward(ys, vs, d_out)
        true = self.backward(ys, vs, d_out, "bp")
        return [angle_deg(m, t) for m, t in zip(mine[:-1], true[:-1])]

    def norm_ratios(self) -> list[float]:
        return [float(self.feedback(l).norm() / self.W[l].norm()) for l in range(1, len(self.W))]


def train_feedback(cfg: FeedbackConfig, data, device=None, progress=None, log_every: int = 1):
    """Train on ``data = (xtr, ytr, xte, yte)`` (numpy); returns a dict of per-epoch history.

    Seeded: the init, the minibatch order and the mirror noise all come from ``cfg.seed``.
    """
    xtr, ytr, xte, yte = data
    dev = torch.device(device) if device is not None else torch.device("cpu")
    Xtr = torch.as_tensor(xtr, dtype=torch.float32, device=dev)
    Ytr = torch.as_tensor(ytr, dtype=torch.long, device=dev)
    Xte = torch.as_tensor(xte, dtype=torch.float32, device=dev)
    Yte = torch.as_tensor(yte, dtype=torch.long, device=dev)
    net = FeedbackNet(cfg.sizes, cfg.rule, cfg.seed, dev)
    rng = np.random.default_rng(cfg.seed)
    lam_wm = cfg.wm_decay if cfg.wm_decay is not None else cfg.wm_lr * cfg.wm_sigma ** 2
    n = len(Xtr)
    steps_per_epoch = math.ceil(n / cfg.batch)
    if cfg.rule == "wm":  # initial mirror pass: one epoch's worth of mirror batches
        for _ in range(steps_per_epoch):
            net.mirror_step(cfg.wm_lr, cfg.wm_sigma, cfg.wm_samples, lam_wm)
    msel = torch.as_tensor(rng.choice(n, size=min(cfg.metric_samples, n), replace=False), device=dev)
    hist = {"epoch": [], "train_acc": [], "test_acc": [], "weight_angle": [], "delta_angle": [], "norm_ratio": []}

    def log(epoch):
        hist["epoch"].append(epoch)
        hist["train_acc"].append(net.accuracy(Xtr, Ytr))
        hist["test_acc"].append(net.accuracy(Xte, Yte))
        hist["weight_angle"].append(net.weight_angles())
        hist["delta_angle"].append(net.delta_angles(Xtr[msel], Ytr[msel]))
        hist["norm_ratio"].append(net.norm_ratios())

    log(0)
    with torch.no_grad():
        for epoch in range(1, cfg.epochs + 1):
            perm = torch.as_tensor(rng.permutation(n), device=dev)
            for k in range(steps_per_epoch):
                idx = perm[k * cfg.batch:(k + 1) * cfg.batch]
                net.train_step(Xtr[idx], Ytr[idx], cfg.lr, cfg.weight_decay)
                if cfg.rule == "wm":
                    net.mirror_step(cfg.wm_lr, cfg.wm_sigma, cfg.wm_samples, lam_wm)
            if epoch % log_every == 0 or epoch == cfg.epochs:
                log(epoch)
            if progress is not None:
                progress(epoch, hist)
    hist["steps"] = net.steps
    hist["config"] = cfg.to_dict()
    return net, hist
