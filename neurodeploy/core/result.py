"""The backend-independent simulation Result, and its file format.

Every backend returns a :class:`Result`; ``neurodeploy run`` saves it as ``result.npz`` plus a
human-readable ``summary.json``. Times are in seconds, values in SI units.

``result.npz`` layout (a plain NumPy archive, loaded with ``allow_pickle=False``):

=============================  =====================================================
``meta``                       uint8 array holding UTF-8 JSON: format version, network,
                               backend, target, dt, steps, seed, wall time, versions,
                               options, and the list of probes with their kind and unit
``counts/<population>``        int64 (size,): spikes per neuron over the whole run
``spikes/<name>/i``            int64: neuron index of each recorded spike
``spikes/<name>/t``            float64: its time (start of the step: ``k dt``)
``trace/<probe>/t``            float64 (T,): sample times (state at the end of step ``k``
                               is stored at ``k dt``)
``trace/<probe>/index``        int64 (n,): recorded neuron (or synapse) indices
``trace/<probe>/values``       float64 (T, n)
=============================  =====================================================
"""

from __future__ import annotations

import datetime
import io
import json
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .io import atomic_write_bytes, atomic_write_json

FORMAT = "neurodeploy-result"
FORMAT_VERSION = 1


@dataclass
class SpikeTrains:
    size: int
    i: np.ndarray  # int64
    t: np.ndarray  # float64, s

    def steps(self, dt: float) -> np.ndarray:
        return np.rint(self.t / dt).astype(np.int64)


@dataclass
class Trace:
    target: str
    variable: str
    unit: str
    t: np.ndarray  # (T,)
    index: np.ndarray  # (n,)
    values: np.ndarray  # (T, n)


@dataclass
class Result:
    network: str
    backend: str
    target: str
    dt: float
    steps: int
    seed: int
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    spikes: dict[str, SpikeTrains] = field(default_factory=dict)
    traces: dict[str, Trace] = field(default_factory=dict)
    wall_time_s: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.dt * self.steps

    def rates(self) -> dict[str, float]:
        """Mean firing rate (Hz) of each population over the run."""
        return {k: float(c.sum()) / (len(c) * self.duration) if len(c) else 0.0 for k, c in self.counts.items()}

    def keep_probed_indices(self, probes) -> "Result":
        """Drop recorded spikes outside each spike probe's ``indices`` (backends record all)."""
        for pb in probes:
            if pb.variable == "spikes" and pb.indices is not None and pb.target in self.spikes:
                s = self.spikes[pb.target]
                keep = np.isin(s.i, np.asarray(pb.indices))
                self.spikes[pb.target] = SpikeTrains(s.size, s.i[keep], s.t[keep])
        return self

    def summary(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "network": self.network,
            "backend": self.backend,
            "target": self.target,
            "dt_s": self.dt,
            "steps": self.steps,
            "duration_s": self.duration,
            "seed": self.seed,
            "wall_time_s": round(self.wall_time_s, 6),
            "realtime_factor": round(self.wall_time_s / self.duration, 6) if self.duration else None,
            "populations": {
                k: {"size": int(len(c)), "spikes": int(c.sum()), "mean_rate_hz": round(self.rates()[k], 6),
                    "silent_fraction": round(float((c == 0).mean()), 6) if len(c) else None}
                for k, c in self.counts.items()
            },
            "probes": {k: {"target": tr.target, "variable": tr.variable, "unit": tr.unit,
                           "samples": int(len(tr.t)), "recorded": int(len(tr.index))}
                       for k, tr in self.traces.items()},
            "spike_probes": {k: {"size": s.size, "spikes": int(len(s.i))} for k, s in self.spikes.items()},
            "versions": self.versions,
            "options": self.options,
        }

    def to_pandas(self) -> "ResultFrames":
        """The result as pandas DataFrames (pandas is imported here, on first use):

        * ``spikes``: one row per recorded spike: ``population``, ``neuron``, ``step``, ``t_s``;
        * ``rates``: one row per neuron of every population: ``population``, ``neuron``,
          ``spikes`` (count over the run), ``rate_hz``;
        * ``traces``: one row per recorded sample, long format: ``probe``, ``target``,
          ``variable``, ``unit``, ``index`` (neuron or synapse), ``t_s``, ``value`` (SI units).
        """
        import pandas as pd

        spikes = pd.DataFrame({
            "population": pd.Categorical(np.concatenate([[k] * len(s.i) for k, s in self.spikes.items()] or [[]]),
                                         categories=list(self.spikes)),
            "neuron": np.concatenate([np.asarray(s.i, np.int64) for s in self.spikes.values()] or [np.zeros(0, np.int64)]),
            "step": np.concatenate([s.steps(self.dt) for s in self.spikes.values()] or [np.zeros(0, np.int64)]),
            "t_s": np.concatenate([np.asarray(s.t, float) for s in self.spikes.values()] or [np.zeros(0)]),
        })
        rates = pd.DataFrame({
            "population": pd.Categorical(np.concatenate([[k] * len(c) for k, c in self.counts.items()] or [[]]),
                                         categories=list(self.counts)),
            "neuron": np.concatenate([np.arange(len(c)) for c in self.counts.values()] or [np.zeros(0, np.int64)]),
            "spikes": np.concatenate([np.asarray(c, np.int64) for c in self.counts.values()] or [np.zeros(0, np.int64)]),
        })
        rates["rate_hz"] = rates["spikes"] / self.duration
        parts = []
        for k, tr in self.traces.items():
            T, n = np.asarray(tr.values).shape
            parts.append(pd.DataFrame({"probe": k, "target": tr.target, "variable": tr.variable, "unit": tr.unit,
                                       "index": np.tile(np.asarray(tr.index, np.int64), T),
                                       "t_s": np.repeat(np.asarray(tr.t, float), n),
                                       "value": np.asarray(tr.values, float).reshape(-1)}))
        traces = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["probe", "target", "variable", "unit", "index", "t_s", "value"])
        return ResultFrames(spikes, rates, traces)

    # --- other formats -----------------------------------------------------------------------
    def to_neo(self):
        """The result as a ``neo.Block`` (neo and quantities are imported here; ``pip install
        neurodeploy[neo]``), for Elephant and other Neo-based tools:

        * one ``Segment`` (0 to the run's duration) holding one ``SpikeTrain`` per neuron of each
          spike-probed population (``t_stop`` = duration, annotations ``population``, ``neuron``),
          in the order of :attr:`spikes` and of neuron index, and one ``AnalogSignal`` per trace
          probe (``name`` = probe, values in the probe's SI unit, ``sampling_period`` from the
          sample times; ``array_annotations['index']``: the recorded neuron or synapse indices);
          a trace sampled irregularly becomes an ``IrregularlySampledSignal``;
        * one ``Group`` per spike-probed population with its spike trains;
        * the block's annotations: network, backend, target, dt, steps, seed and the population
          sizes with their total spike counts (``counts`` are kept for populations without a spike
          probe, whose individual spikes were not recorded).
        """
        import neo
        import quantities as pq

        duration = self.duration * pq.s
        block = neo.Block(name=self.network, description=f"neurodeploy result: {self.network} on {self.target}",
                          network=self.network, backend=self.backend, target=self.target, dt_s=self.dt,
                          steps=self.steps, seed=self.seed,
                          spike_counts={k: int(c.sum()) for k, c in self.counts.items()},
                          population_sizes={k: int(len(c)) for k, c in self.counts.items()})
        seg = neo.Segment(name=f"{self.network} on {self.target}", index=0)
        block.segments.append(seg)
        for k, s in self.spikes.items():
            i, t = np.asarray(s.i, np.int64), np.asarray(s.t, float)
            order = np.lexsort((t, i))
            i, t = i[order], t[order]
            bounds = np.searchsorted(i, np.arange(s.size + 1))
            trains = []
            for n in range(s.size):
                st = neo.SpikeTrain(t[bounds[n]:bounds[n + 1]] * pq.s, t_start=0 * pq.s, t_stop=duration,
                                    sampling_rate=(1.0 / self.dt) * pq.Hz, name=f"{k}[{n}]",
                                    population=k, neuron=n)
                trains.append(st)
            seg.spiketrains.extend(trains)
            block.groups.append(neo.Group(trains, name=k, population=k))
        for k, tr in self.traces.items():
            unit = _quantity_unit(pq, tr.unit)
            t = np.asarray(tr.t, float)
            values = np.asarray(tr.values, float) * unit
            meta = dict(name=k, target=tr.target, variable=tr.variable, unit_si=tr.unit,
                        array_annotations={"index": np.asarray(tr.index, np.int64)})
            period = np.diff(t)
            if len(t) >= 2 and np.allclose(period, period[0], rtol=1e-9, atol=0):
                sig = neo.AnalogSignal(values, t_start=t[0] * pq.s, sampling_period=float(period[0]) * pq.s, **meta)
                seg.analogsignals.append(sig)
            else:
                sig = neo.IrregularlySampledSignal(t * pq.s, values, **meta)
                seg.irregularlysampledsignals.append(sig)
        block.check_relationships()
        return block

    def save_nwb(self, path: str | Path, *, session_start_time=None, identifier: str | None = None) -> Path:
        """Write the result as an NWB 2 file (pynwb is imported here; ``pip install
        neurodeploy[neo]``), atomically:

        * the ``units`` table: one row per neuron of each spike-probed population, its
          ``spike_times`` (s), ``obs_intervals`` [0, duration] and the columns ``population`` and
          ``neuron``;
        * one ``TimeSeries`` per trace probe under ``acquisition`` (name = probe, data (T, n) in
          the probe's SI unit, ``starting_time`` and ``rate`` when regularly sampled, else
          ``timestamps``; the description names the target, variable and recorded indices);
        * ``session_description``, ``notes``: the network, backend, target, dt, steps and seed.

        ``session_start_time`` defaults to now (UTC), ``identifier`` to a random UUID; NWB
        requires both."""
        from pynwb import NWBHDF5IO, NWBFile, TimeSeries

        path = Path(path)
        nwb = NWBFile(session_description=f"neurodeploy simulation of {self.network} on {self.target}",
                      identifier=identifier or str(uuid.uuid4()),
                      session_start_time=session_start_time or datetime.datetime.now(datetime.timezone.utc),
                      notes=json.dumps({"network": self.network, "backend": self.backend, "target": self.target,
                                        "dt_s": self.dt, "steps": self.steps, "seed": self.seed,
                                        "versions": self.versions}),
                      source_script="neurodeploy", source_script_file_name="neurodeploy")
        if self.spikes:
            nwb.add_unit_column("population", "the neurodeploy population of this neuron")
            nwb.add_unit_column("neuron", "the neuron's index in its population")
            for k, s in self.spikes.items():
                i, t = np.asarray(s.i, np.int64), np.asarray(s.t, float)
                for n in range(s.size):
                    nwb.add_unit(spike_times=np.sort(t[i == n]), obs_intervals=[[0.0, self.duration]],
                                 population=k, neuron=n)
        for k, tr in self.traces.items():
            t = np.asarray(tr.t, float)
            period = np.diff(t)
            timing = (dict(starting_time=float(t[0]), rate=float(1.0 / period[0]))
                      if len(t) >= 2 and np.allclose(period, period[0], rtol=1e-9, atol=0)
                      else dict(timestamps=t))
            nwb.add_acquisition(TimeSeries(
                name=k, data=np.asarray(tr.values, float), unit=tr.unit if tr.unit != "1" else "dimensionless",
                description=f"{tr.target}.{tr.variable}; columns: indices {np.asarray(tr.index).tolist()}",
                **timing))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.nwb", dir=path.parent)  # pynwb wants .nwb
        os.close(fd)
        try:
            with NWBHDF5IO(tmp, "w") as io_:
                io_.write(nwb)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    # --- files -------------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "network": self.network, "backend": self.backend,
            "target": self.target, "dt": self.dt, "steps": self.steps, "seed": self.seed,
            "wall_time_s": self.wall_time_s, "versions": self.versions, "options": self.options,
            "spikes": {k: s.size for k, s in self.spikes.items()},
            "traces": {k: {"target": t.target, "variable": t.variable, "unit": t.unit} for k, t in self.traces.items()},
        }

    def save(self, path: str | Path) -> Path:
        arrays: dict[str, np.ndarray] = {"meta": np.frombuffer(json.dumps(self._meta()).encode(), dtype=np.uint8)}
        for k, c in self.counts.items():
            arrays[f"counts/{k}"] = np.asarray(c, dtype=np.int64)
        for k, s in self.spikes.items():
            arrays[f"spikes/{k}/i"] = np.asarray(s.i, dtype=np.int64)
            arrays[f"spikes/{k}/t"] = np.asarray(s.t, dtype=np.float64)
        for k, tr in self.traces.items():
            arrays[f"trace/{k}/t"] = np.asarray(tr.t, dtype=np.float64)
            arrays[f"trace/{k}/index"] = np.asarray(tr.index, dtype=np.int64)
            arrays[f"trace/{k}/values"] = np.asarray(tr.values, dtype=np.float64)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return atomic_write_bytes(path, buf.getvalue())

    def save_summary(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.summary())

    @classmethod
    def load(cls, path: str | Path) -> "Result":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"{path}: not a neurodeploy result (version {FORMAT_VERSION})")
            r = cls(meta["network"], meta["backend"], meta["target"], meta["dt"], meta["steps"], meta["seed"],
                    wall_time_s=meta["wall_time_s"], versions=meta["versions"], options=meta["options"])
            for key in z.files:
                if key.startswith("counts/"):
                    r.counts[key[7:]] = z[key]
            for k, size in meta["spikes"].items():
                r.spikes[k] = SpikeTrains(size, z[f"spikes/{k}/i"], z[f"spikes/{k}/t"])
            for k, info in meta["traces"].items():
                r.traces[k] = Trace(info["target"], info["variable"], info["unit"], z[f"trace/{k}/t"],
                                    z[f"trace/{k}/index"], z[f"trace/{k}/values"])
        return r


def _quantity_unit(pq, unit: str):
    """A ``quantities`` unit for a neurodeploy SI unit name ("1": dimensionless)."""
    if unit in ("1", "", None):
        return pq.dimensionless
    try:
        return pq.Quantity(1.0, unit).units
    except (LookupError, ValueError, AttributeError):
        raise ValueError(f"unit '{unit}' has no counterpart in the quantities package") from None


@dataclass
class ResultFrames:
    """:meth:`Result.to_pandas`: the spikes, the per-neuron rates and the traces as DataFrames."""

    spikes: object  # pandas.DataFrame
    rates: object
    traces: object

    def __repr__(self) -> str:
        per_pop = self.rates.groupby("population", observed=True)["rate_hz"].agg(["count", "mean"])
        per_pop.columns = ["neurons", "mean_rate_hz"]
        return (f"spikes ({len(self.spikes)} rows):\n{self.spikes!r}\n\nrates per population:\n{per_pop!r}\n\n"
                f"traces ({len(self.traces)} rows):\n{self.traces!r}")
