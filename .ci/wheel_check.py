"""Build neurodeploy's wheel, install it into a throw-away virtual environment outside the
checkout (reusing the project venv's installed dependencies, so nothing is downloaded), and use it
from another directory: ``neurodeploy info``, ``check`` and ``run -t torch`` on a shipped model,
and the Python API. Exits non-zero on the first failure, printing what ran."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="nd-wheel-"))
    try:
        dist = tmp / "dist"
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
             str(ROOT)])
        wheel = next(dist.glob("neurodeploy-*.whl"))
        names = zipfile.ZipFile(wheel).namelist()
        for must in ("neurodeploy/py.typed", "neurodeploy/_targets/torch.yaml", "neurodeploy/_models/single_lif.yaml",
                     "neurodeploy/_models/weights/ipvae_digits/decoder.npz"):
            if must not in names:
                raise SystemExit(f"the wheel lacks {must}")
        env_dir = tmp / "venv"
        venv.EnvBuilder(with_pip=True).create(env_dir)
        py = env_dir / "bin" / "python"
        site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
        # the dependencies: the project venv's site-packages, as a plain path entry (its editable
        # neurodeploy is a meta-path finder that a plain entry does not load)
        (site / "_nd_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)])
        work = tmp / "elsewhere"
        work.mkdir()
        nd = env_dir / "bin" / "neurodeploy"
        where = run([str(py), "-c", "import neurodeploy; print(neurodeploy.__file__)"], cwd=work,
                    capture_output=True, text=True).stdout.strip()
        if not where.startswith(str(env_dir)):
            raise SystemExit(f"neurodeploy was imported from {where}, not from the wheel")
        run([str(nd), "info"], cwd=work)
        run([str(nd), "check", "single_lif"], cwd=work)
        run([str(nd), "run", "models/single_lif.yaml", "-t", "torch", "-o", "out", "--duration", "50 ms"], cwd=work)
        if not (work / "out" / "summary.json").is_file():
            raise SystemExit("run wrote no summary.json")
        run([str(py), "-c", "import neurodeploy as nd; "
             "r = nd.simulate('models/single_lif.yaml', 'torch', duration='50 ms'); print(r.to_pandas())"], cwd=work)
        print(f"wheel check passed: {wheel.name} ({len(names)} files) works outside the checkout")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
