"""PNG plots for trained coders: reconstructions, dictionaries, T_test curves, the
sparsity-reconstruction plane (iP-VAE vs LCA). Written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.plot import pyplot as _plt, save_figure as _save


def tiles(W: np.ndarray, cols: int = 16) -> np.ndarray:
    """Columns of W (M, K), M a square, as one image of K tiles, each scaled to [-1, 1]."""
    M, K = W.shape
    s = int(round(np.sqrt(M)))
    rows = -(-K // cols)
    img = np.full((rows * (s + 1) + 1, cols * (s + 1) + 1), np.nan)
    for k in range(K):
        r, c = divmod(k, cols)
        w = W[:, k] / max(np.abs(W[:, k]).max(), 1e-12)
        img[1 + r * (s + 1):1 + r * (s + 1) + s, 1 + c * (s + 1):1 + c * (s + 1) + s] = w.reshape(s, s)
    return img


def plot_dictionary(W, path, title="dictionary") -> Path:
    plt = _plt()
    img = tiles(np.asarray(W))
    fig, ax = plt.subplots(figsize=(8, 8 * img.shape[0] / img.shape[1] + 0.4))
    ax.imshow(img, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    return _save(fig, Path(path))


def plot_reconstructions(model, X, path, Ts=(1, 16, 64, 1000), n: int = 8, seed: int = 0) -> Path:
    """Originals (top row) and reconstructions from sampled counts after each T."""
    import torch

    plt = _plt()
    x = torch.as_tensor(np.asarray(X[:n]), dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    recs = {}
    u = model.init_state(n).clone()
    z = model.sample(u, "exact", generator=g)
    with torch.no_grad():
        for t in range(1, max(Ts) + 1):
            u = model.step(u, z, x)
            z = model.sample(u, "exact", generator=g)
            if t in Ts:
                recs[t] = (z @ model.Phi.T).numpy()
    s = int(round(np.sqrt(x.shape[1])))
    fig, axes = plt.subplots(1 + len(Ts), n, figsize=(1.2 * n, 1.25 * (1 + len(Ts))))
    rows = [("input", x.numpy())] + [(f"T={t}", recs[t]) for t in Ts]
    for i, (label, arr) in enumerate(rows):
        for j in range(n):
            ax = axes[i, j]
            v = np.abs(x[j].numpy()).max()
            ax.imshow(arr[j].reshape(s, s), cmap="gray", vmin=-v if x.min() < 0 else 0, vmax=v)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    return _save(fig, Path(path))


def plot_curves(rows, path, T_train=None, lca_rows=None) -> Path:
    plt = _plt()
    T = [r["T"] for r in rows]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    axes[0].plot(T, [r["r2"] for r in rows], "o-", label="R² (sampled counts)")
    axes[0].plot(T, [r["r2_rate"] for r in rows], "s--", label="R² (rates)")
    if "r2_avg" in rows[0]:
        axes[0].plot(T, [r["r2_avg"] for r in rows], "^:", label="R² (counts averaged, τ=16)")
    axes[0].set_ylim(max(min(r["r2"] for r in rows), -1), 1)
    axes[1].plot(T, [r["zeros"] for r in rows], "o-")
    axes[2].plot(T, [r["du_norm"] for r in rows], "o-")
    axes[3].plot(T, [r["u_max"] for r in rows], "o-")
    for ax, t in zip(axes, ["R²", "fraction of zero counts", "mean ‖δu‖", "max u"]):
        ax.set_xscale("log")
        ax.set_xlabel("T_test (iterations)")
        ax.set_title(t)
        if T_train:
            ax.axvline(T_train, color="gray", ls=":", lw=1)
    axes[0].legend(fontsize=8)
    return _save(fig, Path(path))


def plot_plane(rows, lca_rows, path) -> Path:
    """Zeros vs R² for iP-VAE over T_test and LCA over lambda."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([r["zeros"] for r in rows], [r["r2"] for r in rows], "o-", label="iP-VAE (T_test sweep)")
    for r in rows:
        ax.annotate(str(r["T"]), (r["zeros"], r["r2"]), fontsize=6)
    if lca_rows:
        ax.plot([r["zeros"] for r in lca_rows], [r["r2"] for r in lca_rows], "s-", label="LCA (λ sweep)")
    ax.set_xlabel("fraction of zero counts")
    ax.set_ylabel("R²")
    ax.set_xlim(0, 1)
    ax.set_ylim(max(min([r["r2"] for r in rows] + [0]), -0.5), 1)
    ax.plot([1], [1], "k*")
    ax.legend(fontsize=8)
    return _save(fig, Path(path))


def plot_all(out, model, X_test, rows, lca_rows, lca_Phi, cfg) -> None:
    out = Path(out)
    plot_dictionary(model.Phi.detach().numpy(), out / "dictionary.png", f"{cfg.name}: iP-VAE Φ")
    plot_reconstructions(model, X_test, out / "reconstructions.png",
                         Ts=tuple(sorted({t for t in (1, cfg.T_train, 64, max(cfg.eval_T)) if t <= max(cfg.eval_T)})))
    plot_curves(rows, out / "curves.png", cfg.T_train)
    plot_plane(rows, lca_rows, out / "plane.png")
    if lca_Phi is not None:
        plot_dictionary(lca_Phi, out / "lca_dictionary.png", f"{cfg.name}: LCA Φ")
