r"""Rate-form local rules as batched PyTorch functions (research note learning_rules.md sections 1, 6).

Weights are (post, pre). Every function returns the weight change for a batch (mean over the
batch); callers add it. All are local: they read only the pre- and postsynaptic activity of the
synapse (and, for Oja, its own weight).

* :func:`bengio_rate_dw`: ``dW_ij = eta rho(s_j) (s_i(t+1) - s_i(t))`` -- presynaptic rate times the
  temporal change of the postsynaptic state (Bengio et al. 2015, STDP as SGD).
* :func:`hebbian_dw`: ``dW_ij = eta y_i x_j`` (with optional weight decay).
* :func:`oja_dw`: ``dW_ij = eta y_i (x_j - y_i W_ij)`` (Oja 1982): for a linear unit ``y = W x`` it
  converges to the unit-norm first principal component of zero-mean ``x``. With several output
  rows this is Sanger's generalised Hebbian rule when ``sanger=True`` (rows converge to the
  leading principal components in order).
"""

from __future__ import annotations

import torch


def hard_sigmoid(s):
    return s.clamp(0.0, 1.0)


def bengio_rate_dw(pre_state, post_prev, post_next, eta: float, rho=hard_sigmoid):
    """``eta <(s_post(t+1) - s_post(t)) rho(s_pre(t))^T>``: shape (n_post, n_pre)."""
    return eta * (post_next - post_prev).T @ rho(pre_state) / len(pre_state)


def hebbian_dw(x, y, eta: float, decay: float = 0.0, W=None):
    dw = eta * y.T @ x / len(x)
    if decay and W is not None:
        dw = dw - decay * W
    return dw


def oja_dw(W, x, eta: float, sanger: bool = False):
    """Oja's rule (one output) or Sanger's rule (``sanger=True``, several outputs), batch mean."""
    y = x @ W.T                                           # (batch, n_out)
    if sanger:
        # dW = eta <y x^T - LT(y y^T) W>, LT = lower triangle incl. diagonal
        yy = torch.tril(y.T @ y / len(x))
        return eta * (y.T @ x / len(x) - yy @ W)
    # Oja per output row: dW_i = eta <y_i (x - y_i W_i)>
    return eta * (y.T @ x / len(x) - (y * y).mean(0)[:, None] * W)
