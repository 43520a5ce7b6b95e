import pytest

from editbench import benchmarks as B
from editbench.api import Budget, EditRequest, fit_method
from editbench.models import load_generator, load_meter
from editbench.registry import resolve


@pytest.fixture(scope="module")
def models():
    return load_generator(), load_meter()


def _score(task_name, method_name, models, n=24):
    G, M = models
    task = B.get_task(task_name)
    method = resolve(method_name)()
    edit = fit_method(method, G, M, B.evidence_world(task), EditRequest.named(task.request),
                      Budget(16, seed=B.EVIDENCE_SEED))
    return B.score(task, method, edit, G, M, split="dev", n=n, n_boot=100)


@pytest.mark.parametrize("task", sorted(B.TASKS))
def test_oracle_near_top_and_unedited_at_bottom(task, models):
    oracle = _score(task, "oracle", models)
    none = _score(task, "none", models)
    assert oracle["primary"] > 0.85, oracle
    assert none["primary"] < 0.05, none
    assert oracle["ci"][0] <= oracle["primary"] <= oracle["ci"][1]
    assert oracle["task_version"] == B.TASKS[task].version
    if B.TASKS[task].shifted:
        assert 0.8 < oracle["transfer_ratio"] < 1.2


def test_scores_are_deterministic(models):
    a = _score("unlit_lamps", "steer", models, n=16)
    b = _score("unlit_lamps", "steer", models, n=16)
    assert a == b


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        B.get_task("unlit_lamp")
