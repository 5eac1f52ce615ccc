"""Quantize pass: float Lava parameters -> Loihi 2 fixed point, with a full report.

The integer datapath is Lava's ``PyLifModelBitAcc`` / ``PyDenseModelBitAcc``
(``../shared/research/loihi_lava.md`` §2): 24-bit ``u``/``v``; 12-bit ``du``/``dv`` against 4096
with a hidden +1 on ``du``; synaptic input and threshold shifted left by 6; bias as a 13-bit
signed mantissa times ``2**bias_exp`` (0..7); 8-bit weight magnitudes with a per-connection
``weight_exp`` (-8..7), even values only for mixed-sign connections.

Each population gets one scale ``K`` (integer voltage units per volt, ``v_int ~ K v``) shared by
everything that feeds it. ``K`` must keep the threshold mantissa in 17 bits, the bias in range
and every incoming weight representable with some ``weight_exp``. Within those limits it is
chosen from the signal range (:func:`choose_scale`): the potential with ``HEADROOM`` times its
largest expected magnitude (threshold, reset, initial value, steady state) inside 24 bits; and,
when that leaves the smallest incoming weight coarse (a single spike moves ``u`` by multiples of
64 integer units, the ``a_in << 6`` of the datapath), ``K`` is raised until the smallest weight
is ``RES_TARGET`` such steps -- as far as the threshold, the potential's reachable range and the
synaptic current's reachable range (every input spiking every step: excitatory and inhibitory
fan-in sums over ``du``) allow. So a threshold far above the PSP no longer coarsens the PSP:
the report states the resolution of ``v`` (one LSB in volts) against the smallest weight and
PSP, and warns when one input step is still more than ``COARSE_REL`` of the smallest weight. Then:

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
RES_TARGET = 128  # K is raised (within the limits) until the smallest weight is this many input steps
COARSE_REL = 0.01  # warn when one input step (64 LSB of v) exceeds this fraction of the smallest weight
INPUT_STEP = 64  # a spike moves u by a multiple of 2**6 integer units (a_in << 6)
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


def _signal(pop: LoweredPopulation, incoming: list[LoweredProjection]) -> dict:
    """What the population's inputs can reach, in Lava-float volts: the smallest non-zero incoming
    weight of a static projection, and the largest per-neuron sums of excitatory / inhibitory
    incoming weights (a plastic projection counts with ``w_max``). From the COO triplets: no
    matrix is built."""
    pos = np.zeros(pop.size)
    neg = np.zeros(pop.size)
    w_min, plastic, by = math.inf, False, {}
    for pr in incoming:
        w = np.asarray(pr.w, dtype=float)
        if pr.plasticity is not None:
            plastic = True
            w = np.full_like(w, abs(pr.factor) * pr.plasticity["w_max"] * (1.0 if pr.factor >= 0 else -1.0))
        else:
            nz = np.abs(w[w != 0])
            if nz.size:
                by[pr.name] = float(nz.min())
                w_min = min(w_min, by[pr.name])
        j = np.asarray(pr.j, dtype=np.int64)
        pos += np.bincount(j, weights=np.clip(w, 0.0, None), minlength=pop.size)[:pop.size]
        neg += np.bincount(j, weights=np.clip(-w, 0.0, None), minlength=pop.size)[:pop.size]
    return {"w_min": w_min, "w_min_by_projection": by, "fan_in_exc": float(pos.max(initial=0.0)),
            "fan_in_inh": float(neg.max(initial=0.0)), "plastic": plastic}


def psp_factor(du: float, dv: float, max_steps: int = 100_000) -> float:
    """Peak of ``v`` (Lava form) after one input of 1 into ``u``: ``u`` decays by ``du``, ``v`` by
    ``dv`` and integrates ``u`` (1 for ``du = 1``, i.e. ``lif``/``if``: the input jumps ``v``)."""
    u, v, peak = 1.0, 0.0, 0.0
    for _ in range(max_steps):
        v = v * (1 - dv) + u
        if v <= peak:
            break
        peak = v
        u *= 1 - du
        if u < 1e-12:
            break
    return peak


def choose_scale(pop: LoweredPopulation, incoming: list[LoweredProjection], sig: dict | None = None) -> tuple[float, dict]:
    """The population's voltage scale K and the constraint that set it.

    Hard limits (the threshold, bias and weight formats) bound K from above. Within them K is the
    old, threshold-led choice (``HEADROOM`` x the largest expected |v| inside 24 bits) unless that
    leaves the smallest incoming weight fewer than ``RES_TARGET`` input steps (64 integer units
    each); then K is raised towards that target, as far as the threshold, the reachable potential
    and the reachable synaptic current (every input spiking every step, over ``du``) allow."""
    v_inf = float(np.abs(pop.bias).max(initial=0.0)) / pop.dv if pop.dv > 0 else 0.0
    v_mag = max(abs(pop.vth), abs(pop.v_reset), float(np.abs(pop.v0).max(initial=0.0)),
                # v_inf = bias / dv; without leak (dv = 0, ``if``) there is none and v stays below v_th
                v_inf)
    if pop.vth <= 0:
        raise CompileError(f"population '{pop.name}': the threshold must lie above the resting/leak potential "
                           f"for Loihi (v_th - v_rest = {pop.vth:g} V)")
    hard = {"threshold mantissa (17 bits)": VTH_MANT_MAX * 64 / pop.vth}
    bmax = float(np.abs(pop.bias).max(initial=0.0)) * 1.05  # room for the dv_eff/dv bias correction
    if bmax > 0:
        hard["bias (13-bit mantissa, exp <= 7)"] = BIAS_MANT_MAX * 2**BIAS_EXP_MAX / bmax
    for pr in incoming:
        wmax = float(np.abs(pr.matrix().data).max(initial=0.0))
        if pr.plasticity is not None:
            wmax = max(wmax, abs(pr.factor) * pr.plasticity["w_max"])
        if wmax > 0:
            hard[f"weights of '{pr.name}' (8 bits, weight_exp <= 7)"] = _mag_max(pr.sign) * 64 * 2**WEXP_MAX / wmax
    if pop.v_lsb is not None:  # stated by the spec: honoured, or refused if a format cannot hold it
        K = 1.0 / pop.v_lsb
        # the largest expected |v| must fit the 24-bit potential too (without the chosen scale's headroom)
        reach = dict(hard, **({"potential (24 bits) at its largest expected value": V_MAX / v_mag} if v_mag > 0 else {}))
        over = {k: v for k, v in reach.items() if K > v * (1 + 1e-9)}
        if over:
            k, lim = min(over.items(), key=lambda t: t[1])
            raise CompileError(
                f"population '{pop.name}': fixed_point.v_lsb = {pop.v_lsb:.6g} V ({K:.6g} integer units per volt) "
                f"does not fit the {k}: at most {lim:.6g} units per volt. hint: state v_lsb >= {1 / lim:.6g} V, "
                f"or leave fixed_point out and let the compiler choose the scale")
        return K, {"K_per_volt": K, "set_by": f"the spec (fixed_point.v_lsb = {pop.v_lsb:.6g} V)",
                   "candidates": {k: v for k, v in hard.items() if math.isfinite(v)}}
    sig = sig if sig is not None else _signal(pop, incoming)
    preferred = {"potential (24 bits)": V_MAX / (HEADROOM * v_mag) if v_mag > 0 else math.inf}
    limits = dict(preferred, **hard)
    which = min(limits, key=limits.get)
    K = limits[which]
    boost = {}
    # a plastic projection's learning-engine constants are encoded against K: keep its scale as it was
    if math.isfinite(sig["w_min"]) and not sig["plastic"] and sig["w_min"] * K < RES_TARGET * INPUT_STEP:
        u_top = max(max(sig["fan_in_exc"], sig["fan_in_inh"]) / max(pop.du, 1e-12),
                    float(np.abs(pop.u0).max(initial=0.0)))
        v_reach = max(abs(pop.vth), abs(pop.v_reset), float(np.abs(pop.v0).max(initial=0.0)), v_inf)
        boost = {"smallest weight resolution": RES_TARGET * INPUT_STEP / sig["w_min"],
                 "synaptic current reach (24 bits)": V_MAX / u_top if u_top > 0 else math.inf,
                 "potential reach (24 bits)": V_MAX / v_reach if v_reach > 0 else math.inf,
                 **hard}
        bwhich = min(boost, key=boost.get)
        if boost[bwhich] > K:
            K, which = boost[bwhich], f"{bwhich} (raised from the threshold-led {limits[which]:.4g} /V)"
    if not math.isfinite(K) or K <= 0:
        raise CompileError(f"population '{pop.name}': no voltage scale fits every parameter ({limits})")
    cands = {k: v for k, v in {**limits, **boost}.items() if math.isfinite(v)}
    return K, {"K_per_volt": K, "set_by": which, "candidates": cands}


def largest_fine_threshold(w_min: float) -> float:
    """The largest threshold (Lava form: ``v_th`` minus the resting/leak potential, volts) at which
    the 17-bit threshold mantissa still leaves room for a scale that gives the smallest weight
    ``w_min`` (Lava-form volts) ``RES_TARGET`` input steps. Above it ``K`` is set by the threshold,
    the smallest weight's resolution falls in proportion and the report warns once the rounding
    exceeds ``COARSE_REL``."""
    return VTH_MANT_MAX * 64 * w_min / (RES_TARGET * INPUT_STEP)


def resolution(pop: LoweredPopulation, K: float, sig: dict, exps: dict) -> dict:
    """The resolution of ``v`` against the smallest weight and PSP, for the report.

    One LSB of ``v`` is ``1/K`` volts. A single spike moves ``u`` by a multiple of
    ``2**(6 + max(e, 0))`` LSB (``e``: the projection's weight exponent; a negative exponent
    shifts the summed input right, which floors it), so a projection's smallest weight ``w`` is
    realised to within ``(1 + 2**(e-1)) step / w`` (floored) or ``step / (2 w)`` (rounded); the
    worst projection is reported."""
    lsb = 1.0 / K
    out = {"v_lsb_V": lsb, "psp_factor": psp_factor(pop.du, pop.dv)}
    w_min = sig["w_min"]
    if not math.isfinite(w_min):
        return out
    rel, step = 0.0, INPUT_STEP * lsb
    for name, w in sig["w_min_by_projection"].items():
        e = exps.get(name, 0)
        st = 2.0 ** (6 + max(e, 0)) * lsb
        # floored: below one step, plus the mantissa's own rounding (half of 2**e steps)
        r = (1 + 2.0 ** (e - 1)) * st / w if e < 0 else st / (2 * w)
        if r >= rel:
            rel, step = r, st
    psp = w_min * out["psp_factor"]
    # the part set by v's resolution alone (the scale K): one 64-LSB input step against the weight
    v_rel = INPUT_STEP * lsb / w_min
    out.update({"smallest_weight_V": w_min, "smallest_psp_V": psp, "weight_lsb_ratio": w_min / lsb,
                "psp_lsb_ratio": psp / lsb, "input_step_V": step, "smallest_weight_rel_rounding": min(rel, 1.0),
                "v_resolution_rel": v_rel, "coarse": v_rel > COARSE_REL})
    return out


def quantize(low: LoweredNetwork) -> Quantized:
    q = Quantized()
    rep_pops, rep_projs = [], []
    incoming: dict[str, list[LoweredProjection]] = {}
    for pr in low.projections.values():
        incoming.setdefault(pr.target, []).append(pr)
    dt = low.dt
    exps_of: dict[str, dict[str, int]] = {}  # target -> projection -> weight_exp (for the resolution)
    signals = {}
    for pop in low.populations.values():
        signals[pop.name] = sig = _signal(pop, incoming.get(pop.name, []))
        K, why = choose_scale(pop, incoming.get(pop.name, []), sig)
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
        # what one spike alone delivers: a negative exponent shifts the summed input right (floor)
        alone = np.floor(wi / 2.0**-e) * 64 / K if e < 0 else eff
        rel_alone = np.abs(alone[nz] - w[nz]) / np.abs(w[nz]) if nz.any() else np.zeros(0)
        zeroed = int((nz & (wi == 0)).sum())
        Wq = M.copy()
        Wq.data = wi
        q.projections[pr.name] = QuantizedProjection(pr.name, Wq, int(e), 8, pr.sign)
        exps_of.setdefault(pr.target, {})[pr.name] = int(e)
        rep_projs.append({
            "projection": pr.name, "target_scale_K": K, "weight_exp": int(e), "num_weight_bits": 8,
            "sign_mode": pr.sign, "synapses": int(nz.sum()),
            "float_max_abs": float(np.abs(w).max(initial=0.0)),
            "int_range": [int(wi.min(initial=0)), int(wi.max(initial=0))],
            "rel_error_max": float(rel.max(initial=0.0)), "rel_error_mean": float(rel.mean()) if len(rel) else 0.0,
            "single_spike_rel_error_max": float(rel_alone.max(initial=0.0)),
            "zeroed": zeroed, "clipped": clipped,
            "effective_lsb_V": 2.0**e * 64 / K,
            "plastic": pr.plasticity is not None,
        })
    for r in rep_pops:
        name = r["population"]
        r["resolution"] = resolution(low.populations[name], q.populations[name].K, signals[name],
                                     exps_of.get(name, {}))
    q.report = {"pass": "quantize", "rounding": "nearest (ties to even)", "populations": rep_pops,
                "projections": rep_projs,
                "warnings": [f"projection '{r['projection']}': {r['zeroed']} weights quantize to 0"
                             for r in rep_projs if r["zeroed"]]
                + [f"population '{r['population']}': initial state overflows 24 bits" for r in rep_pops if r["overflow"]]
                + [_coarse_warning(r) for r in rep_pops if r["resolution"].get("coarse")]}
    return q


def _coarse_warning(r: dict) -> str:
    res = r["resolution"]
    return (f"population '{r['population']}': coarse sub-threshold resolution: the smallest weight "
            f"{res['smallest_weight_V']:.3g} V (PSP {res['smallest_psp_V']:.3g} V) is only "
            f"{res['weight_lsb_ratio']:.3g} LSB of v (PSP/LSB {res['psp_lsb_ratio']:.3g}; 1 LSB = {res['v_lsb_V']:.3g} V, "
            f"a spike moves u by multiples of 64 LSB), so PSPs round by up to "
            f"{100 * res['smallest_weight_rel_rounding']:.3g} %; the scale is set by {r['scale']['set_by']}: "
            "the threshold is too far above the PSP for 24 bits (lower it, or scale weights and threshold up together)")


def _resolution_line(res: dict) -> str:
    line = f"    resolution: 1 LSB of v = {res['v_lsb_V']:.4g} V"
    if "smallest_weight_V" in res:
        line += (f"; smallest weight {res['smallest_weight_V']:.4g} V = {res['weight_lsb_ratio']:.4g} LSB, "
                 f"smallest PSP {res['smallest_psp_V']:.4g} V = {res['psp_lsb_ratio']:.4g} LSB (PSP/LSB); "
                 f"input step {res['input_step_V']:.4g} V: weight rounding up to "
                 f"{100 * res['smallest_weight_rel_rounding']:.3g} % (v resolution alone: "
                 f"{100 * res['v_resolution_rel']:.3g} %)" + (" COARSE" if res["coarse"] else ""))
    return line


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
        if "resolution" in p:
            lines.append(_resolution_line(p["resolution"]))
    for r in report["projections"]:
        lines.append(f"  {r['projection']}: {r['synapses']} synapses, weight_exp {r['weight_exp']}, ints {r['int_range']}, "
                     f"rel.err max {r['rel_error_max']:.2e} mean {r['rel_error_mean']:.2e}"
                     + (f" (one spike alone, floored by the negative exponent: max {r['single_spike_rel_error_max']:.2e})"
                        if r["weight_exp"] < 0 else "")
                     + f", zeroed {r['zeroed']}, clipped {r['clipped']}")
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
