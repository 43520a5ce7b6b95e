"""Fit time of every built-in method at n = 16 and the wall time of one quick-suite cell (pytest-benchmark).

These are the timing gate (see the README): save a baseline, then compare a change against it::

    python -m pytest tests/perf --benchmark-enable --benchmark-save=main
    python -m pytest tests/perf --benchmark-enable --benchmark-compare=0001 --benchmark-compare-fail=median:25%

Each fit runs on one CPU thread, as cells do in the runner.
"""

import pytest
import torch

from editbench import runner
from editbench.api import Budget, EditRequest, fit_method
from editbench.benchmarks import EVIDENCE_SEED, evidence_world, get_task
from editbench.models import load_generator, load_meter
from editbench.registry import BUILTIN, resolve

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def models():
    return load_generator(), load_meter()


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_fit_at_n16(benchmark, models, one_thread, name):
    G, M = models
    task = get_task("unlit_lamps")
    method = resolve(name)()
    edit = benchmark.pedantic(fit_method, args=(method, G, M, evidence_world(task), EditRequest.named(task.request),
                                                Budget(16, 512, seed=EVIDENCE_SEED)), rounds=2, iterations=1)
    assert edit.method == name


def test_quick_suite_cell(benchmark, tmp_path):
    cell = runner.Cell("unlit_lamps", "steer", 16, 0, **{k: runner.SUITES["quick"][k] for k in ("n_eval", "n_dev", "tune",
                                                                                                 "n_boot")})
    # each round from a cold cache of unedited samples, as the first method of a task meets it
    out = benchmark.pedantic(runner.run_cell, args=(cell,), setup=runner._BEFORE.clear, rounds=2, iterations=1)
    assert 0 <= out["scores"]["primary"] <= 1
