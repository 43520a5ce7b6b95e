"""The public surface for method authors (editbench.api): complete, importable without deprecations, and
methods written against it, or against the names documented before the two-track core, pass the checks."""

import ast
import warnings
from pathlib import Path

import pytest

import editbench
import editbench.api as api
from editbench.harness.checks import check_method

ROOT = Path(__file__).resolve().parents[1]
PKG = Path(editbench.__file__).resolve().parent
OLD = ROOT / "tests/fixtures/methods/old_api.py"
PLUGIN = ROOT / "examples/plugin/editbench_dim_lamps/__init__.py"


def test_the_api_names_what_an_author_needs_and_nothing_inside_imports_it():
    assert sorted(api.__all__) == sorted(set(api.__all__)) and all(hasattr(api, n) for n in api.__all__)
    for name in ("Method", "MethodConfig", "Edit", "Evidence", "Budget", "Cost", "MethodError", "capture", "intervene",
                 "EditRequest", "LampLM", "MeterReading", "Facts", "stated", "prompt_text"):
        assert name in api.__all__, name
    assert api.Method is editbench.core.Method and api.capture is editbench.core.capture
    users = [p.relative_to(PKG) for p in PKG.rglob("*.py") if p.name != "api.py" and any(
        isinstance(n, ast.ImportFrom) and n.module == "editbench.api" or
        isinstance(n, ast.Import) and any(a.name == "editbench.api" for a in n.names)
        for n in ast.walk(ast.parse(p.read_text())))]
    assert users == []  # the surface re-exports; the package itself never depends on it
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        exec(f"from editbench.api import {', '.join(api.__all__)}", {})  # noqa: S102 - no moved name inside


def test_a_method_written_for_the_0_2_names_still_passes_the_checks_with_warnings(shipped):
    with pytest.warns(DeprecationWarning) as caught:
        checks = check_method(f"{OLD}:OldDim", session=shipped)
    said = " ".join(str(w.message) for w in caught)
    assert "editbench.core.hooks" in said and "Evidence.noise" in said and "Evidence.outputs" in said
    assert all(c.passed is not False for c in checks), [(c.name, c.detail) for c in checks]
    assert {c.name for c in checks if c.passed} >= {"fits within budget", "reversible", "saves and loads"}


def test_the_example_plugin_uses_the_api_alone_and_passes_the_checks(shipped):
    tree = ast.parse(PLUGIN.read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module.startswith("editbench")}
    assert modules == {"editbench.api"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        checks = check_method(f"{PLUGIN}:DimLamps", session=shipped)
    assert all(c.passed is not False for c in checks), [(c.name, c.detail) for c in checks]
