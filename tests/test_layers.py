"""The layer order the README and the package docstring state: nothing lower imports anything higher."""

import ast
from pathlib import Path

import editbench

PKG = Path(editbench.__file__).resolve().parent
LAYERS = {"core": 0, "world": 1, "tracks": 2, "editors": 3, "baselines": 3, "metrics": 3, "methods": 3.5, "benchmarks": 4,
          "results": 5, "harness": 6,
          "leaderboard": 7, "experiments": 7, "cli": 8}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    parts = path.relative_to(PKG).with_suffix("").parts
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = list(parts[:-1]) if path.name != "__init__.py" else list(parts[:-1])
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                names.add(".".join(["editbench", *base, *([node.module] if node.module else [])]))
            elif node.module:
                names.add(node.module)
    return {n for n in names if n.startswith("editbench.")}


def test_every_module_imports_only_its_layer_and_below():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).parts
        if rel[0] not in LAYERS:
            continue
        mine = LAYERS[rel[0]]
        for name in _imports(path):
            top = name.split(".")[1]
            if top in LAYERS and top != rel[0] and LAYERS[top] >= mine:
                bad.append(f"{'/'.join(rel)} imports {name}")
    assert not bad, bad


def test_the_stated_order_is_the_package_docstring():
    assert ("core -> world -> tracks -> (editors | baselines | metrics) -> methods -> benchmarks -> results -> harness\n"
            "         -> (leaderboard | experiments) -> cli") in editbench.__doc__


def test_the_public_api_sits_on_the_tracks_and_below():
    """editbench.api re-exports the contract and the tracks' helpers: it imports nothing above the tracks."""
    above = [n for n in _imports(PKG / "api.py") if LAYERS.get(n.split(".")[1], 0) > LAYERS["tracks"]]
    assert above == []
