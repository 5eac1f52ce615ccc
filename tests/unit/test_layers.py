"""The package's one import rule (docs/architecture.md), checked on the import graph.

A module imports only its own package or a lower layer; packages of one layer do not import each
other; backends never import each other (``backends/hybrid.py`` joins two); nothing imports the
root package; imports inside functions are only for the optional heavy dependencies; and the
graph has no cycle. The graph is read from the source with :mod:`ast` (module-level and
in-function imports, relative ones resolved), so the test needs none of the heavy packages.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "neurodeploy"

#: the layers, lowest first: (name, top-level packages of neurodeploy in it)
LAYERS = [
    ("core", ["core"]),
    ("ir", ["ir"]),
    ("library", ["library"]),
    ("spec", ["spec"]),
    ("lowering", ["lowering"]),
    ("passes", ["passes"]),
    ("backends", ["backends"]),
    ("interop", ["interop"]),
    ("learn", ["learn"]),
    ("validation", ["validation"]),
    ("app", ["app"]),
]
#: the facade modules above everything: the public API re-exported, ``python -m neurodeploy``
TOP = {"neurodeploy", "neurodeploy.__main__"}
#: optional or slow-to-import dependencies (module prefixes): the only imports allowed inside a
#: function (scipy.stats alone takes ~0.2 s to import and only table set-ups need it)
HEAVY = {"brian2", "lava", "torch", "onnx", "onnxruntime", "nir", "h5py", "matplotlib", "pandas", "sklearn",
         "skimage", "snntorch", "scipy.stats", "joblib", "distributed", "ray", "pyarrow",
         "scipy.sparse", "neo", "quantities", "pynwb", "numba"}  # scipy.sparse: not at `import neurodeploy`
#: backends/<name>/ packages are independent of each other; only these modules join two
JOINERS = {"neurodeploy.backends.hybrid"}

LAYER_OF = {pkg: i for i, (_, pkgs) in enumerate(LAYERS) for pkg in pkgs}


def modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = modules()


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(mod: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import in ``path``."""
    out = []
    is_pkg = path.name == "__init__.py"

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                src = _resolve(mod, is_pkg, child)
                subs = [f"{src}.{a.name}" for a in child.names if f"{src}.{a.name}" in MODULES]
                if len(subs) < len(child.names):
                    out.append((src, child.lineno, in_function))
                out.extend((s, child.lineno, in_function) for s in subs)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text()), False)
    return out


GRAPH = {m: imports_of(m, p) for m, p in MODULES.items()}


def is_heavy(module: str) -> bool:
    return any(module == h or module.startswith(h + ".") for h in HEAVY)


def top_package(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None


def backend_of(mod: str) -> str | None:
    """``lava`` for neurodeploy.backends.lava.*; None for backends.base and the joiners."""
    parts = mod.split(".")
    if len(parts) > 3 and parts[1] == "backends":
        return parts[2]
    if len(parts) == 3 and parts[1] == "backends" and (PKG / "backends" / parts[2]).is_dir():
        return parts[2]
    return None


def test_every_package_has_a_layer():
    missing = sorted({top_package(m) for m in MODULES if m not in TOP} - set(LAYER_OF))
    assert not missing, f"packages without a layer in LAYERS (and docs/architecture.md): {missing}"


def test_imports_follow_the_layers():
    bad = []
    for mod, imps in GRAPH.items():
        if mod in TOP:
            continue
        own = top_package(mod)
        for target, line, _ in imps:
            if not target.startswith("neurodeploy"):
                continue
            where = f"{MODULES[mod].relative_to(PKG.parent)}:{line}"
            if target in TOP:
                bad.append(f"{where}: {mod} imports the root package (import from the module that defines it)")
                continue
            other = top_package(target)
            if other == own:
                continue
            if LAYER_OF[other] >= LAYER_OF[own]:
                bad.append(f"{where}: {mod} ({LAYERS[LAYER_OF[own]][0]}) imports {target} "
                           f"({LAYERS[LAYER_OF[other]][0]})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_backends_do_not_import_each_other():
    bad = []
    for mod, imps in GRAPH.items():
        mine = backend_of(mod)
        if mine is None or mod in JOINERS:
            continue
        for target, line, _ in imps:
            theirs = backend_of(target) if target.startswith("neurodeploy.backends") else None
            if theirs is not None and theirs != mine:
                bad.append(f"{MODULES[mod].relative_to(PKG.parent)}:{line}: backend '{mine}' imports {target}")
    assert not bad, "backends importing each other (join them in backends/hybrid.py):\n" + "\n".join(bad)


def test_imports_inside_functions_are_only_heavy_optional_packages():
    bad = []
    for mod, imps in GRAPH.items():
        for target, line, in_function in imps:
            if in_function and not is_heavy(target):
                bad.append(f"{MODULES[mod].relative_to(PKG.parent)}:{line}: {target}")
    assert not bad, ("imports inside functions (move them to the top of the module; only "
                     f"{', '.join(sorted(HEAVY))} may be imported lazily):\n" + "\n".join(bad))


def test_no_import_cycles():
    edges = defaultdict(set)
    for mod, imps in GRAPH.items():
        for target, _, _ in imps:
            if target in MODULES and target != mod:
                edges[mod].add(target)
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def strongconnect(v):  # Tarjan's algorithm, iterative enough for this graph's depth
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(MODULES):
        if v not in index:
            strongconnect(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("case", ["upward", "sideways", "in_function", "cycle"])
def test_the_checks_catch_what_they_are_for(case, monkeypatch):
    """Each rule above fails on a graph that breaks it (so a green run means something)."""
    fake = {
        "upward": {"neurodeploy.core.errors": [("neurodeploy.app.api", 1, False)]},
        "sideways": {"neurodeploy.backends.torch.simulator": [("neurodeploy.backends.lava.simulator", 1, False)]},
        "in_function": {"neurodeploy.core.errors": [("numpy", 1, True)]},
        "cycle": {"neurodeploy.core.errors": [("neurodeploy.core.io", 1, False)],
                  "neurodeploy.core.io": [("neurodeploy.core.errors", 1, False)]},
    }[case]
    check = {"upward": test_imports_follow_the_layers, "sideways": test_backends_do_not_import_each_other,
             "in_function": test_imports_inside_functions_are_only_heavy_optional_packages,
             "cycle": test_no_import_cycles}[case]
    graph = {m: [] for m in MODULES}
    graph.update(fake)
    monkeypatch.setattr(__import__(__name__, fromlist=["GRAPH"]), "GRAPH", graph)
    with pytest.raises(AssertionError):
        check()
