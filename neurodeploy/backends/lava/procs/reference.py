"""Pure-numpy reference of the NDLIF neuron (both ProcessModels), the oracle for the tests.

This module imports numpy only (no Lava), so it can be used anywhere. It is also executed as a
stand-alone module by Lava's ProcessModel discovery (which runs every ``.py`` file beside a
Process under a bare module name), so it must not use relative imports.

One step at Lava time step m, per neuron (``state`` holds ``u``, ``v`` and ``since``):

1. ``since = min(since + 1, SINCE_NEVER)``.
2. ``u = u*(1 - du) + a_in`` (float) or Lava's ``PyLifModelBitAcc`` integer update (fixed).
3. ``integrate = since >= refractory_steps``; ``use_u = since >= refractory_steps + input_drop``;
   where ``integrate``: ``v = v*(1 - dv) + (u if use_u else 0) + bias`` (float; ``bias_mant``,
   ``bias_exp`` ignored) or the integer update with saturation (fixed); elsewhere v is unchanged.
4. ``spike = integrate & (v > vth)`` (float) or ``integrate & (v > vth << 6)`` (fixed).
5. Where spiked: ``v = v_reset`` (``reset_mode`` 0) or ``v = v - vth`` (``reset_mode`` 1; fixed:
   ``v - (vth << 6)``), and ``since = 0``.

``params`` is a mapping with ``du``, ``dv``, ``vth``, ``bias_mant`` and optionally ``bias_exp``
(default 0), ``refractory_steps`` (0), ``input_drop`` (0), ``reset_mode`` (0) and ``v_reset``
(0). In fixed point all values are integers in Lava's units: ``du``/``dv`` 12-bit decays (``du``
gets Lava's hidden +1), ``vth`` unshifted (17-bit mantissa), ``v_reset`` in the units of ``v``
(already scaled, no shift), ``bias_mant``/``bias_exp`` as in Lava. The fixed reference computes in
int64 and assumes what Lava's int32 arithmetic also needs to be exact: ``|a_in| < 2**25``,
``bias_mant`` within int16.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

__all__ = [
    "SINCE_NEVER",
    "ndlif_fixed_step",
    "ndlif_float_step",
    "ndlif_initial_state",
    "ndlif_run",
]

#: Value of the per-neuron counter ``since`` (steps since the last spike) meaning "never spiked";
#: the counter saturates here, so it never overflows int32.
SINCE_NEVER = 2**30

_UV_MAX = 2**23  # u and v are 24-bit signed on Loihi
_DECAY_SHIFT = 12
_DECAY_UNITY = 2**_DECAY_SHIFT
_DS_OFFSET = 1  # Lava adds 1 to du (not to dv)
_VTH_SHIFT = 6
_ACT_SHIFT = 6


def ndlif_initial_state(
    n: int, *, u: Any = 0, v: Any = 0, since: Any = SINCE_NEVER, fixed: bool = False
) -> dict[str, np.ndarray]:
    """A fresh state for ``n`` neurons: ``u``, ``v`` (float64, or int64 if ``fixed``), ``since``."""
    dtype = np.int64 if fixed else np.float64
    return {
        "u": np.broadcast_to(np.asarray(u, dtype=dtype), (n,)).copy(),
        "v": np.broadcast_to(np.asarray(v, dtype=dtype), (n,)).copy(),
        "since": np.broadcast_to(np.asarray(since, dtype=np.int64), (n,)).copy(),
    }


def _common(params: Mapping[str, Any]) -> tuple[int, int, int, Any]:
    refractory_steps = int(params.get("refractory_steps", 0))
    input_drop = int(params.get("input_drop", 0))
    reset_mode = int(params.get("reset_mode", 0))
    if refractory_steps < 0:
        raise ValueError(f"refractory_steps must be >= 0, got {refractory_steps}")
    if input_drop not in (0, 1, 2):
        raise ValueError(f"input_drop must be 0, 1 or 2, got {input_drop}")
    if reset_mode not in (0, 1):
        raise ValueError(f"reset_mode must be 0 or 1, got {reset_mode}")
    return refractory_steps, input_drop, reset_mode, params.get("v_reset", 0)


def _advance_since(since: np.ndarray) -> np.ndarray:
    return np.minimum(np.asarray(since, dtype=np.int64), SINCE_NEVER - 1) + 1


def ndlif_float_step(
    state: Mapping[str, np.ndarray], a_in: Any, params: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One floating-point NDLIF step. Returns ``(new_state, spikes)``; ``state`` is not modified.

    ``spikes`` is a bool array. The arithmetic follows Lava's ``AbstractPyLifModelFloat`` in the
    same order, so with the default refractory/reset parameters it equals Lava's float LIF.
    """
    refractory_steps, input_drop, reset_mode, v_reset = _common(params)
    du, dv, vth = params["du"], params["dv"], params["vth"]
    bias = np.asarray(params.get("bias_mant", 0), dtype=np.float64)

    since = _advance_since(state["since"])
    u = np.asarray(state["u"], dtype=np.float64) * (1 - du)
    u = u + np.asarray(a_in, dtype=np.float64)
    v_old = np.asarray(state["v"], dtype=np.float64)

    integrate = since >= refractory_steps
    use_u = since >= refractory_steps + input_drop
    v_new = v_old * (1 - dv) + np.where(use_u, u, 0.0) + bias
    v = np.where(integrate, v_new, v_old)

    spikes = integrate & (v > vth)
    if reset_mode == 0:
        v = np.where(spikes, np.float64(v_reset), v)
    else:
        v = np.where(spikes, v - vth, v)
    since = np.where(spikes, 0, since)
    return {"u": u, "v": v, "since": since}, spikes


def _decay_toward_zero(x: np.ndarray, factor: int) -> np.ndarray:
    """``x * factor / 4096`` truncated toward zero (Lava: sign * (|x*factor| >> 12))."""
    prod = x * np.int64(factor)
    return np.sign(prod) * (np.abs(prod) >> _DECAY_SHIFT)


def _effective_bias(bias_mant: Any, bias_exp: Any) -> np.ndarray:
    mant = np.asarray(bias_mant, dtype=np.int64)
    exp = np.asarray(bias_exp, dtype=np.int64)
    mant, exp = np.broadcast_arrays(mant, exp)
    up = mant << np.maximum(exp, 0)
    down = mant >> np.maximum(-exp, 0)  # arithmetic shift: floors negative values
    return np.where(exp >= 0, up, down)


def ndlif_fixed_step(
    state: Mapping[str, np.ndarray], a_in: Any, params: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One fixed-point (Loihi bit-accurate) NDLIF step. Returns ``(new_state, spikes)``.

    Integer arithmetic in int64, equal to Lava's ``PyLifModelBitAcc`` where refractoriness is off:
    u decays by ``4096 - (du + 1)`` with truncation toward zero, gets ``a_in << 6`` and wraps once
    into 24 bits (``> 2**23`` subtracts ``2**24``, ``<= -2**23`` adds ``2**24``); v decays by
    ``4096 - dv``, gets u and ``bias_mant << bias_exp`` (arithmetic ``>>`` for negative
    exponents) and saturates to ``±(2**23 - 1)``.
    """
    refractory_steps, input_drop, reset_mode, v_reset = _common(params)
    du, dv, vth = int(params["du"]), int(params["dv"]), int(params["vth"])
    eff_bias = _effective_bias(params.get("bias_mant", 0), params.get("bias_exp", 0))
    eff_vth = vth << _VTH_SHIFT

    since = _advance_since(state["since"])

    u = _decay_toward_zero(np.asarray(state["u"], dtype=np.int64), _DECAY_UNITY - (du + _DS_OFFSET))
    u = u + (np.asarray(a_in, dtype=np.int64) << _ACT_SHIFT)
    u = np.where(u > _UV_MAX, u - 2 * _UV_MAX, np.where(u <= -_UV_MAX, u + 2 * _UV_MAX, u))

    v_old = np.asarray(state["v"], dtype=np.int64)
    integrate = since >= refractory_steps
    use_u = since >= refractory_steps + input_drop
    v_new = _decay_toward_zero(v_old, _DECAY_UNITY - dv) + np.where(use_u, u, 0) + eff_bias
    v_new = np.clip(v_new, -_UV_MAX + 1, _UV_MAX - 1)
    v = np.where(integrate, v_new, v_old)

    spikes = integrate & (v > eff_vth)
    if reset_mode == 0:
        v = np.where(spikes, np.int64(int(v_reset)), v)
    else:
        v = np.where(spikes, v - eff_vth, v)
    since = np.where(spikes, 0, since)
    return {"u": u, "v": v, "since": since}, spikes


def ndlif_run(
    step: Callable[..., tuple[dict[str, np.ndarray], np.ndarray]],
    a_in: np.ndarray,
    state: Mapping[str, np.ndarray],
    params: Mapping[str, Any],
) -> dict[str, np.ndarray]:
    """Run ``step`` (:func:`ndlif_float_step` or :func:`ndlif_fixed_step`) over ``a_in``.

    ``a_in`` has shape (T, N): row m is the input received at Lava step m + 1. Returns arrays of
    shape (T, N): ``u``, ``v``, ``since`` after each step and the bool ``spikes``; rows are indexed
    like Lava's Monitor data (row m is the state after step m + 1).
    """
    a_in = np.asarray(a_in)
    rows: dict[str, list[np.ndarray]] = {"u": [], "v": [], "since": [], "spikes": []}
    current = {k: np.asarray(v).copy() for k, v in state.items()}
    for m in range(a_in.shape[0]):
        current, spikes = step(current, a_in[m], params)
        for key in ("u", "v", "since"):
            rows[key].append(current[key])
        rows["spikes"].append(spikes)
    return {k: np.array(v) for k, v in rows.items()}
