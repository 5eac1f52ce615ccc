"""The models that ship with neurodeploy (the project's ``models/`` folder, package data
``neurodeploy/_models``), by name: ``single_lif``, ``ipvae/ipvae_digits``, ...

A spec argument that is not an existing file is looked up here, so ``neurodeploy run single_lif
-t torch`` and ``nd.simulate("models/single_lif.yaml", "torch")`` work from any directory after a
wheel install. A file that exists always wins.
"""

from __future__ import annotations

from pathlib import Path

from ..core.targets import shipped_dir

#: folders of models/ that hold no network specs
NOT_SPECS = ("tolerances", "train")


def shipped_models() -> dict[str, Path]:
    """Name (path under models/ without ``.yaml``) -> file, for every shipped network spec."""
    root = shipped_dir("_models")
    if not root.is_dir():
        return {}
    out = {}
    for p in sorted(root.rglob("*.yaml")):
        rel = p.relative_to(root)
        if rel.parts[0] not in NOT_SPECS:
            out[rel.with_suffix("").as_posix()] = p
    return out


def resolve(spec: str | Path) -> Path:
    """``spec`` itself when it exists (or names no shipped model), else the shipped model it names
    (``single_lif``, ``single_lif.yaml``, ``models/single_lif.yaml``, ``ipvae/ipvae_digits``)."""
    path = Path(spec)
    if path.exists():
        return path
    name = path.as_posix()
    if name.startswith("models/"):
        name = name[len("models/"):]
    for suffix in (".yaml", ".yml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return shipped_models().get(name, path)
