"""Numpy reference of fixed-point LCA (no Lava import): the format, the integer constants of a
dictionary and the integer step that :class:`PyLCANeuronsFixed` executes bit for bit.

Fixed-point format (:class:`LCAFixedFormat`)
--------------------------------------------
* potentials ``v``, activities ``a``, the drive ``Phi^T x`` and the threshold ``lam`` are integers
  in units of ``2^-frac_bits`` (Q-format; default ``frac_bits = 10``). The drive is computed on
  the host in float and rounded to Q units (to nearest, ties to even), ``lam`` likewise;
* ``v`` is a ``v_bits`` (24) signed register: saturated to ``[-2^(v_bits-1), 2^(v_bits-1) - 1]``
  (saturations are counted);
* the activity ``a = max(v - lam, 0)`` is the graded-spike payload, clipped to
  ``[0, 2^payload_bits - 1]`` (default 16 bits: a < 64 at ``frac_bits = 10``); every clipped
  (neuron, iteration) is counted;
* the lateral matrix ``G = Phi^T Phi - I`` is 8-bit signed integers ``q`` with one shared
  exponent ``s`` (``quantize_weights`` of the iP-VAE: ``G ~ q 2^s``). Lava's bit-accurate mixed-sign
  Dense/Sparse stores even mantissas, so the connection holds ``2 q`` and delivers
  ``a_in = sum_j 2 q_kj a_j`` exactly (int32 in the simulator); the neuron turns it into Q units
  with ``lat = a_in 2^(s - 1)`` (:func:`shift_round`: a left shift, or a right shift rounded half
  up);
* ``dt_tau`` is ``dt_mult 2^-dt_shift``: a pure right shift (``dt_mult = 1``) when dt_tau is
  exactly ``2^-k``, else ``dt_mult = round(dt_tau 2^dt_bits)`` with ``dt_shift = dt_bits``
  (default 12: 0.1 -> 410 / 4096 = 0.10010). The Euler increment is the integer product rounded
  half up: ``dv = (dt_mult e + 2^(dt_shift - 1)) >> dt_shift`` (arithmetic shift, i.e.
  ``floor(dt_mult e / 2^dt_shift + 1/2)``).

Step (iteration t, ``a_in`` = the connection's output for ``a_{t-1}``)::

    lat = shift_round(a_in, lat_shift)                   lat_shift = s - 1
    e   = drive - v - lat
    v   = sat_v(v + ((dt_mult e + 2^(dt_shift-1)) >> dt_shift))
    a   = min(max(v - lam, 0), 2^payload_bits - 1)

the integer image of :func:`neurodeploy.library.blocks.lca.reference.lca_step`. Because the increment is rounded,
``v`` stops moving once ``|dt_mult e| < 2^(dt_shift-1)``, i.e. it settles within about
``0.5 / dt_tau`` Q units (5 units = 0.005 for dt_tau = 0.1, frac_bits = 10) of the float fixed
point.
"""

# no ``from __future__ import annotations``: Lava's model discovery may execute this file under
# a bare name, where string annotations break @dataclass.

from dataclasses import dataclass

import numpy as np

from neurodeploy.library.blocks.ipvae.fixed import quantize_weights, shift_round

__all__ = ["LCAFixedFormat", "LCAFixedProgram", "lca_fixed_program", "lca_fixed_step", "lca_fixed_iterate",
           "lca_fixed_run", "lca_fixed_initial_activity"]


@dataclass(frozen=True)
class LCAFixedFormat:
    frac_bits: int = 10
    dt_bits: int = 12
    payload_bits: int = 16
    v_bits: int = 24

    def __post_init__(self):
        if self.frac_bits < 0 or self.dt_bits < 1:
            raise ValueError(f"frac_bits must be >= 0 and dt_bits >= 1, got {self.frac_bits}, {self.dt_bits}")
        if not 1 <= self.payload_bits <= 24 or not 2 <= self.v_bits <= 32:
            raise ValueError(f"payload_bits must be in [1, 24] and v_bits in [2, 32], got "
                             f"{self.payload_bits}, {self.v_bits}")

    @property
    def one(self) -> int:
        return 1 << self.frac_bits

    def q(self, x) -> np.ndarray:
        """Float -> Q units, rounded to nearest with ties to even (``np.round``)."""
        return np.round(np.asarray(x, np.float64) * self.one).astype(np.int64)

    def to_float(self, x_q) -> np.ndarray:
        return np.asarray(x_q, np.float64) / self.one

    @property
    def a_max(self) -> int:
        """Largest payload (Q units)."""
        return (1 << self.payload_bits) - 1

    @property
    def v_min(self) -> int:
        return -(1 << (self.v_bits - 1))

    @property
    def v_max(self) -> int:
        return (1 << (self.v_bits - 1)) - 1

    def dt(self, dt_tau: float) -> tuple[int, int]:
        """(dt_mult, dt_shift) with dt_tau ~ dt_mult 2^-dt_shift: ``(1, k)`` if dt_tau is exactly
        2^-k (k >= 0), else ``(round(dt_tau 2^dt_bits), dt_bits)``."""
        dt_tau = float(dt_tau)
        if not 0.0 < dt_tau <= 1.0:
            raise ValueError(f"dt_tau must be in (0, 1], got {dt_tau}")
        m, e = np.frexp(dt_tau)  # dt_tau = m 2^e, m in [0.5, 1)
        if m == 0.5:
            return 1, int(1 - e)
        mult = int(np.round(dt_tau * (1 << self.dt_bits)))
        if mult < 1:
            raise ValueError(f"dt_tau = {dt_tau} rounds to 0 at dt_bits = {self.dt_bits}")
        return mult, self.dt_bits


@dataclass(frozen=True)
class LCAFixedProgram:
    """The integer constants of one dictionary (:func:`lca_fixed_program`)."""

    fmt: LCAFixedFormat
    weights: np.ndarray  # (K, K) int32: 2 q, what the Lava connection stores; a_in = weights @ a
    weight_exponent: int  # s: G ~ q 2^s
    lat_shift: int  # s - 1
    lam_q: int
    dt_mult: int
    dt_shift: int

    @property
    def dt_tau(self) -> float:
        """The dt_tau the integer step applies."""
        return self.dt_mult / (1 << self.dt_shift)


def lca_fixed_program(Phi, lam: float, dt_tau: float, fmt: LCAFixedFormat | None = None) -> LCAFixedProgram:
    """Quantize ``G = Phi^T Phi - I`` (8 bits + shared exponent), ``lam`` and ``dt_tau``."""
    fmt = LCAFixedFormat() if fmt is None else fmt
    Phi = np.asarray(Phi, np.float64)
    if lam < 0:
        raise ValueError(f"lam must be non-negative, got {lam}")
    G = Phi.T @ Phi - np.eye(Phi.shape[1])
    q, s = quantize_weights(G)
    mult, shift = fmt.dt(dt_tau)
    return LCAFixedProgram(fmt=fmt, weights=(2 * q).astype(np.int32), weight_exponent=int(s),
                           lat_shift=int(s) - 1, lam_q=int(fmt.q(lam)), dt_mult=mult, dt_shift=shift)


def lca_fixed_initial_activity(v_q, lam_q: int, fmt: LCAFixedFormat) -> np.ndarray:
    """``min(max(v - lam, 0), a_max)`` (Q units, int64)."""
    return np.minimum(np.maximum(np.asarray(v_q, np.int64) - lam_q, 0), fmt.a_max)


def lca_fixed_step(v_q, drive_q, a_in, *, lam_q: int, dt_mult: int, dt_shift: int, lat_shift: int,
                   fmt: LCAFixedFormat):
    """One integer LCA iteration (module doc). Returns ``(v, a, clipped, saturated)``: new
    potentials and activities (int64) and the per-neuron flags (bool) of a payload clip and of a
    ``v`` saturation in this step."""
    v = np.asarray(v_q, np.int64)
    e = np.asarray(drive_q, np.int64) - v - shift_round(a_in, lat_shift)
    v = v + shift_round(dt_mult * e, -dt_shift)
    saturated = (v < fmt.v_min) | (v > fmt.v_max)
    v = np.clip(v, fmt.v_min, fmt.v_max)
    a = np.maximum(v - lam_q, 0)
    clipped = a > fmt.a_max
    return v, np.minimum(a, fmt.a_max), clipped, saturated


def lca_fixed_iterate(v0_q, drive_q, prog: LCAFixedProgram, T: int) -> dict:
    """``T`` iterations from ``v0_q`` (B, K) with ``a_in = a @ weights.T`` (the integers the
    bit-accurate connection delivers, computed in int64). Returns ``{"v_q", "a_q", "clipped",
    "saturated", "a_in_peak"}``: final state, per-neuron counts of clipped payloads and saturated
    potentials over the run (int64, (B, K)) and the largest ``|a_in|`` seen (the Lava simulator
    holds ``a_in`` in int32, Loihi's dendritic accumulator in 24 bits)."""
    v = np.atleast_2d(np.asarray(v0_q, np.int64))
    drive_q = np.asarray(drive_q, np.int64)
    a = lca_fixed_initial_activity(v, prog.lam_q, prog.fmt)
    Wt = prog.weights.astype(np.int64).T
    clipped, saturated = np.zeros(v.shape, np.int64), np.zeros(v.shape, np.int64)
    peak = 0
    for _ in range(int(T)):
        a_in = a @ Wt
        peak = max(peak, int(np.abs(a_in).max()) if a_in.size else 0)
        v, a, c, s = lca_fixed_step(v, drive_q, a_in, lam_q=prog.lam_q, dt_mult=prog.dt_mult,
                                    dt_shift=prog.dt_shift, lat_shift=prog.lat_shift, fmt=prog.fmt)
        clipped += c
        saturated += s
    return {"v_q": v, "a_q": a, "clipped": clipped, "saturated": saturated, "a_in_peak": peak}


def lca_fixed_run(Phi, X, T: int, lam: float, dt_tau: float, fmt: LCAFixedFormat | None = None,
                  v0=None) -> dict:
    """Fixed-point LCA on every row of ``X`` (B, M): the host rounds ``drive = X Phi`` and ``v0``
    (float, default 0) to Q units, then :func:`lca_fixed_iterate`. Returns its dict plus ``v``,
    ``a`` (float, the integers / 2^frac_bits), ``format`` and ``program``."""
    if int(T) < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    prog = lca_fixed_program(Phi, lam, dt_tau, fmt)
    fmt = prog.fmt
    X = np.atleast_2d(np.asarray(X, np.float64))
    K = prog.weights.shape[0]
    v0 = np.zeros((len(X), K)) if v0 is None else np.broadcast_to(np.asarray(v0, np.float64), (len(X), K))
    drive_q = fmt.q(X @ np.asarray(Phi, np.float64))
    out = lca_fixed_iterate(np.clip(fmt.q(v0), fmt.v_min, fmt.v_max), drive_q, prog, T)
    out.update(v=fmt.to_float(out["v_q"]), a=fmt.to_float(out["a_q"]), format=fmt, program=prog)
    return out
