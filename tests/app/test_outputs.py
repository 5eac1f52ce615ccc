"""Output directories (issue 16, items 1, 3 and 6): an interrupted command exits 130 and leaves
the previous run's files as they were (``summary.json`` present exactly when its run finished),
a bad ``-o`` is a usage error before anything is simulated, and a directory another run is
writing is refused. The mechanism is :func:`neurodeploy.core.io.output_dir`."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from neurodeploy.app import cli
from neurodeploy.backends import dispatch
from neurodeploy.core import io
from neurodeploy.core.errors import UsageError
from neurodeploy.core.result import Result

SPEC = "models/single_lif.yaml"
ROOT = Path(__file__).resolve().parents[2]


def cli_run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def snapshot(d: Path) -> dict[str, str]:
    """Every entry under ``d`` (hidden ones included) with the sha256 of its bytes."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(d.rglob("*"))}


def no_leftovers(d: Path) -> None:
    names = [p.name for p in d.rglob("*")] if d.exists() else []
    assert not [n for n in names if n.startswith(io.STAGE_PREFIX) or n == io.LOCK_NAME], names


# --- -o checked before any work (item 3) --------------------------------------------------------

def _bad_outputs(tmp: Path) -> dict[str, tuple[str, str]]:
    f = tmp / "afile"
    f.write_text("x")
    return {"empty": ("", "empty"), "file": (str(f), "existing file"),
            "under a file": (str(f / "sub" / "dir"), "is a file"),
            "device": ("/dev/null", "device")}


@pytest.mark.parametrize("case", ["empty", "file", "under a file", "device"])
def test_check_output_dir_names_path_and_reason(case, tmp_path):
    path, reason = _bad_outputs(tmp_path)[case]
    with pytest.raises(UsageError) as e:
        io.check_output_dir(path)
    assert reason in str(e.value) and (path in str(e.value) or case == "empty")


def test_unwritable_directory_is_refused(tmp_path, monkeypatch):
    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: pretend the permission bits hold
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) in (d, d / "new") else real(p, m))
    d.chmod(0o555)
    try:
        for target in (d, d / "new"):
            with pytest.raises(UsageError, match="not writable") as e:
                io.check_output_dir(target)
            assert str(d) in str(e.value)
    finally:
        d.chmod(0o755)


@pytest.mark.parametrize("case", ["empty", "file", "under a file", "device"])
@pytest.mark.parametrize("cmd", [["run", SPEC, "-t", "torch"], ["validate", SPEC, "-t", "torch"],
                                 ["deploy", SPEC, "-t", "loihi2-sim"], ["compile", SPEC, "-t", "loihi2-sim"]])
def test_bad_out_is_a_usage_error_before_any_run(cmd, case, tmp_path, monkeypatch, capsys):
    def must_not_run(*a, **k):
        raise AssertionError("simulated or compiled although -o is unusable")

    monkeypatch.setattr(dispatch, "simulate", must_not_run)
    monkeypatch.setattr("neurodeploy.validation.run.simulate", must_not_run)
    monkeypatch.setattr("neurodeploy.backends.lava.backend.LavaBackend.compile", must_not_run)
    cmd = [str(Path(c).resolve()) if c == SPEC else c for c in cmd]
    monkeypatch.chdir(tmp_path)  # `-o ""` must not write into the current directory
    path, reason = _bad_outputs(tmp_path)[case]
    before = snapshot(tmp_path)
    rc, _, err = cli_run([*cmd, "-o", path], capsys)
    assert rc == 2, err
    assert reason in err and (path in err or case == "empty")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv", [["export", "models/cuba_chain.yaml", "-o"],
                                  ["import", "tests/fixtures/nir-paper-lif/lif_norse.nir", "-o"],
                                  ["check", SPEC, "--ir"]])
def test_bad_output_file_is_a_usage_error(argv, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    d = tmp_path / "adir.nir"
    d.mkdir()
    suffix = ".nir" if argv[0] == "export" else ".yaml"
    for path, reason in ((str(f / f"x{suffix}"), "is a file, not a directory"),
                         (str(d), "is a directory"), (f"/dev/null/x{suffix}", "device")):
        rc, _, err = cli_run([*argv, path], capsys)
        assert rc == 2 and reason in err and path in err, err
    assert f.read_text() == "x" and not any(d.iterdir())


# --- interrupted runs (item 1) ------------------------------------------------------------------

def _previous_run(out: Path, capsys) -> dict[str, str]:
    rc, _, err = cli_run(["run", SPEC, "-t", "torch", "-o", str(out), "-q", "--plot"], capsys)
    assert rc == 0, err
    assert {"result.npz", "summary.json", "raster.png"} <= set(os.listdir(out))
    return snapshot(out)


def test_interrupt_between_result_and_summary_keeps_the_old_run(tmp_path, monkeypatch, capsys):
    """The issue's case: Ctrl-C after the new result.npz is written and before summary.json."""
    out = tmp_path / "o"
    old = _previous_run(out, capsys)

    def interrupted(self, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(Result, "save_summary", interrupted)
    rc, _, err = cli_run(["run", SPEC, "-t", "torch", "-o", str(out), "-q", "--duration", "20 ms"], capsys)
    assert rc == 130 and "interrupted" in err
    assert snapshot(out) == old  # no new result.npz beside the old summary.json
    no_leftovers(out)


def test_interrupted_first_run_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Result, "save_summary", lambda self, path: (_ for _ in ()).throw(KeyboardInterrupt))
    out = tmp_path / "a" / "b"
    rc, _, _ = cli_run(["run", SPEC, "-t", "torch", "-o", str(out), "-q"], capsys)
    assert rc == 130
    assert not (tmp_path / "a").exists()  # the directories it created are removed again


def test_finished_run_replaces_the_old_one_without_stale_files(tmp_path, capsys):
    out = tmp_path / "o"
    _previous_run(out, capsys)
    (out / "notes.txt").write_text("mine")  # not neurodeploy's: kept
    rc, _, _ = cli_run(["run", SPEC, "-t", "torch", "-o", str(out), "-q", "--duration", "20 ms"], capsys)
    assert rc == 0
    assert sorted(os.listdir(out)) == ["notes.txt", "result.npz", "summary.json"]  # old raster.png gone
    assert Result.load(out / "result.npz").summary()["duration_s"] == pytest.approx(0.02)
    no_leftovers(out)


def _sigint_at(monkeypatch, obj, name, when):
    """Wrap ``obj.name`` so that the process sends itself SIGINT (a real Ctrl-C) when
    ``when(*args)`` first holds."""
    orig = getattr(obj, name)
    sent = []

    def wrapper(*a, **k):
        if not sent and when(*a, **k):
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        return orig(*a, **k)

    monkeypatch.setattr(obj, name, wrapper)
    return sent


@pytest.mark.parametrize("kernel", ["eager", "fused"])
def test_sigint_during_torch_run(tmp_path, monkeypatch, capsys, kernel):
    """Ctrl-C in the eager loop (a step) and in the fused kernel (between kernel calls)."""
    from neurodeploy.backends.torch import fused
    from neurodeploy.backends.torch.simulator import TorchSim

    if kernel == "fused" and not fused.available()[0]:
        pytest.skip(fused.available()[1])
    out = tmp_path / "o"
    old = _previous_run(out, capsys)
    if kernel == "eager":
        sent = _sigint_at(monkeypatch, TorchSim, "step", lambda self, m: m == 20)
    else:
        monkeypatch.setattr(fused, "CHUNK_STEPS", 10)
        sent = _sigint_at(monkeypatch, fused, "_call", lambda kern, pl, m, *a: m > 20)
    rc, _, _ = cli_run(["run", SPEC, "-t", "torch", "-o", str(out), "-q", "--torch-kernel", kernel],
                       capsys)
    assert sent and rc == 130
    assert snapshot(out) == old
    no_leftovers(out)


def _brian2_sigint(monkeypatch, at_step: int):
    """A Brian2 network operation that sends SIGINT in step ``at_step``."""
    from neurodeploy.backends.brian2 import simulator

    build = simulator.build
    sent, steps = [], [0]

    def with_ctrl_c(net, opts):
        import brian2 as b2

        built = build(net, opts)

        @b2.network_operation(when="start")
        def ctrl_c():
            steps[0] += 1
            if not sent and steps[0] >= at_step:
                sent.append(steps[0])
                os.kill(os.getpid(), signal.SIGINT)

        built.network.add(ctrl_c)
        return built

    monkeypatch.setattr(simulator, "build", with_ctrl_c)
    return sent


@pytest.mark.parametrize("brian2_stops", [False, True], ids=["raised", "brian2-stop-handler"])
def test_sigint_during_brian2_run(brian2_stops, tmp_path, monkeypatch, capsys):
    """Brian2 turns Ctrl-C into Network.stop() and returns normally with truncated results (the
    issue: exit 0 and a summary claiming every step). ``raised``: our runs switch that off, the
    interrupt propagates; ``brian2-stop-handler``: with Brian2's handler left on, the check that
    the run reached its duration turns the early stop into the interrupt."""
    pytest.importorskip("brian2")
    from neurodeploy.backends.brian2 import simulator

    if brian2_stops:
        monkeypatch.setattr(simulator, "interrupts_raise", contextlib.nullcontext)
        # its "Simulation stop requested" warning goes to the stderr Brian2 saw at import: an
        # earlier test's closed capture
        monkeypatch.setattr(logging.getLogger("brian2"), "disabled", True)
    out = tmp_path / "o"
    old = _previous_run(out, capsys)
    sent = _brian2_sigint(monkeypatch, 200)
    rc, _, err = cli_run(["run", SPEC, "-t", "brian2", "--codegen", "numpy", "-o", str(out), "-q"], capsys)
    assert sent and rc == 130, err
    assert snapshot(out) == old
    no_leftovers(out)


def test_sigint_during_lava_run_does_not_hang(tmp_path, monkeypatch, capsys):
    """Lava's stop() after Ctrl-C waited forever for its broken worker processes; the run is
    now abandoned (workers terminated) and the command exits 130."""
    pytest.importorskip("lava")
    from neurodeploy.backends.lava import simulator

    run_steps, sent = simulator._run_steps, []

    def ctrl_c_while_running(*a, **k):  # SIGINT 4 s into Lava's run (compiling takes about 1-2 s)
        timer = threading.Timer(4.0, lambda: (sent.append(1), os.kill(os.getpid(), signal.SIGINT)))
        timer.start()
        try:
            return run_steps(*a, **k)
        finally:
            timer.cancel()

    monkeypatch.setattr(simulator, "_run_steps", ctrl_c_while_running)
    out = tmp_path / "o"
    t0 = time.perf_counter()
    rc, _, _ = cli_run(["run", SPEC, "-t", "lava", "-o", str(out), "-q", "--duration", "20 s"], capsys)
    assert sent and rc == 130
    assert time.perf_counter() - t0 < 60
    assert not out.exists()


@pytest.mark.parametrize("cmd", [["validate", SPEC, "-t", "torch", "--reference", "torch"],
                                 ["deploy", SPEC, "-t", "loihi2-sim"]])
def test_interrupted_validate_and_deploy_keep_the_old_outputs(cmd, tmp_path, monkeypatch, capsys):
    out = tmp_path / "o"
    rc, _, err = cli_run([*cmd, "-o", str(out)], capsys)
    assert rc == 0, err
    old = snapshot(out)
    assert "report.json" in old or "summary.json" in old

    def interrupted(self, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(Result, "save_summary", interrupted)
    rc, _, _ = cli_run([*cmd, "-o", str(out), "--json"], capsys)
    assert rc == 130
    assert snapshot(out) == old
    no_leftovers(out)


@pytest.mark.slow
def test_interrupted_eval_keeps_the_old_metrics(tmp_path, monkeypatch, capsys):
    from neurodeploy.validation import blocks

    out = tmp_path / "o"
    cmd = ["eval", "models/ipvae/lca_digits.yaml", "-t", "torch", "--images", "8", "-q", "-o", str(out)]
    rc, _, err = cli_run([*cmd, "--iterations", "5"], capsys)
    assert rc == 0, err
    old = snapshot(out)
    assert set(old) == {"metrics.json", "reconstructions.png"}

    def interrupted(*a, **k):  # after the evaluation, before metrics.json
        raise KeyboardInterrupt

    monkeypatch.setattr(blocks, "plot_reconstructions", interrupted)
    rc, _, _ = cli_run([*cmd, "--iterations", "7"], capsys)
    assert rc == 130
    assert snapshot(out) == old
    no_leftovers(out)


def test_deploy_without_hardware_writes_the_artifact_only(tmp_path, capsys):
    out = tmp_path / "o"
    rc, _, err = cli_run(["deploy", SPEC, "-t", "loihi2", "-o", str(out)], capsys)
    assert rc == 3, err
    names = set(os.listdir(out))
    assert "manifest.json" in names and "summary.json" not in names
    no_leftovers(out)


@pytest.mark.slow
def test_sigint_to_the_cli_process(tmp_path):
    """The issue's reproduction: SIGINT to `neurodeploy run ... --target brian2` part-way."""
    pytest.importorskip("brian2")
    out = tmp_path / "o"
    p = subprocess.Popen([sys.executable, "-m", "neurodeploy.app.cli", "run", "models/ei_network.yaml",
                          "-t", "brian2", "--codegen", "numpy", "-o", str(out), "--duration", "5 s"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "running ei_network" in p.stderr.readline()
        time.sleep(2.0)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert not out.exists()


# --- one run per directory (item 6) -------------------------------------------------------------

def test_second_run_into_a_busy_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "o"
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time\nfrom neurodeploy.core.io import output_dir\n"
                                "with output_dir(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n"),
         str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        rc, _, err = cli_run(["run", SPEC, "-t", "torch", "-o", str(out), "-q"], capsys)
        assert rc == 2
        assert str(out) in err and "another neurodeploy run" in err and f"pid {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its holder: the next run goes ahead
    rc, _, err = cli_run(["run", SPEC, "-t", "torch", "-o", str(out), "-q"], capsys)
    assert rc == 0, err
    no_leftovers(out)


def test_lock_is_per_directory_and_nested_writes_go_to_the_stage(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    with io.output_dir(a, marker="m.json") as st:
        with pytest.raises(UsageError, match="another neurodeploy run"), io.output_dir(a):
            pass
        with io.output_dir(b):  # another directory: no conflict
            pass
        with io.output_dir(st.path / "sub") as inner:  # inside the stage: written straight there
            io.atomic_write_text(inner.path / "x.txt", "x")
            assert inner.final(inner.path / "x.txt") == a / "sub" / "x.txt"
        io.atomic_write_text(st.path / "m.json", "{}")
        assert not (a / "m.json").exists()
    assert (a / "sub" / "x.txt").read_text() == "x" and (a / "m.json").exists()
    no_leftovers(a)


def test_brian2_run_when_python_started_with_sigint_ignored(tmp_path):
    """Brian2 chains to the SIGINT handler it found at import; started in the background by a
    shell without job control that is SIG_IGN (not callable): a SIGINT must not crash the run
    (it used to: "'Handlers' object is not callable"); the ignored interrupt stays ignored."""
    pytest.importorskip("brian2")
    code = f"""
import os, signal, sys
import brian2
from neurodeploy.app.cli import main
from neurodeploy.backends.brian2 import simulator
build = simulator.build
def with_kill(net, opts):
    built = build(net, opts)
    @brian2.network_operation(when="start")
    def kill():
        if not getattr(kill, "sent", False):
            kill.sent = True
            os.kill(os.getpid(), signal.SIGINT)
    built.network.add(kill)
    return built
simulator.build = with_kill
sys.exit(main(["run", {SPEC!r}, "-t", "brian2", "--codegen", "numpy", "-o", {str(tmp_path / "o")!r}, "-q"]))
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert p.returncode == 0, p.stderr
    assert "not callable" not in p.stderr
    assert (tmp_path / "o" / "summary.json").exists()
