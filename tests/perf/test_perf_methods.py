"""Fit time of every built-in method at n = 16 on each track it supports (ROME's and MEMIT's key moments
cached after the first fit, as in a run) and the wall time of one quick-suite cell (pytest-benchmark).

These are the timing gate (see the README): save a baseline, then compare a change against it::

    python -m pytest tests/perf --benchmark-enable --benchmark-save=main
    python -m pytest tests/perf --benchmark-enable --benchmark-compare=0001 --benchmark-compare-fail=median:25%

Each fit runs on one CPU thread, as cells do in the runner.
"""

import pytest
import torch

from editbench.benchmarks import EVIDENCE_SEED, evidence_world, get_task
from editbench.core import Budget
from editbench.harness import SUITES, Cell, fit, run_cell
from editbench.methods import METHODS, resolve

pytestmark = pytest.mark.heavy
BUILTIN = sorted(n for n, e in METHODS.entries().items() if e.source == "built-in")


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


FITS = [(name, task) for name in BUILTIN for track, task in (("image", "unlit_lamps"), ("text", "text/unlit_lamps"))
        if track in resolve(name).tracks]


@pytest.mark.parametrize(("name", "task"), FITS)
def test_fit_at_n16(benchmark, request, one_thread, name, task):
    spec = get_task(task)
    session = request.getfixturevalue("shipped" if spec.track == "image" else "shipped_text")
    method = resolve(name)(track=spec.track)
    req = session.track.request(spec.request)
    edit = benchmark.pedantic(fit, args=(method, session, req, Budget(16, 512, seed=EVIDENCE_SEED), evidence_world(spec)),
                              rounds=2, iterations=1)
    assert edit.method == name


def test_quick_suite_cell(benchmark, shipped, tmp_path):
    cell = Cell("unlit_lamps", "steer", 16, 0, **SUITES.get("quick").cell_kwargs())
    # each round from a cold cache of unedited samples, as the first method of a task meets it
    out = benchmark.pedantic(run_cell, args=(cell, shipped), setup=shipped.clear, rounds=2, iterations=1)
    assert 0 <= out["scores"]["primary"] <= 1
