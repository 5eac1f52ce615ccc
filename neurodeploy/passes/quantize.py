"""Quantize pass: float Lava parameters -> Loihi 2 fixed point, with a full report.

The integer datapath is Lava's ``PyLifModelBitAcc`` / ``PyDenseModelBitAcc``
(``../shared/research/loihi_lava.md`` §2): 24-bit ``u``/``v``; 12-bit ``du``/``dv`` against 4096
with a hidden +1 on ``du``; synaptic input and threshold shifted left by 6; bias as a 13-bit
signed mantissa times ``2**bias_exp`` (0..7); 8-bit weight magnitudes with a per-connection
``weight_exp`` (-8..7), even values only for mixed-sign connections.

Each population gets one scale ``K`` (integer voltage units per volt, ``v_int ~ K v``) shared by
everything that feeds it. ``K`` is the largest value that keeps the threshold mantissa in 17
bits, the bias in range, every incoming weight representable with some ``weight_exp`` and the
potential (``HEADROOM`` times its largest expected magnitude) inside 24 bits. Then:

=============  ========================================================================
weights        ``w_int = round(w K / (64 2**e))`` with ``e`` the smallest exponent that fits
               the largest weight in 8 bits; mixed sign rounds to even (Lava drops the LSB)
``vth``        ``vth_mant = round(vth K / 64)``
``bias``       ``bias_mant 2**bias_exp = round(bias (dv_eff/dv) K)``, smallest ``bias_exp``
               that fits; the factor keeps the steady state ``bias/dv`` despite ``dv``'s rounding
``du``         ``clip(round(du 4096) - 1, 0, 4095)`` (the chip adds 1 back)
``dv``         ``clip(round(dv 4096), 0, 4095)``
``v``, ``u``   ``round(x K)``; ``v_reset`` likewise (neurodeploy's NDLIF neuron)
=============  ========================================================================

Rounding is to nearest (``numpy.rint``, ties to even). The report lists, for every parameter,
the float value, the integer(s), the effective value and the relative error, with clipping and
overflow flags, and the effect on time constants and threshold in physical units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import CompileError
from ..lowering.loihi import LoweredNetwork, LoweredPopulation, LoweredProjection, learning_checks
from .base import Compilation, PassReport

HEADROOM = 4.0  # |v| may reach HEADROOM x the largest of |vth|, |v_reset|, |v0|, steady-state bias
V_MAX = 2**23 - 1
VTH_MANT_MAX = 2**17 - 1
BIAS_MANT_MAX = 2**12 - 1  # 13-bit signed: -4096..4095; symmetric bound
BIAS_EXP_MAX = 7
WEXP_MIN, WEXP_MAX = -8, 7


@dataclass
class QuantizedPopulation:
    name: str
    K: float
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    v_reset: int
    v0: np.ndarray
    u0: np.ndarray


@dataclass
class QuantizedProjection:
    name: str
    weights: object  # scipy.sparse csr (n_post, n_pre), int64
    weight_exp: int
    num_weight_bits: int
    sign_mode: str  # "mixed" | "excitatory" | "inhibitory"


@dataclass
class Quantized:
    populations: dict[str, QuantizedPopulation] = field(default_factory=dict)
    projections: dict[str, QuantizedProjection] = field(default_factory=dict)
    report: dict = field(default_factory=dict)


def _rel(f: float, e: float) -> float:
    return abs(e - f) / abs(f) if f != 0 else (0.0 if e == 0 else math.inf)


def _entry(name, f, i, eff, unit="", clipped=False, note=""):
    return {"parameter": name, "float": float(f), "int": i if isinstance(i, (int, list, dict)) else int(i),
            "effective": float(eff), "rel_error": _rel(float(f), float(eff)), "unit": unit,
            "clipped": bool(clipped), "note": note}


def _weight_exp(wmax_scaled: float, mag_max: int) -> int:
    """Smallest e in [-8, 7] with wmax_scaled / 2**e <= mag_max (WEXP_MIN if tiny)."""
    if wmax_scaled <= 0:
        return 0
    e = math.ceil(math.log2(wmax_scaled / mag_max))
    return max(WEXP_MIN, e)


def _mag_max(sign: str) -> int:
    return 254 if sign == "mixed" else 255


def choose_scale(pop: LoweredPopulation, incoming: list[LoweredProjection]) -> tuple[float, dict]:
    """The population's voltage scale K and the constraint that set it."""
    v_mag = max(abs(pop.vth), abs(pop.v_reset), float(np.abs(pop.v0).max(initial=0.0)),
                # v_inf = bias / dv; without leak (dv = 0, ``if``) there is none and v stays below v_th
                float(np.abs(pop.bias).max(initial=0.0)) / pop.dv if pop.dv > 0 else 0.0)
    limits = {"potential (24 bits)": V_MAX / (HEADROOM * v_mag) if v_mag > 0 else math.inf}
    if pop.vth <= 0:
        raise CompileError(f"population '{pop.name}': the threshold must lie above the resting/leak potential "
                           f"for Loihi (v_th - v_rest = {pop.vth:g} V)")
    limits["threshold mantissa (17 bits)"] = VTH_MANT_MAX * 64 / pop.vth
    bmax = float(np.abs(pop.bias).max(initial=0.0)) * 1.05  # room for the dv_eff/dv bias correction
    if bmax > 0:
        limits["bias (13-bit mantissa, exp <= 7)"] = BIAS_MANT_MAX * 2**BIAS_EXP_MAX / bmax
    for pr in incoming:
        wmax = float(np.abs(pr.matrix().data).max(initial=0.0))
        if pr.plasticity is not None:
            wmax = max(wmax, abs(pr.factor) * pr.plasticity["w_max"])
        if wmax > 0:
            limits[f"weights of '{pr.name}' (8 bits, weight_exp <= 7)"] = _mag_max(pr.sign) * 64 * 2**WEXP_MAX / wmax
    which = min(limits, key=limits.get)
    K = limits[which]
    if not math.isfinite(K) or K <= 0:
        raise CompileError(f"population '{pop.name}': no voltage scale fits every parameter ({limits})")
    return K, {"K_per_volt": K, "set_by": which, "candidates": {k: v for k, v in limits.items() if math.isfinite(v)}}


def quantize(low: LoweredNetwork) -> Quantized:
    q = Quantized()
    rep_pops, rep_projs = [], []
    incoming: dict[str, list[LoweredProjection]] = {}
    for pr in low.projections.values():
        incoming.setdefault(pr.target, []).append(pr)
    dt = low.dt
    for pop in low.populations.values():
        K, why = choose_scale(pop, incoming.get(pop.name, []))
        entries = []
        du_i = int(np.clip(np.rint(pop.du * 4096) - 1, 0, 4095))
        dv_i = int(np.clip(np.rint(pop.dv * 4096), 0, 4095))
        du_eff, dv_eff = (du_i + 1) / 4096, dv_i / 4096
        entries.append(_entry("du", pop.du, du_i, du_eff, "1/step", note="effective (du_int + 1)/4096"))
        entries.append(_entry("dv", pop.dv, dv_i, dv_eff, "1/step", clipped=pop.dv * 4096 > 4095.5))
        vth_i = int(np.rint(pop.vth * K / 64))
        entries.append(_entry("vth", pop.vth, vth_i, vth_i * 64 / K, "V", clipped=vth_i > VTH_MANT_MAX,
                              note="effective vth_mant * 64 / K"))
        # The bias sets the steady state v_inf = bias / dv. Scale it by dv_eff / dv so that the
        # quantized decay keeps v_inf (and so the firing threshold crossing) where it was; only the
        # time constant then changes.
        bias_target = pop.bias * (dv_eff / pop.dv) if pop.dv > 0 else pop.bias
        scaled = bias_target * K
        # per neuron: the smallest exponent whose mantissa fits
        exps = np.zeros(pop.size, dtype=np.int64)
        for e in range(BIAS_EXP_MAX, -1, -1):
            fits = np.abs(np.rint(scaled / 2**e)) <= BIAS_MANT_MAX
            exps = np.where(fits, e, exps)
        mant = np.rint(scaled / 2.0**exps).astype(np.int64)
        bias_clip = np.abs(mant) > BIAS_MANT_MAX
        mant = np.clip(mant, -BIAS_MANT_MAX - 1, BIAS_MANT_MAX)
        bias_eff = mant * 2.0**exps / K
        if np.any(pop.bias != 0) and pop.dv == 0:  # no leak (``if``): the bias is a ramp per step, no v_inf
            k = int(np.argmax(np.abs(pop.bias)))
            entries.append(_entry("bias", pop.bias[k], {"mant": int(mant[k]), "exp": int(exps[k])}, bias_eff[k], "V/step",
                                  clipped=bool(bias_clip.any()), note=f"largest of {pop.size}; no leak (dv = 0)"))
        elif np.any(pop.bias != 0):
            k = int(np.argmax(np.abs(pop.bias)))
            entries.append(_entry("bias", pop.bias[k], {"mant": int(mant[k]), "exp": int(exps[k])}, bias_eff[k], "V/step",
                                  clipped=bool(bias_clip.any()),
                                  note=f"largest of {pop.size}; scaled by dv_eff/dv = {dv_eff / pop.dv:.5f} to keep "
                                       f"v_inf = bias/dv; max rel error of v_inf over neurons "
                                       f"{float(np.max(np.abs(bias_eff / dv_eff - pop.bias / pop.dv) / np.maximum(np.abs(pop.bias / pop.dv), 1e-300))):.2e}"))
        vr_i = int(np.rint(pop.v_reset * K))
        if pop.process == "NDLIF":
            entries.append(_entry("v_reset", pop.v_reset, vr_i, vr_i / K, "V"))
        v0 = np.rint(pop.v0 * K).astype(np.int64)
        u0 = np.rint(pop.u0 * K).astype(np.int64)
        overflow = bool(np.abs(v0).max(initial=0) > V_MAX or np.abs(u0).max(initial=0) > V_MAX)
        entries.append(_entry("v0", float(pop.v0.max(initial=0)), int(v0.max(initial=0)), float(v0.max(initial=0)) / K, "V",
                              clipped=overflow, note="largest initial value"))
        tau_m_eff = -dt / math.log(1 - dv_eff) if 0 < dv_eff < 1 else math.inf
        effects = {
            "tau_m_s": {"float": pop.tau_m, "effective": tau_m_eff, "rel_error": _rel(pop.tau_m, tau_m_eff)},
            "v_th_V": {"float": pop.vth + pop.v_offset, "effective": vth_i * 64 / K + pop.v_offset,
                       "rel_error": _rel(pop.vth, vth_i * 64 / K)},
        }
        if pop.tau_syn is not None:
            tau_s_eff = -dt / math.log(1 - du_eff) if 0 < du_eff < 1 else 0.0
            effects["tau_syn_s"] = {"float": pop.tau_syn, "effective": tau_s_eff, "rel_error": _rel(pop.tau_syn, tau_s_eff)}
        q.populations[pop.name] = QuantizedPopulation(pop.name, K, du_i, dv_i, vth_i, mant, exps, vr_i, v0, u0)
        rep_pops.append({"population": pop.name, "process": pop.process, "scale": why, "parameters": entries,
                         "effects": effects, "overflow": overflow})
    for pr in low.projections.values():
        K = q.populations[pr.target].K
        mag = _mag_max(pr.sign)
        M = pr.matrix()  # sparse (n_post, n_pre); quantized element-wise on its non-zeros
        w = M.data
        w_top = float(np.abs(w).max(initial=0.0))
        if pr.plasticity is not None:  # room for learned weights up to w_max
            w_top = max(w_top, abs(pr.factor) * pr.plasticity["w_max"])
        wmax = w_top * K / 64.0
        e = _weight_exp(wmax, mag)
        scaled = w * K / 64.0 / 2.0**e
        if pr.sign == "mixed":
            wi = 2 * np.rint(scaled / 2)
            lo, hi = -256, 254
        elif pr.sign == "excitatory":
            wi, lo, hi = np.rint(scaled), 0, 255
        else:
            wi, lo, hi = np.rint(scaled), -255, 0
        clipped = int(((wi < lo) | (wi > hi)).sum())
        wi = np.clip(wi, lo, hi).astype(np.int64)
        eff = wi * 2.0**e * 64 / K
        nz = w != 0
        rel = np.abs(eff[nz] - w[nz]) / np.abs(w[nz]) if nz.any() else np.zeros(0)
        zeroed = int((nz & (wi == 0)).sum())
        Wq = M.copy()
        Wq.data = wi
        q.projections[pr.name] = QuantizedProjection(pr.name, Wq, int(e), 8, pr.sign)
        rep_projs.append({
            "projection": pr.name, "target_scale_K": K, "weight_exp": int(e), "num_weight_bits": 8,
            "sign_mode": pr.sign, "synapses": int(nz.sum()),
            "float_max_abs": float(np.abs(w).max(initial=0.0)),
            "int_range": [int(wi.min(initial=0)), int(wi.max(initial=0))],
            "rel_error_max": float(rel.max(initial=0.0)), "rel_error_mean": float(rel.mean()) if len(rel) else 0.0,
            "zeroed": zeroed, "clipped": clipped,
            "effective_lsb_V": 2.0**e * 64 / K,
            "plastic": pr.plasticity is not None,
        })
    q.report = {"pass": "quantize", "rounding": "nearest (ties to even)", "populations": rep_pops,
                "projections": rep_projs,
                "warnings": [f"projection '{r['projection']}': {r['zeroed']} weights quantize to 0"
                             for r in rep_projs if r["zeroed"]]
                + [f"population '{r['population']}': initial state overflows 24 bits" for r in rep_pops if r["overflow"]]}
    return q


def report_table(report: dict) -> str:
    """A readable summary of the quantization report."""
    lines = ["quantization (float -> Loihi 2 fixed point):"]
    for p in report["populations"]:
        sc = p["scale"]
        lines.append(f"  {p['population']} ({p['process']}): K = {sc['K_per_volt']:.4g} /V, set by {sc['set_by']}")
        for e in p["parameters"]:
            flag = " CLIPPED" if e["clipped"] else ""
            lines.append(f"    {e['parameter']:<8} float {e['float']:<12.6g} int {str(e['int']):<22} "
                         f"effective {e['effective']:<12.6g} rel.err {e['rel_error']:.2e}{flag}")
        eff = ", ".join(f"{k} {v['float']:.6g} -> {v['effective']:.6g} ({v['rel_error']:.1e})" for k, v in p["effects"].items())
        lines.append(f"    effect: {eff}")
    for r in report["projections"]:
        lines.append(f"  {r['projection']}: {r['synapses']} synapses, weight_exp {r['weight_exp']}, ints {r['int_range']}, "
                     f"rel.err max {r['rel_error_max']:.2e} mean {r['rel_error_mean']:.2e}, zeroed {r['zeroed']}, "
                     f"clipped {r['clipped']}")
    for w in report["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


class Quantize:
    """The quantize pass (fixed-point targets; float targets keep the float Loihi form), then the
    learning-engine encodings of the plastic projections in the target's number format."""

    name = "quantize"
    requires = ("lowered",)
    provides = ("quantized",)

    def run(self, c: Compilation) -> PassReport:
        if c.target.number_format == "fixed":
            c.quantized = quantize(c.lowered)
        learning_checks(c.lowered, c.quantized)
        if c.quantized is None:
            return PassReport(self.name, f"{c.target.number_format}: nothing to quantize",
                              warnings=list(c.lowered.warnings))
        return PassReport(self.name, "float -> Loihi 2 fixed point", c.quantized.report,
                          warnings=list(c.quantized.report["warnings"]) + list(c.lowered.warnings))
