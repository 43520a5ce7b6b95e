import pytest

from editbench.benchmarks import EVIDENCE_SEED, TASKS, Slice, TaskSpec, evidence_world, get_task
from editbench.benchmarks.scoring import score
from editbench.core import Budget, UnknownNameError
from editbench.core.registry import RegistryError
from editbench.harness import fit
from editbench.methods import resolve
from editbench.metrics import METRICS, Metric, direction, implement, of_track


@pytest.fixture(scope="module")
def sessions():
    from editbench.harness import Sessions

    return Sessions()


def _score(task_name, method_name, session, n=24):
    task = get_task(task_name)
    method = resolve(method_name)()
    edit = fit(method, session, session.track.request(task.request), Budget(16, seed=EVIDENCE_SEED), evidence_world(task))
    return score(task, edit, session, split="dev", n=n, n_boot=100)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_oracle_near_top_and_unedited_at_bottom(task, sessions):
    """On every task of every track, on the shipped models."""
    session = sessions.get(get_task(task).track, {})
    oracle = _score(task, "oracle", session)
    none = _score(task, "none", session)
    assert oracle["primary"] > 0.85, oracle
    assert none["primary"] < 0.05, none
    assert oracle["ci"][0] <= oracle["primary"] <= oracle["ci"][1]
    assert oracle["task_version"] == TASKS.get(task).version
    if TASKS.get(task).shifted:
        assert 0.8 < oracle["transfer_ratio"] < 1.2
    if get_task(task).track == "text":
        assert oracle["parts"]["fluency"] == 1.0 and none["parts"]["fluency"] > 0.95
    if task.endswith("single_lamp"):  # derived parts are reported beside the parts they come from
        s = next(iter(oracle["slices"].values()))["parts"]
        assert s["disentangle"] == pytest.approx((s["cause"] + s["isolate"]) / 2)


def test_scores_are_deterministic(shipped):
    a = _score("unlit_lamps", "steer", shipped, n=16)
    shipped.clear()  # from a cold cache of unedited outputs, the same numbers
    b = _score("unlit_lamps", "steer", shipped, n=16)
    assert a == b


def test_dev_scoring_of_the_primary_alone_reads_the_same_primary(shipped, monkeypatch):
    """A tuning trial's dev score skips the slices the primary does not pool (a transfer task's evidence
    slice) and the proxy's reading of the edited images: the same primary, interval and per-output scores,
    no transfer ratio, and the proxy meter never runs on an edited output."""
    task = get_task("ood_transfer")
    edit = fit(resolve("steer")(), shipped, shipped.track.request(task.request), Budget(4, seed=EVIDENCE_SEED),
               evidence_world(task))
    full = score(task, edit, shipped, split="dev", n=8, n_boot=50)
    proxy = shipped.track.evaluator(shipped.models, "proxy")
    reads = []
    monkeypatch.setattr(proxy, "read", lambda images, *a, **k: reads.append(len(images)))
    alone = score(task, edit, shipped, split="dev", n=8, n_boot=50, primary_only=True)
    assert (alone["primary"], alone["ci"], alone["per_image"]) == (full["primary"], full["ci"], full["per_image"])
    assert sorted(alone["slices"]) == sorted(task.shifted) and "transfer_ratio" not in alone
    assert "evidence_slice" in full["slices"] and "transfer_ratio" in full
    assert reads == [] and "proxy" not in alone and "gap" not in alone and "proxy" in full and "gap" in full


def test_unknown_task():
    with pytest.raises(UnknownNameError, match="unknown task"):
        get_task("unlit_lamp")


def test_every_task_part_is_registered_once_with_a_direction():
    for name in TASKS:
        task = TASKS.get(name)
        for part in task.parts:
            m = METRICS.get(part)
            assert m.kind == "part" and task.track in m.tracks and direction(part) == 1
    assert direction("fidelity") == -1 and direction("primary") == 1
    assert set(of_track("image", "measure")) == {"fidelity", "locality_l1", "feature_shift"}
    assert set(of_track("text", "measure")) == {"fidelity"} and "fluency" not in of_track("image", "part")
    with pytest.raises(ValueError, match="registered twice"):
        METRICS.add("efficacy", METRICS.get("efficacy"))


def test_registry_refuses_bad_tasks_and_metrics():
    bad = TaskSpec("bad_task", 1, "image", "lamps_off", ("efficacy", "sparkle"), Slice("default"), (Slice("default"),), "")
    with pytest.raises(RegistryError, match="sparkle"):
        TASKS.add("bad_task", bad)
    assert "bad_task" not in TASKS
    with pytest.raises(RegistryError, match="lacks its function"):
        METRICS.add("broken_mean", Metric("broken_mean", "derived", +1, "no function"))
    with pytest.raises(RegistryError, match="direction"):
        METRICS.add("sideways", Metric("sideways", "measure", 0, ""))
    with pytest.raises(ValueError, match="implemented twice"):
        implement("efficacy", "text", lambda pair: None)
