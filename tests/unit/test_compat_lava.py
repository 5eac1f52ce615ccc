"""Tests for neurodeploy.core.compat.lava, the one place Lava (lava-nc 0.10.0) is imported through.

Tests marked ``subprocess`` in their name start a fresh interpreter (``sys.executable``), because
the interesting behaviour (the first import of Lava, the multiprocessing start method) can only
be observed once per interpreter.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from neurodeploy.core.compat import lava as compat
from neurodeploy.core.compat.lava import (
    LOIHI_ABSENT_REASON,
    ensure_lava_importable,
    has_loihi_hardware,
    lava_status,
)
from neurodeploy.core.errors import BackendError

pytestmark = pytest.mark.lava

# Captured when this module is imported, before any test here calls ensure_lava_importable.
ORIGINAL_DATACLASS = dataclasses.dataclass

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that can import neurodeploy from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
    )


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, (
        f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )


# --------------------------------------------------------------------------- imports


def test_lava_processes_and_run_config_import() -> None:
    ensure_lava_importable()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.lif.process import LIF

    for cls in (LIF, Dense, Loihi2SimCfg, RunSteps):
        assert isinstance(cls, type)


def test_dataclass_decorator_restored_and_global_behaviour_unchanged() -> None:
    ensure_lava_importable()
    assert dataclasses.dataclass is ORIGINAL_DATACLASS
    assert not hasattr(dataclasses.dataclass, "__wrapped__")

    with pytest.raises(ValueError, match="mutable default"):

        @dataclasses.dataclass
        class WithList:
            items: list = []  # noqa: RUF012

    # The 3.11-specific check (any unhashable default) must still apply outside lava.*: this is
    # exactly the pattern var_model uses, and it must still fail for our own modules.
    @dataclasses.dataclass
    class Encoder:
        x: int = 0

    with pytest.raises(ValueError, match="mutable default"):

        @dataclasses.dataclass
        class UsesEncoder:
            enc: Encoder = Encoder()

    assert Encoder.__hash__ is None  # plain eq=True dataclass stays unhashable


def test_calling_twice_is_harmless() -> None:
    assert ensure_lava_importable() is None
    import lava.magma.compiler.var_model as first

    assert ensure_lava_importable() is None
    import lava.magma.compiler.var_model as second

    assert first is second
    assert dataclasses.dataclass is ORIGINAL_DATACLASS
    from lava.proc.lif.process import LIF

    assert isinstance(LIF, type)


def test_fix_is_needed_and_works_subprocess() -> None:
    without = run_python("import lava.magma.compiler.var_model")
    if without.returncode == 0:
        pytest.skip(
            f"lava.magma.compiler.var_model imports without the fix on Python "
            f"{sys.version.split()[0]}; the dataclass fix is not needed here"
        )
    assert "mutable default" in without.stderr, without.stderr

    with_fix = run_python(
        """
        import dataclasses
        original = dataclasses.dataclass
        from neurodeploy.core.compat.lava import ensure_lava_importable
        ensure_lava_importable()
        import lava.magma.compiler.var_model as vm
        from lava.proc.lif.process import LIF
        assert dataclasses.dataclass is original
        # the fix made ByteEncoder hashable, so it is a legal default on 3.11
        hash(vm.ByteEncoder())
        assert isinstance(vm.CoreEncoder().x, vm.ByteEncoder)
        print("OK")
        """
    )
    assert_ok(with_fix)
    assert with_fix.stdout.strip() == "OK"


def test_concurrent_first_calls_apply_fix_once_subprocess() -> None:
    proc = run_python(
        """
        import dataclasses, threading, time
        original = dataclasses.dataclass
        import neurodeploy.core.compat.lava as compat

        # Count entries into the import step and into the fix, and widen the race window so
        # that, without the lock, several threads would be inside the import step at once.
        entered, fixes = [], []
        real_import, real_make = compat._import_var_model, compat._make_lava_dataclass
        def slow_import():
            entered.append(1)
            time.sleep(0.2)
            real_import()
        def counting_make(orig):
            fixes.append(1)
            return real_make(orig)
        compat._import_var_model = slow_import
        compat._make_lava_dataclass = counting_make

        errors = []
        barrier = threading.Barrier(8)
        def worker():
            barrier.wait()
            try:
                compat.ensure_lava_importable()
                from lava.proc.lif.process import LIF
            except BaseException as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        compat.ensure_lava_importable()  # and once more, after the fact
        assert not errors, errors
        assert dataclasses.dataclass is original
        print(len(entered), len(fixes))
        """
    )
    assert_ok(proc)
    entered, fixes = proc.stdout.split()
    assert entered == "1", "the import step ran more than once: not locked or not idempotent"
    # The fix is applied once where it is needed (Python 3.11 + lava-nc 0.10.0), else never.
    assert fixes in {"0", "1"}
    if sys.version_info >= (3, 11):
        assert fixes == "1"


# --------------------------------------------------------------------------- the wrapper itself


def _encoder_class(module: str) -> type:
    """A non-frozen eq=True dataclass in ``module``, created with the patched decorator."""
    patched = compat._make_lava_dataclass(ORIGINAL_DATACLASS)
    ns: dict = {"__module__": module, "__annotations__": {"x": int}, "x": 0}
    return patched(type("Enc", (), ns))


def test_wrapper_only_touches_lava_modules() -> None:
    patched = compat._make_lava_dataclass(ORIGINAL_DATACLASS)

    lava_enc = _encoder_class("lava.magma.fake")
    assert lava_enc.__hash__ is not None
    # its instances are now legal defaults, with or without decorator arguments
    holder = patched(eq=True)(
        type("Holder", (), {"__module__": "lava.magma.fake", "__annotations__": {"e": lava_enc},
                            "e": lava_enc()})
    )
    assert holder().e == lava_enc()

    for module in ("neurodeploy.something", "lavafoo.x", "__main__"):
        other = _encoder_class(module)
        assert other.__hash__ is None, module

    frozen = patched(frozen=True)(
        type("F", (), {"__module__": "lava.x", "__annotations__": {"x": int}, "x": 0})
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        frozen().x = 1

    # a class that writes its own __hash__ keeps it (unsafe_hash=True would raise TypeError)
    def own_hash(self: object) -> int:
        return 7

    explicit = patched(
        type("H", (), {"__module__": "lava.x", "__annotations__": {"x": int}, "x": 0,
                       "__hash__": own_hash})
    )
    assert hash(explicit()) == 7


# --------------------------------------------------------------------------- simulation


def test_lif_fixed_point_simulation_matches_hand_computed_values() -> None:
    """LIF, fixed_pt, du = dv = 0, no input, 20 steps.

    Lava's fixed-point LIF (research notes, loihi_lava.md section 2.2): each step
    u <- u*(4096-(du+1))>>12 + (a_in<<6) stays 0 (u=0, no input); v <- v*(4096-dv)>>12 + u +
    (bias_mant << bias_exp) = v + bias; spike if v > (vth << 6), then v <- 0.
    With vth = 2 the threshold is 128:

    * n0: bias 10        -> v = 10, 20, ..., 120, 130 > 128: spike at step 13, reset to 0;
      steps 14..20 add 7*10                                   -> v = 70
    * n1: bias 20        -> 140 > 128 at step 7: spikes at 7 and 14; 6 steps left -> v = 120
    * n2: bias 3<<2 = 12 -> 132 > 128 at step 11: spike at 11; 9 steps left        -> v = 108
    """
    ensure_lava_importable()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.lif.process import LIF

    # Python ints / integer arrays only: fixed models do not cast scalar Vars (section 2.4).
    lif = LIF(
        shape=(3,),
        du=0,
        dv=0,
        vth=2,
        bias_mant=np.array([10, 20, 3], dtype=np.int16),
        bias_exp=np.array([0, 0, 2], dtype=np.int16),
    )
    try:
        lif.run(condition=RunSteps(num_steps=20), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        v = lif.v.get()
        u = lif.u.get()
    finally:
        lif.stop()
    np.testing.assert_array_equal(v, [70, 120, 108])
    np.testing.assert_array_equal(u, [0, 0, 0])
    # Lava runs each process in a forked child plus a shared-memory manager; stop() must end them.
    assert multiprocessing.active_children() == []


def test_lif_floating_point_simulation_matches_hand_computed_values() -> None:
    """LIF, floating_pt, du = dv = 0, no input, 20 steps, vth = 1.0 (not scaled in float).

    v <- v + bias_mant (bias_exp is ignored in float); spike if v > vth, then v <- 0. Biases are
    dyadic fractions, so every sum is exact:

    * n0: 3/16 -> v > 1 first at step 6 (1.125): spikes at 6, 12, 18; 2 steps left -> 0.375
    * n1: 3/8  -> v > 1 first at step 3 (1.125): spikes at 3, ..., 18; 2 left     -> 0.75
    * n2: 1/16 -> v > 1 first at step 17 (1.0625): spike at 17; 3 left             -> 0.1875
    """
    ensure_lava_importable()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.lif.process import LIF

    lif = LIF(
        shape=(3,),
        du=0.0,
        dv=0.0,
        vth=1.0,
        bias_mant=np.array([0.1875, 0.375, 0.0625]),
        bias_exp=np.array([5.0, 5.0, 5.0]),  # must have no effect in floating_pt
    )
    try:
        lif.run(condition=RunSteps(num_steps=20), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        v = lif.v.get()
    finally:
        lif.stop()
    np.testing.assert_array_equal(v, [0.375, 0.75, 0.1875])
    assert multiprocessing.active_children() == []


# --------------------------------------------------------------------------- status helpers


def test_lava_status_reports_installed_version() -> None:
    assert lava_status() == (True, "lava-nc 0.10.0")


def test_has_loihi_hardware_absent() -> None:
    if compat._distribution_version("lava-loihi") is not None:
        pytest.skip("lava-loihi is installed here")
    assert has_loihi_hardware() == (False, LOIHI_ABSENT_REASON)
    assert "lava-loihi" in LOIHI_ABSENT_REASON and "not installed" in LOIHI_ABSENT_REASON


def test_has_loihi_hardware_present_when_distribution_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = compat._distribution_version
    monkeypatch.setattr(
        compat, "_distribution_version", lambda name: "9.9" if name == "lava-loihi" else real(name)
    )
    assert has_loihi_hardware() == (True, "lava-loihi 9.9")


def test_missing_lava_gives_install_instructions_subprocess() -> None:
    # Simulate an environment without lava-nc: block the package and hide its metadata.
    proc = run_python(
        """
        import sys
        sys.modules["lava"] = None
        import neurodeploy.core.compat.lava as compat
        compat._distribution_version = lambda name: None
        from neurodeploy.core.errors import BackendError
        try:
            compat.ensure_lava_importable()
        except BackendError as exc:
            print(exc)
        else:
            raise SystemExit("no BackendError")
        ok, reason = compat.lava_status()
        assert ok is False and "not installed" in reason, reason
        """
    )
    assert_ok(proc)
    message = proc.stdout
    assert "not installed" in message
    assert "pip install --no-deps --ignore-requires-python lava-nc==0.10.0" in message
    assert "make install" in message
    assert "asteval<0.10" in message and "networkx<=2.8.7" in message


def test_other_import_failures_name_the_original_exception() -> None:
    err = compat._as_backend_error(ModuleNotFoundError("No module named 'asteval'", name="asteval"))
    assert isinstance(err, BackendError)
    assert "'asteval'" in str(err) and "pip install" in str(err)

    err = compat._as_backend_error(OSError("shared memory unavailable"))
    assert isinstance(err, BackendError)
    assert "OSError" in str(err) and "shared memory unavailable" in str(err)


# --------------------------------------------------------------------------- multiprocessing


@pytest.mark.skipif(sys.platform == "win32", reason="Lava does not set a start method on Windows")
def test_start_method_already_fork_is_accepted_subprocess() -> None:
    # Lava's multiprocessing module calls set_start_method('fork') without force; that raises
    # "context has already been set" once anything has fixed the method, even to 'fork'.
    proc = run_python(
        """
        import multiprocessing
        multiprocessing.set_start_method("fork")
        from neurodeploy.core.compat.lava import ensure_lava_importable
        ensure_lava_importable()
        from lava.proc.lif.process import LIF
        assert multiprocessing.get_start_method() == "fork"
        import multiprocessing as mp2
        assert mp2.set_start_method.__module__ == "multiprocessing.context"  # restored
        print("OK")
        """
    )
    assert_ok(proc)


@pytest.mark.skipif(sys.platform == "win32", reason="Lava does not set a start method on Windows")
def test_start_method_spawn_gives_backend_error_subprocess() -> None:
    proc = run_python(
        """
        import multiprocessing
        multiprocessing.set_start_method("spawn")
        from neurodeploy.core.compat.lava import ensure_lava_importable
        from neurodeploy.core.errors import BackendError
        try:
            ensure_lava_importable()
        except BackendError as exc:
            print(exc)
        else:
            raise SystemExit("no BackendError")
        assert multiprocessing.get_start_method() == "spawn"  # left as the user chose
        """
    )
    assert_ok(proc)
    assert "'fork'" in proc.stdout and "'spawn'" in proc.stdout
