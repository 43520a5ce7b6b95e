"""The fair protocol: compute in epochs over the evidence and recorded in every cell, localized and
same-evidence finetuning, the search's records, the regret table and the compute views."""

import json
import math

import pytest
import torch

from editbench.baselines.finetune_samples import image_targets
from editbench.benchmarks import EVIDENCE_SEED, evidence_world, get_task
from editbench.benchmarks.suites import SUITES
from editbench.cli import main
from editbench.core import Budget
from editbench.core.schedule import epoch_batches, schedule, steps_of
from editbench.core.search import Choice, LogFloat, at_edge, dimension
from editbench.harness.cell import fit
from editbench.methods import METHODS, resolve

BUILTIN = sorted(n for n, e in METHODS.entries().items() if e.source == "built-in")


def fitted(session, method, task, config=None, n=16):
    spec = get_task(task)
    return fit(resolve(method)(config or {}, track=spec.track), session, session.track.request(spec.request),
               Budget(n, 256, seed=EVIDENCE_SEED), evidence_world(spec))


def test_a_schedule_is_epochs_over_the_evidence_with_a_floor_and_a_cap():
    assert schedule(16, 4, 5.0, 10, 128).steps == 20
    assert schedule(1, 4, 5.0, 10, 128).steps == 10 and schedule(1, 4, 5.0, 10, 128).batch == 1  # the floor
    capped = schedule(256, 4, 5.0, 10, 128)
    assert capped.steps == 128 and capped.capped and capped.epochs == pytest.approx(2.0)
    g = torch.Generator().manual_seed(0)
    seen = torch.cat(list(epoch_batches(10, 4, 5, g)))  # two epochs of ten: every example exactly twice
    assert sorted(seen.tolist()) == sorted(list(range(10)) * 2)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_search_space_is_of_dimensions_and_holds_the_default(name):
    """A rate or a count is searched on a log scale; every method's default lies inside its space."""
    cls = resolve(name)
    for track in cls.tracks:
        default = cls(track=track).config.as_dict()
        for field, spec in cls.space(track).items():
            d = dimension(spec)
            assert field in default, (name, field)
            if isinstance(d, Choice):
                assert default[field] in d.values, (name, track, field, default[field])
            else:
                assert d.lo <= default[field] <= d.hi, (name, track, field, default[field])
            if field in ("lr", "epochs", "alpha", "strength", "ridge", "weight_decay", "kl_weight"):
                assert isinstance(d, LogFloat) and type(d).__name__ in ("LogFloat", "LogInt"), (name, field)


def test_finetuning_records_its_compute_in_epochs(shipped_text):
    edit = fitted(shipped_text, "finetune_full", "text/unlit_lamps")
    c = edit.cost()
    assert c.steps == math.ceil(20 * 16 / 8) and c.examples_seen == c.steps * 8 == c.forward == c.backward
    assert c.examples_seen / c.examples_used == pytest.approx(20.0)
    assert c.flops > 0 and c.flops == pytest.approx((c.forward + 2 * c.backward) * shipped_text.flops_per_pass(
        evidence_world(get_task("text/unlit_lamps"))))
    editor = fitted(shipped_text, "steer", "text/unlit_lamps").cost()
    assert editor.steps == 0 and editor.backward == 0 and editor.forward > 0


def test_localized_finetuning_changes_one_matrix_only(shipped_text):
    edit = fitted(shipped_text, "finetune_local", "text/unlit_lamps", {"layer": "2", "epochs": 4.0})
    assert edit.deltas == ["transformer.h.2.mlp.c_proj.weight"]
    assert edit.cost().params_changed == shipped_text.edited_model.transformer.h[2].mlp.c_proj.weight.numel()


def test_localized_finetuning_on_images_trains_the_convolution_rank_one_rewrites(shipped):
    edit = fitted(shipped, "finetune_local", "unlit_lamps", {"epochs": 1.0, "min_steps": 2}, n=4)
    assert edit.deltas == [f"{resolve('rank_one')().config.layer}.weight"]


def test_same_evidence_targets_differ_from_the_samples_only_where_the_request_says(shipped):
    spec = get_task("unlit_lamps")
    track, request = shipped.track, shipped.track.request(spec.request)
    ev = track.build_evidence("samples", shipped.models, request, Budget(16, 0, seed=EVIDENCE_SEED), evidence_world(spec),
                              False)
    targets = image_targets(ev, request)
    changed = (targets - ev.outputs).abs().amax(1)  # (n, H, W)
    light = (ev.readings.per_lamp_light() * request.slots(ev.readings.lamps, ev.readings.x)[..., None, None]).sum(1)
    assert (changed[light == 0] < 1e-5).all()  # nothing changes where the proxy reads no targeted light
    assert (targets <= ev.outputs + 1e-6).all()  # light is only taken out
    lit = light.sum((1, 2)) > 1
    assert lit.any() and (changed.sum((1, 2))[lit] > 0).all()


def test_image_reward_finetuning_rewards_the_light_of_the_lamps_the_request_targets(shipped, world):
    """single_lamp asks for the leftmost lamp off and the others untouched: its reward counts the leftmost lamp's
    columns alone, and change to the other lamps' light is penalised; a request for every lamp counts all light."""
    from editbench.baselines.finetune_reward import rewarded
    from editbench.tracks.image.meter import LIGHT_PIXEL

    read = shipped.models["meter"].read(world.sample(32, seed=2**41 + 5).images)
    leftmost = shipped.track.request(get_task("single_lamp").request)
    cols, region = rewarded(read, leftmost)
    owned = read.columns()  # (B, 3, W)
    two = read.count >= 2
    assert two.sum() >= 4
    assert torch.equal(cols[two], owned[two, 0])  # slots fill left to right: the first is the leftmost
    assert (cols[two].sum(1) < owned[two].sum((1, 2))).all()  # the other lamps' columns are not rewarded
    others = read.per_lamp_light()[:, 1:].sum(1) > LIGHT_PIXEL
    assert others[two].any() and not (region & others).any()  # their light is penalised where it changes
    cols, region = rewarded(read, shipped.track.request(get_task("unlit_lamps").request))
    assert cols is None and torch.equal(region, read.lamp_light() > LIGHT_PIXEL)


def test_image_prompting_reads_samples_not_captions_and_the_request(shipped):
    """At n = 1 the search reads as many samples of the one caption as its calls allow (before: one per candidate);
    a request for some lamps reads each sample beside the original caption's, two calls each."""
    from editbench.baselines.prompt import candidates

    for task, calls in (("unlit_lamps", 16), ("single_lamp", 32)):
        spec = get_task(task)
        request = shipped.track.request(spec.request)
        edit = fit(resolve("prompt")({}, track="image"), shipped, request, Budget(1, calls, seed=EVIDENCE_SEED),
                   evidence_world(spec))
        assert edit.cost().forward == calls and set(edit.meta["scores"]) == set(candidates(request))


def test_same_evidence_finetuning_on_text_learns_the_proxy_reading(shipped_text):
    edit = fitted(shipped_text, "finetune_samples", "text/unlit_lamps", {"epochs": 2.0})
    assert edit.meta["targets"] > 0 and edit.cost().steps > 0
    assert resolve("finetune_samples").consumes == "samples" and resolve("finetune_samples").family == "finetune"


def test_a_tuned_value_at_the_edge_is_found():
    space = {"epochs": LogFloat(1.0, 32.0), "lr": LogFloat(1e-5, 1e-2), "r": Choice((1, 2, 4, 8), hard="lo")}
    assert at_edge(space, {"epochs": 32.0, "lr": 1e-4}) == ["epochs"]
    assert at_edge(space, {"epochs": 8.0, "lr": 1e-4}) == []
    assert at_edge(space, {"epochs": 8.0, "lr": 1e-2, "r": 8}) == ["lr", "r"]
    assert at_edge(space, {"r": 1}) == []  # rank 1: a limit, not an edge
    assert at_edge(resolve("iti").space("text"), {"k": 16, "alpha": 2.0}) == []  # all 16 heads: a limit, not an edge


def test_epochs_are_judged_by_the_steps_they_buy_within_the_schedules_floor_and_cap():
    cfg = {"epochs": 32.0, "batch_size": 4, "min_steps": 10, "max_steps": 128}
    space = {"epochs": LogFloat(1.0, 32.0)}
    buys = lambda n: {"epochs": steps_of(cfg, n)}  # noqa: E731
    assert at_edge(space, {**cfg, "epochs": 31.5}, buys(1)) == ["epochs"]  # 32 of 10..32 steps: the search could go on
    assert at_edge(space, {**cfg, "epochs": 2.0}, buys(1)) == []
    assert at_edge(space, cfg, buys(16)) == []  # 32 epochs buy the cap (128 steps): a stated limit, not the search's
    assert at_edge(space, {**cfg, "epochs": 1.0}, buys(256)) == ["epochs"]  # 64 steps, above the floor of 10
    assert at_edge(space, {**cfg, "epochs": 1.0}, buys(16)) == []  # the floor: every epoch count below 2.5 buys 10 steps
    # every finetuning's epochs span the floor to the cap at each budget of the full suite: no epoch count is an edge
    for method in ("finetune_full", "finetune_lora", "finetune_local", "finetune_samples"):
        for track in ("image", "text"):
            cls = resolve(method)
            d = cls.space(track)["epochs"]
            for n in SUITES.get("full").budgets:
                f, floor, cap = steps_of(cls(track=track).config.as_dict(), n)
                assert f(d.lo) <= floor and f(d.hi) >= cap, (method, track, n)
                assert at_edge({"epochs": d}, {"epochs": d.lo}, {"epochs": (f, floor, cap)}) == []
                assert at_edge({"epochs": d}, {"epochs": d.hi}, {"epochs": (f, floor, cap)}) == []


def test_a_widened_space_is_a_new_tuning_cell(monkeypatch):
    from editbench.harness.cell import Cell

    tuned, once = Cell("unlit_lamps", "finetune_full", 16, 100, tune=8), Cell("unlit_lamps", "finetune_full", 16, 0)
    before = tuned.key({}), once.key({})
    cls = resolve("finetune_full")
    monkeypatch.setattr(cls, "search_space", {**cls.search_space, "lr": LogFloat(1e-6, 1e-2)})
    assert tuned.key({}) != before[0]  # the search's results no longer answer for it
    assert once.key({}) == before[1]  # a cell that runs one configuration does not depend on the space


def test_the_leaderboard_publishes_the_searches_their_regret_and_the_compute_views(tiny_gen, tmp_path):
    """Tuning cells are published in tuning.md (with the regret where a larger search ran) and never tabled as
    scores; the compute plot and the families at matched compute are written; every row names its evidence."""
    from editbench import harness
    from editbench.leaderboard import publish

    kw = dict(executor="inline", progress=False, checkpoints={"generator": tiny_gen}, n_eval=8, n_dev=8, n_boot=20)
    harness.run_suite(["unlit_lamps"], ["steer", "none", "finetune_full"], [2, 4], [0], tmp_path / "r", tune=2,
                      tune_budgets=[4], regret={4: 2}, **kw)
    from editbench.harness.grid import scored_config
    from editbench.results import load_results

    assert scored_config({"config": {"lr": 1.0, "k": 2}, "search": {"larger": {"best": {"lr": 3.0}}}}) == {"lr": 3.0, "k": 2}
    assert scored_config({"config": {"lr": 1.0}, "search": {"best": {"lr": 1.0}}}) == {"lr": 1.0}
    recs = load_results(tmp_path / "r")
    for m in ("steer", "finetune_full"):  # the scored cells carry the best of all the regret budget's trials
        tuned = next(r for r in recs if r["cell"]["method"] == m and r["cell"]["tune"] > 1)
        scored = [r for r in recs if r["cell"]["method"] == m and r["cell"]["tune"] == 1]
        larger = tuned["search"]["larger"]
        assert larger["trials"] == 4 and len(scored) == 2
        assert all({k: r["config"][k] for k in larger["best"]} == larger["best"] for r in scored)
    out = publish([tmp_path / "r"], tmp_path / "site", budget=4, n_boot=50)
    assert set(out["summary"].seeds) == {"0"}  # the tuning seed is never tabled
    tuning = (tmp_path / "site" / "tuning.md").read_text()
    assert "steer" in tuning and "finetune_full" in tuning and "Regret per method" in tuning
    assert (tmp_path / "site" / "plots" / "compute.png").stat().st_size > 0
    assert "FLOPs at most" in (tmp_path / "site" / "families_compute.md").read_text()
    t = out["table"]
    assert dict(zip(t.method, t.evidence, strict=True)) == {"steer": "samples", "none": "none", "finetune_full": "targets"}
    ft = out["summary"][out["summary"].method == "finetune_full"].iloc[0]
    assert ft.flops > 0 and ft.epochs > 0


def test_a_regret_probe_runs_tuning_cells_only_and_is_folded_into_the_matched_search(tiny_gen, tmp_path, capsys):
    """``--regret 4:2 --tuning-only`` beside a matched run: a second tuning cell whose first trials are the matched
    search's, no scored cell; tuning.md keeps the matched search's best (what the scored cells use) and takes the
    probe's larger search as its regret."""
    from editbench import harness
    from editbench.leaderboard import tuning_table
    from editbench.leaderboard.frame import load_frame
    from editbench.results import load_results

    kw = dict(executor="inline", progress=False, checkpoints={"generator": tiny_gen}, n_eval=8, n_dev=8, n_boot=20,
              tune=2, tune_budgets=[4])
    harness.run_suite(["unlit_lamps"], ["steer"], [4], [0], tmp_path / "r", **kw)
    probe = harness.run_suite(["unlit_lamps"], ["steer"], [4], [0], tmp_path / "r", regret={4: 2}, scored=False, **kw)
    assert probe["ran"] == 1 and probe["ok"] == 1
    recs = load_results(tmp_path / "r")
    assert len(recs) == 3 and sum(r["cell"]["tune"] == 1 for r in recs) == 1
    matched, big = sorted((r for r in recs if r["cell"]["tune"] > 1), key=lambda r: r["cell"]["regret"])
    assert [t["config"] for t in big["tuning"][:2]] == [t["config"] for t in matched["tuning"]]
    (row,) = tuning_table(load_frame([tmp_path / "r"])[0]).itertuples()
    assert row.trials == 2 and row.trials_large == 4 and row.scored == row.best
    assert row.regret_dev == big["search"]["larger"]["dev_primary"] - matched["search"]["dev_primary"] >= 0
    assert main(["run", "--suite", "quick", "--tuning-only", "--out", str(tmp_path / "q")]) == 2
    assert "searches nothing" in capsys.readouterr().err


def test_more_compute_refits_finetuning_cells_with_k_times_their_schedule(tiny_gen, tmp_path):
    from editbench import harness
    from editbench.experiments.compute import run_more_compute, scaled

    assert scaled({"epochs": 5.0, "max_steps": 128, "lr": 1e-4}, 4) == {"epochs": 20.0, "max_steps": 512, "lr": 1e-4}
    assert scaled({"steps": 10**6, "lr": 1e-4}, 4) is None  # image reward finetuning: bounded by its calls
    kw = dict(executor="inline", progress=False, checkpoints={"generator": tiny_gen}, n_eval=8, n_dev=8, n_boot=20)
    small = dict(checkpoints=kw["checkpoints"], n_eval=8, n_dev=8, n_boot=20)
    cells = harness.make_grid(["unlit_lamps"], ["finetune_full"], [2], [0], config={"epochs": 1.0, "min_steps": 1}, **small)
    harness.run_grid(cells + harness.make_grid(["unlit_lamps"], ["steer"], [2], [0], **small), tmp_path / "r",
                     executor="inline", progress=False)
    t = run_more_compute(tmp_path / "r", tmp_path / "more", factor=2, budget=2, executor="inline", progress=False)
    assert list(t.method) == ["finetune_full"] and t.verdict.iloc[0] in ("higher", "within", "lower")
    assert t.flops_more.iloc[0] == pytest.approx(2 * t.flops_tuned.iloc[0], rel=0.01)
    assert (tmp_path / "more" / "more_compute.md").read_text().count("finetune_full") == 1


def test_tuned_defaults_are_what_the_searches_agree_on():
    """The default a method should ship is the most frequent option and the (log-)median of each range over
    the tasks' searches at n = 16, compared with its default now."""
    import json

    import pandas as pd

    from editbench.leaderboard.tuning import _typical, tuned_defaults

    assert _typical([1e-4, 1e-2, 1e-3], LogFloat(1e-5, 1e-1)) == pytest.approx(1e-3)
    assert _typical([2e-4, 8e-4], LogFloat(1e-5, 1e-1)) == 0.0004
    assert _typical(["a", "b", "b"], Choice(("a", "b", "c"))) == "b"
    assert _typical(["a", "b"], Choice(("a", "b"))) == "a"  # a tie goes to the earlier option
    bests = [{"layer": "blocks.1", "strength": 2.0, "spatial": True}, {"layer": "blocks.1", "strength": 8.0, "spatial": False},
             {"layer": "stem", "strength": 4.0, "spatial": True}]
    t = pd.DataFrame([{"track": "image", "task": f"t{i}", "method": "steer", "budget": 16, "best": json.dumps(b)}
                      for i, b in enumerate(bests)] + [{"track": "image", "task": "t0", "method": "steer", "budget": 256,
                                                        "best": json.dumps({"strength": 0.1})}])
    d = tuned_defaults(t).set_index("field")
    assert d.loc["layer", "tuned"] == "blocks.1" and d.loc["spatial", "tuned"] is True
    assert d.loc["strength", "tuned"] == 4.0 and d.loc["strength", "tasks"] == 3
    now = resolve("steer")(track="image").config
    assert d.loc["strength", "default"] == now.strength and d.loc["strength", "matches"] == (now.strength == 4.0)


def test_status_reads_how_far_a_folder_has_got_through_a_suite_and_prices_the_rest(tiny_gen, tmp_path, capsys):
    """``editbench run --status`` runs nothing: every cell of the suite's plan is done, in flight (a tuning cell
    with journalled trials), to do, or waiting on a search (a scored cell, or a search started from another
    budget's best, whose tuning cell has not finished); what is left is priced from the folder's finished cells."""
    from editbench import harness
    from editbench.harness import SuitePlan, status_table, suite_status
    from editbench.harness.journal import journal_path

    kw = dict(checkpoints={"generator": tiny_gen}, n_eval=8, n_dev=8, n_boot=20)
    shape = dict(tune=2, tune_budgets=[2, 4], warm={4: 2})
    plan = SuitePlan(["unlit_lamps"], ["steer", "none"], [2, 4], [0, 1], **shape, cell_kw=kw)

    def states(rows):
        return {(r["kind"], r["budget"], r["method"], r["state"]) for r in rows}

    rows = suite_status(plan, tmp_path / "r")
    assert states(rows) == {("tuning", 2, "steer", "to do"), ("tuning", 4, "steer", "waiting"),
                            ("scored", 2, "steer", "waiting"), ("scored", 4, "steer", "waiting"),
                            ("scored", 2, "none", "to do"), ("scored", 4, "none", "to do")}
    assert len(rows) == 2 + 4 + 4 and all(r["estimate"] is None for r in rows)  # nothing has run: nothing priced
    assert not (tmp_path / "r").exists()
    run = dict(executor="inline", progress=False, **shape, **kw)
    harness.run_suite(["unlit_lamps"], ["steer", "none"], [2, 4], [0, 1], tmp_path / "r", scored=False, **run)
    rows = suite_status(plan, tmp_path / "r")
    tuning = [r for r in rows if r["kind"] == "tuning"]
    assert {r["state"] for r in tuning} == {"done"} and all(r["seconds"] > 0 for r in tuning)
    steer = [r for r in rows if r["kind"] == "scored" and r["method"] == "steer"]
    assert {r["state"] for r in steer} == {"to do"}  # named now: their configurations are chosen
    assert all(0 < r["estimate"] < max(t["seconds"] for t in tuning) for r in steer)  # one fit and a test scoring
    assert all(r["estimate"] is None for r in rows if r["method"] == "none")  # nothing like them has run
    # a tuning cell stopped part way: in flight, priced for the fits its journal does not hold
    done = sorted((tmp_path / "r").rglob("n4-s100-*.json"))
    assert len(done) == 1
    done[0].unlink()
    journal_path(done[0]).write_text(json.dumps({"config": {}, "value": 0.0, "record": {}, "rng": ""}) + "\n")
    (r4,) = [r for r in suite_status(plan, tmp_path / "r") if r["kind"] == "tuning" and r["budget"] == 4]
    (r2,) = [r for r in suite_status(plan, tmp_path / "r") if r["kind"] == "tuning" and r["budget"] == 2]
    assert r4["state"] == "in flight" and r4["journalled"] == 1 and 0 < r4["estimate"] < r2["seconds"] * 2
    journal_path(done[0]).unlink()
    harness.run_suite(["unlit_lamps"], ["steer", "none"], [2, 4], [0, 1], tmp_path / "r", **run)
    rows = suite_status(plan, tmp_path / "r")
    assert {r["state"] for r in rows} == {"done"} and not any(r["estimate"] for r in rows)
    scored = sorted((tmp_path / "r").rglob("n2-s0-*.json"))  # a cell whose result says it failed: redone next run
    text = scored[0].read_text()
    scored[0].write_text(json.dumps({**json.loads(text), "status": "failed"}))
    assert sorted(r["state"] for r in suite_status(plan, tmp_path / "r")).count("failed") == 1
    scored[0].write_text(text)
    text = status_table(rows, workers=2)
    assert "10 of 10 cells done; about 0.0 h of cell time left" in text and "scored n=4" in text
    # from the command line: a report, exit 0, nothing run
    assert main(["run", "--suite", "quick", "--tasks", "unlit_lamps", "--methods", "none,steer", "--out",
                 str(tmp_path / "q"), "--status"]) == 0
    out = capsys.readouterr().out
    assert "0 of 2 cells done" in out and "besides 2 cells not priced" in out
    assert not (tmp_path / "q").exists()
