"""scikit-learn's bundled 8x8 digits, split as in the research note (learning_rules.md section 7).

1797 images scaled to [0, 1], split 70/30 stratified with ``random_state=0`` (1257 train, 540 test).
Bundled with scikit-learn: no download.
"""

from __future__ import annotations

import numpy as np

from ..backends.torch.simulator import pick_device as _pick


def digits_split(center: bool = False, seed: int = 0):
    """Return ``(x_train, y_train, x_test, y_test)`` as float32 / int64 numpy arrays.

    ``center=True`` subtracts the training-set mean from both sets (used by the FA family).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
    if center:
        mu = xtr.mean(axis=0, keepdims=True)
        xtr, xte = xtr - mu, xte - mu
    return xtr, ytr, xte, yte


def pick_device(device: str | None = None):
    """``device`` if given, else CUDA when available, else CPU (the torch backend's rule)."""
    return _pick(device or "auto")
