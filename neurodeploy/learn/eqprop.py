r"""The leaky-integrator energy model with hard-sigmoid rate, and Equilibrium Propagation, in PyTorch.

Research note learning_rules.md sections 3 and 4 (Bengio & Fischer 2015; Scellier & Bengio 2017;
Bengio et al. 2016, feedforward initialisation).

Layered Hopfield-like energy, symmetric weights ``W[l]`` of shape (n_l, n_{l+1}) between layer
``l`` and ``l+1`` (layer 0 is the clamped input)::

    E(s) = sum_i s_i^2/2 - sum_l rho(s_l) W_l rho(s_{l+1}) - sum_i b_i rho(s_i)
    R(s) = rho'(s) * (b + W rho(s))         (the drive each unit receives, gated by rho')
    s <- clip(s + eps * (drive - s), 0, 1)  (leaky integration; inside (0, 1) this is s + eps (R(s) - s))

``rho(s) = clip(s, 0, 1)`` (hard sigmoid). All layers update synchronously. The fixed-point
residual reported per iteration is ``max |clip(drive, 0, 1) - s|`` over units and samples: the
projected form of ``R(s) - s``, which is zero exactly at the fixed points of the clipped dynamics
(``R(s) - s`` itself is non-zero at a unit held on a bound, e.g. ``s = 1`` with drive 1.3).

EqProp: free phase (beta = 0) to ``s0``; nudged phase from ``s0`` with the extra output force
``beta (d - y)`` (cost ``C = 1/2 |y - d|^2``) to ``s_beta``; update
``dW_l = (alpha_l / beta) <rho(s_l^b) rho(s_{l+1}^b)^T - rho(s_l^0) rho(s_{l+1}^0)^T>`` -- the
difference of co-activity between the two phase ends, i.e. the time integral of
``d/dt [rho_i rho_j]`` over the nudged phase (local: pre rate x post rate). ``symmetric=True``
uses the +beta and -beta phases instead of 0 and +beta (Laborieux et al. 2021).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch


def rho(s):
    return s.clamp(0.0, 1.0)


class EnergyNet:
    """Layered energy model; ``sizes[0]`` is the clamped input layer."""

    def __init__(self, sizes, seed: int = 0, device=None, dtype=torch.float32, init: str = "glorot"):
        self.sizes = tuple(int(s) for s in sizes)
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(f"sizes must list at least two positive layer widths, got {self.sizes}")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.gen = torch.Generator().manual_seed(seed)
        self.W, self.b = [], []
        for n_a, n_b in zip(self.sizes[:-1], self.sizes[1:]):
            lim = math.sqrt(6.0 / (n_a + n_b))  # Glorot uniform, as the reference code
            w = (torch.rand(n_a, n_b, generator=self.gen, dtype=torch.float64) * 2 - 1) * lim
            self.W.append(w.to(self.device, dtype))
            self.b.append(torch.zeros(n_b, device=self.device, dtype=dtype))

    # ------------------------------------------------------------------ dynamics
    def zeros(self, batch: int):
        return [torch.zeros(batch, n, device=self.device, dtype=self.dtype) for n in self.sizes[1:]]

    def drives(self, x, state):
        """``b + W rho(s)`` for every free layer (bottom-up plus top-down)."""
        r = [rho(x)] + [rho(s) for s in state]
        out = []
        for k in range(len(state)):  # free layer k is network layer k+1
            d = self.b[k] + r[k] @ self.W[k]
            if k + 1 < len(state):
                d = d + r[k + 2] @ self.W[k + 1].T
            out.append(d)
        return out

    def residual(self, x, state) -> float:
        """``max |clip(drive) - s|``: zero at a fixed point."""
        return max(float((d.clamp(0, 1) - s).abs().max()) for d, s in zip(self.drives(x, state), state))

    def step(self, x, state, eps: float, beta: float = 0.0, target=None, clamp_out=None):
        """One synchronous leaky-integration step. ``beta`` nudges the output toward ``target``;
        ``clamp_out`` (a tensor) holds the output layer fixed instead."""
        new = []
        for k, (d, s) in enumerate(zip(self.drives(x, state), state)):
            ds = d - s
            if k == len(state) - 1 and beta != 0.0:
                ds = ds + beta * (target - s)
            new.append((s + eps * ds).clamp(0.0, 1.0))
        if clamp_out is not None:
            new[-1] = clamp_out
        return new

    def relax(self, x, state, n_iter: int, eps: float, beta: float = 0.0, target=None,
              clamp_out=None, trace_residual: bool = False, tol: float | None = None):
        """Run ``n_iter`` steps (or until the residual < ``tol``); returns (state, residuals)."""
        res = []
        if trace_residual or tol is not None:
            res.append(self.residual(x, state))
        for _ in range(n_iter):
            if tol is not None and res[-1] < tol:
                break
            state = self.step(x, state, eps, beta, target, clamp_out)
            if trace_residual or tol is not None:
                res.append(self.residual(x, state))
        return state, res

    # ------------------------------------------------------------------ initialisation
    def feedforward_init(self, x, mode: str = "doubled", ff_weights=None):
        """One bottom-up sweep (Bengio et al. 2016). ``doubled``: layers that also get top-down
        input start at ``clip(b + 2 u)`` (the fixed point if the top-down input equals the
        bottom-up one ``u``); the top layer at ``clip(b + u)``. ``single``: ``clip(b + u)`` everywhere.
        ``learned``: layers with top-down input start at ``clip(c + rho(below) V)`` with separate
        feedforward weights ``ff_weights = [(V, c), ...]`` (one pair per such layer, e.g. from
        :func:`fit_feedforward_weights`); the top layer at ``clip(b + u)``."""
        if mode not in ("doubled", "single", "learned"):
            raise ValueError(f"feedforward_init mode must be 'doubled', 'single' or 'learned', got {mode!r}")
        n = len(self.W)
        if mode == "learned" and (ff_weights is None or len(ff_weights) != n - 1):
            raise ValueError(f"mode 'learned' needs ff_weights with one (V, c) pair per hidden layer ({n - 1})")
        state, below = [], rho(x)
        for k in range(n):
            if mode == "learned" and k < n - 1:
                V, c = ff_weights[k]
                state.append((c + below @ V).clamp(0.0, 1.0))
                below = rho(state[-1])
                continue
            u = below @ self.W[k]
            gain = 2.0 if (mode == "doubled" and k < n - 1) else 1.0
            s = (self.b[k] + gain * u).clamp(0.0, 1.0)
            state.append(s)
            below = rho(s)
        return state

    # ------------------------------------------------------------------ energy / learning
    def energy(self, x, state):
        """Per-sample energy E(s) (with the input clamped to ``x``)."""
        r = [rho(x)] + [rho(s) for s in state]
        e = sum(0.5 * (s * s).sum(1) for s in state)
        for k in range(len(self.W)):
            e = e - ((r[k] @ self.W[k]) * r[k + 1]).sum(1) - (self.b[k] * r[k + 1]).sum(1)
        return e

    def coactivity(self, x, state):
        """(rho_l^T rho_{l+1} summed over the batch, rho_{l+1} summed) = -dE/dtheta."""
        r = [rho(x)] + [rho(s) for s in state]
        return [r[k].T @ r[k + 1] for k in range(len(self.W))], [r[k + 1].sum(0) for k in range(len(self.W))]

    def eqprop_update(self, x, target, s0, beta: float, n_nudge: int, eps: float, symmetric: bool = False):
        """The EqProp estimate of ``-dJ/dtheta`` (J = mean cost at the free fixed point), per layer.

        Returns ``(dW, db, s_beta)``; ``dW[l]`` already averaged over the batch and divided by beta.
        """
        sp, _ = self.relax(x, s0, n_nudge, eps, beta, target)
        if symmetric:
            sm, _ = self.relax(x, s0, n_nudge, eps, -beta, target)
            a, b = self.coactivity(x, sp), self.coactivity(x, sm)
            scale = 1.0 / (2 * beta * len(x))
        else:
            a, b = self.coactivity(x, sp), self.coactivity(x, s0)
            scale = 1.0 / (beta * len(x))
        dW = [(p - q) * scale for p, q in zip(a[0], b[0])]
        db = [(p - q) * scale for p, q in zip(a[1], b[1])]
        return dW, db, sp

    @torch.no_grad()
    def predict(self, x, n_iter: int = 100, eps: float = 0.5):
        s, _ = self.relax(x, self.zeros(len(x)), n_iter, eps)
        return s[-1].argmax(1)

    def backprop_deltas(self, state, out_delta):
        """Deltas of the linearised fixed-point map for an output perturbation ``out_delta``:
        ``g_L = rho'(y) out_delta``, ``g_l = rho'(h_l) (W_l g_{l+1})`` (top-down only), per free layer."""
        gates = [((s > 0) & (s < 1)).to(s.dtype) for s in state]
        g = [None] * len(state)
        g[-1] = gates[-1] * out_delta
        for k in range(len(state) - 2, -1, -1):
            g[k] = gates[k] * (g[k + 1] @ self.W[k + 1].T)
        return g


def fit_feedforward_weights(net: EnergyNet, x, state, ridge: float = 1e-2):
    """Separate feedforward weights for :meth:`EnergyNet.feedforward_init` ``mode="learned"``
    (learning_rules.md section 4, "a dendritic branch predicts the soma"): for each hidden layer,
    ``(V, c)`` such that ``c + rho(p_below) V`` predicts the settled soma potential ``b + W rho(s)``
    (bottom-up plus top-down drive) of that layer, where ``p_below`` is the sweep's own prediction
    of the layer below (``x`` for the first). Solved in closed form as ridge regression over the
    batch ``x`` with settled ``state``: the fixed point of the delta rule
    ``dV = eta rho(p_below)^T (D - c - rho(p_below) V) / batch - eta ridge V`` (post prediction
    error x pre rate), not a per-step simulation of it. Returns ``[(V, c), ...]``."""
    soma = net.drives(x, state)
    out, below = [], rho(x)
    for k in range(len(state) - 1):
        A = torch.cat([below, torch.ones(len(x), 1, device=below.device, dtype=below.dtype)], 1).double()
        reg = ridge * len(x) * torch.eye(A.shape[1], dtype=A.dtype, device=A.device)
        reg[-1, -1] = 0.0   # no penalty on the bias
        sol = torch.linalg.solve(A.T @ A + reg, A.T @ soma[k].double()).to(below.dtype)
        V, c = sol[:-1], sol[-1]
        out.append((V, c))
        below = rho((c + below @ V).clamp(0.0, 1.0))
    return out


def onehot(y, n, device=None, dtype=torch.float32):
    out = torch.zeros(len(y), n, device=device, dtype=dtype)
    out[torch.arange(len(y)), torch.as_tensor(y).long()] = 1.0
    return out


def finite_difference_grad(net: EnergyNet, x, target, n_iter: int = 400, eps: float = 0.5, h: float = 1e-5):
    """Central finite differences of ``J = mean_batch C(s0)`` w.r.t. every weight (slow; tiny nets)."""
    def J():
        s, _ = net.relax(x, net.zeros(len(x)), n_iter, eps)
        return float((0.5 * (s[-1] - target).pow(2).sum(1)).mean())

    grads = []
    for W in net.W:
        g = torch.zeros_like(W)
        for idx in range(W.numel()):
            flat = W.view(-1)
            old = float(flat[idx])
            flat[idx] = old + h
            jp = J()
            flat[idx] = old - h
            jm = J()
            flat[idx] = old
            g.view(-1)[idx] = (jp - jm) / (2 * h)
        grads.append(g)
    return grads


def cosine(a, b) -> float:
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    return float(torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-300))


# ---------------------------------------------------------------------- training
@dataclass
class EqPropConfig:
    sizes: tuple = (64, 100, 10)
    epochs: int = 25
    batch: int = 20
    eps: float = 0.5
    n_free: int = 20
    n_nudge: int = 4
    beta: float = 1.0
    random_sign: bool = True
    symmetric: bool = False
    alphas: tuple = (0.1, 0.05)
    persistent: bool = True
    eval_iter: int = 100
    seed: int = 0
    consistency: float = 0.0   # rate of the local top-down-predicts-bottom-up rule (0 = off)
    consistency_rule: str = "drive"   # "drive": consistency_update; "activity": activity_consistency_update

    def __post_init__(self):
        self.sizes = tuple(int(s) for s in self.sizes)
        self.alphas = tuple(float(a) for a in self.alphas)
        if len(self.alphas) != len(self.sizes) - 1:
            raise ValueError(f"alphas needs one rate per weight layer ({len(self.sizes) - 1}), got {self.alphas}")
        if self.beta <= 0:
            raise ValueError("beta must be > 0 (its sign is drawn per batch with random_sign)")
        if self.consistency_rule not in CONSISTENCY_RULES:
            raise ValueError(f"consistency_rule must be one of {sorted(CONSISTENCY_RULES)}, got {self.consistency_rule!r}")


def consistency_update(net: EnergyNet, x, state, rate: float, branches: str = "both"):
    """Local rule that makes the top-down and bottom-up inputs of each hidden layer agree (Bengio
    et al. 2016: each dendritic branch learns to predict the same somatic drive). For hidden layer
    l with bottom-up ``u = rho(s_{l-1}) W_{l-1}`` and top-down ``t = rho(s_{l+1}) W_l^T``, descend
    ``1/2 |u - t|^2`` with the states held fixed: ``W_l += rate rho(s_{l+1})^T (u - t)`` (top-down
    branch) and, with ``branches="both"``, ``W_{l-1} += rate rho(s_{l-1})^T (t - u)`` (bottom-up
    branch). Each is a postsynaptic mismatch times a presynaptic rate. ``state`` should be the
    settled (free) state. Returns the mean |u - t| per hidden layer before the update."""
    if branches not in ("both", "top_down"):
        raise ValueError(f"branches must be 'both' or 'top_down', got {branches!r}")
    r = [rho(x)] + [rho(s) for s in state]
    mism, updates = [], []
    for k in range(len(state) - 1):   # free layer k = network layer k+1 has layer k+2 above
        u = r[k] @ net.W[k]
        t = r[k + 2] @ net.W[k + 1].T
        e = u - t
        updates.append((k + 1, (r[k + 2].T @ e).T / len(x)))
        if branches == "both":
            updates.append((k, -(r[k].T @ e) / len(x)))
        mism.append(float(e.abs().mean()))
    for l, dw in updates:
        net.W[l].add_(rate * dw)
    return mism


def activity_consistency_update(net: EnergyNet, x, state, rate: float, branches: str = "both"):
    """Dendritic-branch rule of Bengio et al. 2016 on rates: each branch of a hidden unit learns to
    predict the unit's settled (somatic) activity on its own. For hidden layer l with settled rate
    ``a = rho(s_l)``, bottom-up (basal) drive ``u = rho(s_{l-1}) W_{l-1}`` and top-down (apical) drive
    ``t = rho(s_{l+1}) W_l^T``, the branch predictions are ``rho(b + 2u)`` and ``rho(b + 2t)`` (a branch
    that carries the whole drive alone: ``rho(b + 2u)`` is exactly what the doubled-drive
    :meth:`EnergyNet.feedforward_init` computes). Delta rules, states held fixed::

        W_{l-1} += rate rho(s_{l-1})^T (a - rho(b + 2u)) / batch     (basal; with branches="both"|"basal")
        W_l     += rate (a - rho(b + 2t))^T rho(s_{l+1}) / batch     (apical; with branches="both"|"apical")

    Each is a postsynaptic prediction error times a presynaptic rate (STDP-compatible). The error is
    not gated by ``rho'`` of the prediction (perceptron-style), so a branch whose prediction sits on
    a bound can still learn; a unit saturated on the same side in soma and branch gives no error, so
    unlike :func:`consistency_update` the rule does not ask saturated units to match drives, which
    a 10-unit top layer cannot do. ``state`` should be the settled (free) state. Returns the mean
    ``|rho(b + 2u) - a|`` per hidden layer before the update (the doubled sweep's error there)."""
    if branches not in ("both", "basal", "apical"):
        raise ValueError(f"branches must be 'both', 'basal' or 'apical', got {branches!r}")
    r = [rho(x)] + [rho(s) for s in state]
    mism, updates = [], []
    for k in range(len(state) - 1):   # free layer k = network layer k+1 has layer k+2 above
        a, b = r[k + 1], net.b[k]
        p_u = rho(b + 2.0 * (r[k] @ net.W[k]))
        if branches in ("both", "basal"):
            updates.append((k, r[k].T @ (a - p_u) / len(x)))
        if branches in ("both", "apical"):
            p_t = rho(b + 2.0 * (r[k + 2] @ net.W[k + 1].T))
            updates.append((k + 1, (a - p_t).T @ r[k + 2] / len(x)))
        mism.append(float((p_u - a).abs().mean()))
    for l, dw in updates:
        net.W[l].add_(rate * dw)
    return mism


CONSISTENCY_RULES = {"drive": consistency_update, "activity": activity_consistency_update}


def train_eqprop(cfg: EqPropConfig, data, device=None, progress=None):
    """Train on ``data = (xtr, ytr, xte, yte)``; returns ``(net, history)``."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    xtr, ytr, xte, yte = data
    Xtr = torch.as_tensor(xtr, dtype=torch.float32, device=dev)
    Xte = torch.as_tensor(xte, dtype=torch.float32, device=dev)
    Ytr = torch.as_tensor(ytr, dtype=torch.long, device=dev)
    Yte = torch.as_tensor(yte, dtype=torch.long, device=dev)
    n_out = cfg.sizes[-1]
    Ttr = onehot(ytr, n_out, dev)
    net = EnergyNet(cfg.sizes, cfg.seed, dev)
    rng = np.random.default_rng(cfg.seed)
    n = len(Xtr)
    particles = [torch.zeros(n, m, device=dev) for m in cfg.sizes[1:]]
    hist = {"epoch": [], "train_err": [], "test_err": [], "consistency": []}
    with torch.no_grad():
        for epoch in range(1, cfg.epochs + 1):
            perm = rng.permutation(n)
            wrong, mism = 0, []
            for k in range(0, n, cfg.batch):
                idx = torch.as_tensor(perm[k:k + cfg.batch], device=dev)
                x, t = Xtr[idx], Ttr[idx]
                s = [p[idx] for p in particles] if cfg.persistent else net.zeros(len(idx))
                s, _ = net.relax(x, s, cfg.n_free, cfg.eps)
                if cfg.persistent:
                    for p, si in zip(particles, s):
                        p[idx] = si
                wrong += int((s[-1].argmax(1) != Ytr[idx]).sum())
                beta = cfg.beta * (1.0 if not cfg.random_sign or rng.random() < 0.5 else -1.0)
                dW, db, _ = net.eqprop_update(x, t, s, beta, cfg.n_nudge, cfg.eps, cfg.symmetric)
                for l, a in enumerate(cfg.alphas):
                    net.W[l].add_(a * dW[l])
                    net.b[l].add_(a * db[l])
                if cfg.consistency > 0:
                    mism.append(CONSISTENCY_RULES[cfg.consistency_rule](net, x, s, cfg.consistency))
            test_err = 1.0 - float((net.predict(Xte, cfg.eval_iter, cfg.eps) == Yte).float().mean())
            hist["epoch"].append(epoch)
            hist["train_err"].append(wrong / n)   # on the free-phase states seen during the epoch
            hist["test_err"].append(test_err)
            hist["consistency"].append(np.mean(mism, axis=0).tolist() if mism else None)
            if progress is not None:
                progress(epoch, hist)
    hist["config"] = asdict(cfg)
    return net, hist


def sample_residuals(net: EnergyNet, x, state):
    """Per-sample ``max_i |clip(drive_i) - s_i|`` (a vector over the batch)."""
    return torch.stack([(d.clamp(0, 1) - s).abs().amax(1) for d, s in zip(net.drives(x, state), state)]).amax(0)


def iterations_to_tol(net: EnergyNet, x, init, tol: float, eps: float, max_iter: int = 2000):
    """Relax from ``init``; returns (iterations each sample needed to reach residual < tol, capped at
    ``max_iter``; the mean residual per iteration)."""
    state = [s.clone() for s in init]
    r = sample_residuals(net, x, state)
    hit = torch.full((len(x),), max_iter, dtype=torch.long, device=x.device)
    hit[r < tol] = 0
    trace = [float(r.mean())]
    for it in range(1, max_iter + 1):
        state = net.step(x, state, eps)
        r = sample_residuals(net, x, state)
        trace.append(float(r.mean()))
        newly = (r < tol) & (hit == max_iter)
        hit[newly] = it
        if bool((hit < max_iter).all()):
            break
    return hit, trace


def early_inference(net: EnergyNet, x, s_star, target, eta: float = 1e-3, eps: float = 0.1, n_steps: int = 8):
    """Bengio & Fischer 2015: from a free fixed point ``s_star`` (input clamped), clamp the output to
    ``y* + eta (d - y*)`` and let the hidden layers integrate. Returns, per hidden layer (bottom ->
    top), the first-arrival step and, per step, the cosine between the hidden-state change and the
    backprop delta through the fixed point's slopes (``g_L`` = the actual output change, ``g_l =
    rho'(h_l) (W_l g_{l+1})``), plus the change's norm. Cosines are over the whole batch."""
    y = s_star[-1]
    clamp = y + eta * (target - y)
    g_out = rho(clamp) - rho(y)
    n_free = len(s_star)
    g = [None] * n_free
    g[-1] = g_out
    for k in range(n_free - 2, -1, -1):
        gate = ((s_star[k] > 0) & (s_star[k] < 1)).to(y.dtype)
        g[k] = gate * (g[k + 1] @ net.W[k + 1].T)
    state = [s.clone() for s in s_star]
    state[-1] = clamp
    cos = [[] for _ in range(n_free - 1)]
    mag = [[] for _ in range(n_free - 1)]
    for _ in range(n_steps):
        state = net.step(x, state, eps, clamp_out=clamp)
        for k in range(n_free - 1):
            dh = state[k] - s_star[k]
            mag[k].append(float(dh.norm()))
            cos[k].append(cosine(dh, g[k]) if float(dh.norm()) > 0 else float("nan"))
    first = [n_free - 1 - k for k in range(n_free - 1)]   # steps until the perturbation arrives
    return {"first_arrival_step": first,
            "cos_first_arrival": [cos[k][first[k] - 1] for k in range(n_free - 1)],
            "cos": cos, "norm": mag}
