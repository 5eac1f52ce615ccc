"""Figures people would rather look at than read: a spike raster and the recorded traces."""

from __future__ import annotations

import io
from pathlib import Path

from .io import atomic_write_bytes
from .result import Result


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically, then close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())


_SCALE = {"volt": (1e3, "mV"), "amp": (1e9, "nA"), "second": (1e3, "ms"), "hertz": (1.0, "Hz")}


def raster_and_traces(result: Result, path: str | Path, max_traces: int = 4) -> Path:
    """Raster of every recorded spike train above the recorded state traces (one panel each)."""
    plt = pyplot()
    trains = list(result.spikes.items())
    traces = list(result.traces.items())[:max_traces]
    rows = (1 if trains else 0) + len(traces)
    if rows == 0:
        raise ValueError("nothing was recorded: add probes to the spec to plot")
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.2 + 1.8 * rows), sharex=True, squeeze=False)
    axes = axes[:, 0]
    t_end = result.duration * 1e3
    ax_i = 0
    if trains:
        ax = axes[0]
        offset, ticks, labels = 0, [], []
        total = sum(s.size for _, s in trains)
        size = max(2.0, min(60.0, 3000.0 / max(total, 1)))  # visible marks for small populations
        for k, (name, s) in enumerate(trains):
            ax.scatter(s.t * 1e3, s.i + offset, s=size, marker="|", color=f"C{k}", linewidths=0.8)
            ticks.append(offset + s.size / 2)
            labels.append(f"{name}\n{result.rates().get(name, len(s.i) / max(s.size, 1) / result.duration):.1f} Hz"
                          if name in result.counts else name)
            offset += s.size
            ax.axhline(offset - 0.5, color="0.85", lw=0.5)
        ax.set_yticks(ticks, labels, fontsize=8)
        ax.set_ylim(-0.5, offset - 0.5)
        ax.set_title(f"{result.network} on {result.target}" + (f" ({result.backend})" if result.backend != result.target else "") + ": spikes", fontsize=10)
        ax_i = 1
    for ax, (name, tr) in zip(axes[ax_i:], traces):
        scale, unit = _SCALE.get(tr.unit, (1.0, tr.unit))
        for c in range(min(tr.values.shape[1], 8)):
            ax.plot(tr.t * 1e3, tr.values[:, c] * scale, lw=0.8, label=f"#{tr.index[c]}")
        ax.set_ylabel(f"{tr.variable} ({unit})", fontsize=8)
        ax.set_title(f"{name}", fontsize=9, loc="left")
        if tr.values.shape[1] > 1:
            ax.legend(fontsize=6, ncol=4, loc="upper right")
    axes[-1].set_xlabel("time (ms)")
    axes[-1].set_xlim(0, t_end)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
