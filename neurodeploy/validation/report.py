"""The readable validation report: one self-contained HTML page (plots embedded as base64 PNG,
matplotlib Agg), next to the machine-readable ``report.json``."""

from __future__ import annotations

import base64
import html
import io

import numpy as np

_SCALE = {"volt": (1e3, "mV"), "amp": (1e9, "nA")}
MAX_RASTER_NEURONS = 100
MAX_RASTER_PANELS = 6
MAX_TRACE_FIGURES = 6


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figures(verdict: dict, ref_name: str, tgt_name: str) -> list[tuple[str, str]]:
    """(caption, base64 PNG) for every plot of the report."""
    plt = _plt()
    arrays = verdict["arrays"]
    dt = verdict["grid"]["dt_s"]
    figs: list[tuple[str, str]] = []
    shown = [(pop, a) for pop, a in arrays["populations"].items() if a["ref"].any() or a["tgt"].any()][:MAX_RASTER_PANELS]
    if shown:
        sizes = [min(a["ref"].shape[1], MAX_RASTER_NEURONS) for _, a in shown]
        fig, axes = plt.subplots(len(shown), 1, figsize=(9, 1.2 + sum(1.0 + 0.015 * n for n in sizes)), sharex=True,
                                 squeeze=False, gridspec_kw={"height_ratios": [1.0 + 0.015 * n for n in sizes]})
        for ax, (pop, a), n in zip(axes[:, 0], shown, sizes):
            ref, tgt = a["ref"], a["tgt"]
            for m, style, label in ((ref, dict(marker="|", s=40, color="k"), ref_name),
                                    (tgt, dict(marker="x", s=12, color="C3", linewidths=0.7), tgt_name)):
                k, i = np.nonzero(m[:, :n])
                ax.scatter(k * dt * 1e3, i, label=label, **style)
            ax.set_ylabel(f"{pop}\nneuron", fontsize=8)
            ax.set_xlim(0, ref.shape[0] * dt * 1e3)
            ax.set_title(f"{pop}" + (f" (first {n} of {ref.shape[1]} neurons)" if n < ref.shape[1] else ""),
                         fontsize=8, loc="left")
        axes[0, 0].legend(fontsize=7, loc="upper right")
        axes[-1, 0].set_xlabel("time (ms)")
        figs.append(("Raster overlays (reference |, target x)", _png(fig)))
    pops = arrays["populations"]
    if pops:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        T = verdict["grid"]["steps"] * dt
        hi = 1.0
        for c, (pop, a) in enumerate(pops.items()):
            r, t = np.asarray(a["ref_counts"]) / T, np.asarray(a["tgt_counts"]) / T
            hi = max(hi, r.max(initial=0), t.max(initial=0))
            axes[0].scatter(r, t, s=8, alpha=0.6, color=f"C{c}", label=pop)
            axes[1].hist(t - r, bins=30, alpha=0.6, color=f"C{c}", label=pop)
        axes[0].plot([0, hi], [0, hi], color="0.6", lw=0.8)
        axes[0].set_xlabel(f"rate, {ref_name} (Hz)")
        axes[0].set_ylabel(f"rate, {tgt_name} (Hz)")
        axes[0].set_title("per-neuron rates", fontsize=9)
        axes[0].legend(fontsize=7)
        axes[1].set_xlabel("rate error, target - reference (Hz)")
        axes[1].set_ylabel("neurons")
        axes[1].set_title("rate error histogram", fontsize=9)
        figs.append(("Rate scatter and rate-error histogram", _png(fig)))
    for name, a in list(arrays["probes"].items())[:MAX_TRACE_FIGURES]:
        scale, unit = _SCALE.get(a["unit"], (1.0, a["unit"]))
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.0), gridspec_kw={"width_ratios": [3, 1]})
        for c in range(min(a["ref"].shape[1], 3)):
            axes[0].plot(a["t"] * 1e3, a["ref"][:, c] * scale, color=f"C{c}", lw=1.2, label=f"#{a['index'][c]} {ref_name}")
            axes[0].plot(a["t"] * 1e3, a["tgt"][:, c] * scale, color=f"C{c}", lw=0.8, ls="--", label=f"#{a['index'][c]} {tgt_name}")
        axes[0].set_xlabel("time (ms)")
        axes[0].set_ylabel(unit)
        axes[0].legend(fontsize=6, ncol=2)
        axes[0].set_title(f"{name}: trace overlay", fontsize=9)
        err = np.asarray(a["errors"]) * scale
        axes[1].hist(err if err.size else [0.0], bins=40, color="C3")
        axes[1].set_xlabel(f"error ({unit})")
        axes[1].set_title("error histogram", fontsize=9)
        figs.append((f"Trace overlay and error histogram, probe {name}", _png(fig)))
    return figs


def _cell(c: dict) -> str:
    if c["pass"] is None:
        return "<td>-</td>"
    return f"<td class='{'ok' if c['pass'] else 'bad'}'>{'pass' if c['pass'] else 'FAIL'}</td>"


def render_html(report: dict, figs: list[tuple[str, str]], compile_text: str | None) -> str:
    e = html.escape
    v = report["verdict"]
    head = (f"<h1>neurodeploy validate: {e(report['network'])} on {e(report['target'])} vs {e(report['reference'])}</h1>"
            f"<p class='{'ok' if v['pass'] else 'bad'} big'>{'PASS' if v['pass'] else 'FAIL'}</p>")
    if v["failures"]:
        head += "<ul>" + "".join(f"<li>{e(f)}</li>" for f in v["failures"]) + "</ul>"
    tol = report["tolerances"]
    head += (f"<p>Tolerances: kind <b>{e(tol['kind'])}</b>; {e('; '.join(tol['sources']))}. Coincidence window "
             f"{v['grid']['coincidence_window_steps']} steps ({tol['coincidence_window_s'] * 1e3:g} ms), van Rossum "
             f"tau {tol['van_rossum_tau_s'] * 1e3:g} ms; dt {v['grid']['dt_s'] * 1e3:g} ms, {v['grid']['steps']} steps. "
             f"IR sha256 {e(report['ir_sha256'][:16])}...; runs: {e(str(report['runs']))}</p>")
    rows = []
    for scope, group in (("population", v["populations"]), ("probe", v["probes"])):
        for name, info in group.items():
            for k, c in info["metrics"].items():
                op = ">=" if c["direction"] == "min" else "<="
                thr = "-" if c["threshold"] is None else f"{op} {c['threshold']:g}"
                val = "n/a" if c["value"] is None else f"{c['value']:.6g}"
                rows.append(f"<tr><td>{scope}</td><td>{e(name)}</td><td>{k}</td><td>{val}</td><td>{e(thr)}</td>"
                            f"{_cell(c)}<td>{e(c['source'])}</td><td class='why'>{e(c['why'])}</td></tr>")
    table = ("<h2>Checks</h2><table><tr><th>scope</th><th>name</th><th>metric</th><th>value</th><th>tolerance</th>"
             "<th>verdict</th><th>from</th><th>why</th></tr>" + "".join(rows) + "</table>")
    details = "<h2>Per population</h2><table><tr><th>population</th><th>size</th><th>spikes ref / target</th>" \
              "<th>rate ref / target (Hz)</th><th>active</th><th>fired only in ref / target</th></tr>"
    for name, p in v["populations"].items():
        details += (f"<tr><td>{e(name)}</td><td>{p['size']}</td><td>{p['spikes_ref']} / {p['spikes_target']}</td>"
                    f"<td>{p['rate_ref_hz']:.3f} / {p['rate_target_hz']:.3f}</td><td>{p['active_neurons']}</td>"
                    f"<td>{p['fired_in_reference_only']} / {p['fired_in_target_only']}</td></tr>")
    details += "</table>"
    if v["probes"]:
        details += "<h2>Per probe</h2><table><tr><th>probe</th><th>RMSE</th><th>RMSE (all samples)</th><th>samples</th></tr>"
        for name, p in v["probes"].items():
            details += (f"<tr><td>{e(name)}</td><td>{p['rmse']:.4g} {e(p['unit'])}</td><td>{p['rmse_all_samples']:.4g}</td>"
                        f"<td>{p['samples_compared']} ({e(p['samples'])})</td></tr>")
        details += "</table>"
    plots = "<h2>Plots</h2>" + "".join(f"<figure><img src='data:image/png;base64,{b}' alt='{e(c)}'>"
                                       f"<figcaption>{e(c)}</figcaption></figure>" for c, b in figs)
    comp = ""
    if compile_text:
        comp = f"<h2>Compile reports (quantization, core map)</h2><pre>{e(compile_text)}</pre>"
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}table{border-collapse:collapse;"
             "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}.ok{color:#070}.bad{color:#b00;font-weight:bold}"
             ".big{font-size:2em}.why{font-size:11px;color:#555}img{max-width:100%}pre{font-size:11px;overflow-x:auto}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>validate {e(report['network'])}</title>"
            f"<style>{style}</style></head><body>{head}{table}{details}{plots}{comp}</body></html>\n")
