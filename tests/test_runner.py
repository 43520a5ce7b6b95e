import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from editbench import harness
from editbench.cli import main
from editbench.core import MethodError, UserError
from editbench.results import SCHEMA_VERSION, load_results

SMALL = {"n_eval": 8, "n_dev": 8, "n_boot": 20, "tune": 1}


def _grid(gen, methods=("none", "oracle", "steer"), tasks=("unlit_lamps", "second_order"), seeds=(0, 1)):
    return harness.make_grid(list(tasks), list(methods), [4], list(seeds), checkpoints={"generator": gen}, **SMALL)


def _scores(out):
    return {(r["cell"]["task"], r["cell"]["method"], r["cell"]["seed"]): (r["status"], r["scores"])
            for r in load_results(out)}


def test_tiny_grid_inline_and_process_agree(tiny_gen, tmp_path):
    cells = _grid(tiny_gen)
    a = harness.run_grid(cells, tmp_path / "a", executor="inline", progress=False)
    b = harness.run_grid(cells, tmp_path / "b", executor="process", workers=2, progress=False)
    assert a["ok"] == b["ok"] == 12 and a["failed"] == b["failed"] == 0
    sa, sb = _scores(tmp_path / "a"), _scores(tmp_path / "b")
    assert sa == sb and len(sa) == 12
    rec = load_results(tmp_path / "a")[0]
    assert rec["schema_version"] == SCHEMA_VERSION
    prov = rec["provenance"]
    assert prov["checkpoints"]["generator"] and prov["versions"]["torch"] and "commit" in prov["git"]
    # a second run skips everything
    again = harness.run_grid(cells, tmp_path / "a", executor="inline", progress=False)
    assert again["skipped"] == 12 and again["ran"] == 0


def test_killed_run_resumes_without_recomputing(tiny_gen, tmp_path):
    out = tmp_path / "r"
    code = textwrap.dedent(f"""
        from editbench import harness
        cells = harness.make_grid(["unlit_lamps", "second_order"], ["none", "oracle", "steer"], [4], [0, 1],
                                  checkpoints={{"generator": {tiny_gen!r}}}, **{SMALL!r})
        harness.run_grid(cells, {str(out)!r}, executor="inline", progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.rglob("*.json"))) < 3:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p: p.stat().st_mtime_ns for p in out.rglob("*.json")}
    assert 3 <= len(done) < 12, "the run should have been killed part way"
    rep = harness.run_grid(_grid(tiny_gen), out, executor="inline", progress=False)
    files = list(out.rglob("*.json"))
    assert len(files) == 12 and rep["skipped"] == len(done)
    for p in files:
        json.loads(p.read_text())  # none corrupt
    for p, mtime in done.items():
        assert p.stat().st_mtime_ns == mtime  # finished cells were not recomputed
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_failing_methods_are_recorded_and_the_grid_goes_on(tiny_gen, tmp_path):
    f = tmp_path / "bad_methods.py"
    f.write_text(textwrap.dedent("""
        import time
        import torch
        from editbench.core import Edit, Method

        class Raises(Method):
            name = "raises"
            consumes = "none"
            def fit(self, model, request, evidence, budget):
                raise RuntimeError("this method is broken")

        class ReturnsNaN(Method):
            name = "returns_nan"
            consumes = "none"
            def fit(self, model, request, evidence, budget):
                return Edit(self.name, tensors={"d": torch.full((16,), float("nan"))},
                            hooks={"blocks.2": {"op": "add", "direction": "d"}})

        class Mutates(Method):
            name = "mutates"
            consumes = "none"
            def fit(self, model, request, evidence, budget):
                with torch.no_grad():
                    next(model.parameters()).add_(1.0)  # edits the shared model instead of a copy
                return Edit(self.name)

        class Sleeps(Method):
            name = "sleeps"
            consumes = "none"
            def fit(self, model, request, evidence, budget):
                time.sleep(120)
    """))
    methods = [f"{f}:Mutates", "none", f"{f}:Raises", f"{f}:ReturnsNaN", f"{f}:Sleeps", "oracle"]
    cells = harness.make_grid(["unlit_lamps"], methods, [4], [0], checkpoints={"generator": tiny_gen}, **SMALL)
    rep = harness.run_grid(cells, tmp_path / "out", executor="process", workers=2, timeout_s=20, progress=False)
    assert rep["ok"] == 2 and rep["failed"] == 4
    errors = {t["method"].split(":")[-1]: t["error"] for t in rep["timings"]}
    assert "this method is broken" in errors["Raises"]
    assert "non-finite" in errors["ReturnsNaN"]
    assert "past its limit" in errors["Sleeps"]
    assert "in place" in errors["Mutates"]
    assert errors["none"] is None and errors["oracle"] is None
    # the cells that ran beside the broken ones score as they do alone
    alone = harness.run_grid(harness.make_grid(["unlit_lamps"], ["none"], [4], [0], checkpoints={"generator": tiny_gen},
                                               **SMALL),
                            tmp_path / "alone", executor="inline", progress=False)
    assert alone["timings"][0]["primary"] == next(t["primary"] for t in rep["timings"] if t["method"] == "none")


def test_suite_tunes_on_an_unscored_seed_at_each_tuned_budget(tiny_gen, tmp_path):
    """Every method with a search space gets one tuning cell per tuned budget, on the tuning seed (never scored);
    every scored cell carries the configuration of the nearest tuned budget; a method without a space is not
    tuned."""
    rep = harness.run_suite(["unlit_lamps"], ["steer", "none"], [1, 2, 4], [0, 1], tmp_path / "s", tune=3,
                            tune_budgets=[1, 4], tune_seed=7, executor="inline", progress=False,
                            checkpoints={"generator": tiny_gen}, n_eval=8, n_dev=8, n_boot=20)
    assert rep["failed"] == 0 and rep["ok"] == 2 + 12
    recs = {(r["cell"]["method"], r["cell"]["budget"], r["cell"]["seed"]): r for r in load_results(tmp_path / "s")}
    assert ("none", 1, 7) not in recs  # nothing to search
    for b in (1, 4):
        tuned = recs[("steer", b, 7)]
        s = tuned["search"]
        assert tuned["cell"]["tune"] == 3 and s["trials"] == 3 and len(tuned["tuning"]) == s["distinct"]
        best = max((t for t in tuned["tuning"] if t["dev_primary"] is not None), key=lambda t: t["dev_primary"])
        assert {k: tuned["config"][k] for k in best["config"]} == best["config"] == s["best"]
        assert s["dev_se"] >= 0 and s["test_primary"] == tuned["scores"]["primary"]
    for (m, n, s), r in recs.items():
        if m == "steer" and s != 7:
            near = 4 if n >= 2 else 1  # 2 is as near 1 as 4 on a log scale: the larger wins
            assert r["cell"]["tuned_on"] == f"n{near}-s7" and r["cell"]["tune"] == 1 and not r["tuning"]
            assert r["config"] == recs[("steer", near, 7)]["config"] and "edges" in r["search"]
    with pytest.raises(UserError, match="also scored"):
        harness.run_suite(["unlit_lamps"], ["steer"], [1], [0, 7], tmp_path / "x", tune=3, tune_seed=7,
                          executor="inline", progress=False)


def test_a_warm_search_starts_from_the_best_of_the_budget_it_is_warmed_from(tiny_gen, tmp_path):
    """``warm={4: 1}``: the tuning cell at n = 4 runs after the one at n = 1 and tries that cell's best first (its key
    names it); asked for n = 4 alone, the run still tunes at n = 1 first, so the n = 4 cell is the same; a cell
    without a start has the key it had before the field existed."""
    kw = dict(tune=3, executor="inline", progress=False, checkpoints={"generator": tiny_gen}, n_eval=8, n_dev=8,
              n_boot=20, tune_seed=7)
    harness.run_suite(["unlit_lamps"], ["steer"], [1, 4], [0], tmp_path / "a", tune_budgets=[1, 4], warm={4: 1}, **kw)
    recs = {(r["cell"]["budget"], r["cell"]["seed"]): r for r in load_results(tmp_path / "a")}
    cold, warm = recs[(1, 7)], recs[(4, 7)]
    assert "start" not in cold["cell"] and warm["cell"]["start"] == cold["config"]
    assert warm["tuning"][0]["config"] == {k: cold["config"][k] for k in warm["tuning"][0]["config"]}
    alone = harness.run_suite(["unlit_lamps"], ["steer"], [4], [0], tmp_path / "a", tune_budgets=[4], warm={4: 1}, **kw)
    assert alone["ran"] == 0 and alone["skipped"] == 3  # n = 1's tuning cell, n = 4's, the scored cell
    c = harness.Cell("unlit_lamps", "steer", 4, 7, tune=3)
    assert "start" not in c.spec() and c.key({}) != harness.Cell("unlit_lamps", "steer", 4, 7, tune=3,
                                                                  start={"strength": 1.0}).key({})
    from editbench.core.search import LogFloat, search

    space = {"lr": LogFloat(1e-4, 1e-1), "k": LogFloat(1, 64)}
    first = search(space, lambda c: -c["lr"], 4, seed=3, start={"lr": 0.01, "nope": 1})
    assert first[0]["config"]["lr"] == 0.01 and 1 <= first[0]["config"]["k"] <= 64
    assert search(space, lambda c: -c["lr"], 4, seed=3, start={"lr": 0.01, "nope": 1}) == first


def test_an_export_for_a_suite_leaves_out_the_cells_of_an_earlier_protocol(tiny_gen, tmp_path, capsys):
    """Searches of another size or start than the suite's and scored cells of a configuration no longer handed on
    are left out of ``leaderboard export --suite``; a regret probe and the suite's own cells are kept."""
    from editbench.harness import Suite
    from editbench.harness.grid import not_of_suite

    kw = dict(executor="inline", progress=False, checkpoints={"generator": tiny_gen}, n_eval=8, n_dev=8, n_boot=20,
              tune=2, tune_budgets=[1, 4], tune_seed=7)
    suite = Suite("t", (1, 4), (0,), n_eval=8, n_dev=8, tune=2, n_boot=20, tune_budgets=(1, 4), tune_seed=7,
                  regret={1: 2}, warm={4: 1})
    harness.run_suite(["unlit_lamps"], ["steer"], [1, 4], [0], tmp_path / "r", **kw)  # the earlier protocol
    harness.run_suite(["unlit_lamps"], ["steer"], [1, 4], [0], tmp_path / "r", regret={1: 2}, warm={4: 1}, **kw)
    harness.run_suite(["unlit_lamps"], ["steer"], [4], [0], tmp_path / "r", regret={1: 2, 4: 3}, warm={4: 1},
                      scored=False, **kw)  # a regret probe at n = 4
    recs = load_results(tmp_path / "r")
    out = not_of_suite(recs, suite)
    got = sorted((r["cell"]["budget"], r["cell"]["tune"], r["cell"].get("regret", 1), bool(r["cell"].get("start")),
                  out.get(i)) for i, r in enumerate(recs))
    assert got == [(1, 1, 1, False, None), (1, 2, 1, False, "a search of 2 trials, where the suite runs 4"),
                   (1, 2, 2, False, None), (4, 1, 1, False, None),
                   (4, 2, 1, False, "a search started elsewhere than the suite starts it"), (4, 2, 1, True, None),
                   (4, 2, 3, True, None)]  # the scored cells: the best is the same under both protocols here
    i1 = next(i for i, r in enumerate(recs) if r["cell"]["budget"] == 1 and r["cell"].get("regret") == 2)
    recs[i1]["search"]["larger"]["best"]["strength"] = 123.0  # the tuning cell now hands on another configuration
    assert [recs[i]["cell"].get("tuned_on") for i, w in not_of_suite(recs, suite).items() if "hands on" in w] == ["n1-s7"]
    assert main(["leaderboard", "export", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "e.jsonl.gz"),
                 "--suite", "full"]) == 0
    assert "left out, cells a run of suite full would not use" in capsys.readouterr().out


def test_regret_search_extends_the_matched_search():
    """The sampler's first trials do not depend on how many follow: a search four times larger starts with the
    matched search, so its best on dev is never worse; the same seed gives the same trials."""
    from editbench.core.search import Choice, LogFloat, LogInt, at_edge, search

    space = {"lr": LogFloat(1e-4, 1e-1), "k": LogInt(1, 64), "layer": Choice(("a", "b", "c"))}

    def f(c):
        return -abs(math.log10(c["lr"]) + 2) - abs(math.log2(c["k"]) - 3) / 3 - (c["layer"] != "b")

    small = search(space, f, 6, seed=3)
    large = search(space, f, 24, seed=3)
    assert [t["config"] for t in large[:6]] == [t["config"] for t in small]
    assert max(t["value"] for t in large) > max(t["value"] for t in small)  # TPE improves on the random start
    assert search(space, f, 6, seed=3) == small and search(space, f, 6, seed=4) != small
    assert at_edge(space, {"lr": 0.099, "k": 8, "layer": "c"}) == ["lr"]  # options named, not ordered: no edge
    assert at_edge({"k": LogInt(1, 16, hard="hi"), "q": Choice((1, 2, 4))}, {"k": 16, "q": 1}) == ["q"]


def test_a_search_is_still_climbing_where_its_last_third_found_more_than_its_noise():
    from editbench.core.search import late_gain, still_climbing

    assert late_gain([0.1, 0.5, 0.2, 0.3, 0.4, 0.6]) == pytest.approx(0.1)  # best 0.6 against the first four's 0.5
    assert late_gain([0.5, 0.1, 0.2]) == 0.0 and math.isnan(late_gain([0.1, 0.2]))
    assert late_gain([None, float("nan"), 0.3]) == math.inf and math.isnan(late_gain([None] * 4))
    assert still_climbing([0.1, 0.5, 0.2, 0.3, 0.4, 0.6], se=0.04) and not still_climbing([0.1, 0.5, 0.2, 0.3, 0.4, 0.6], se=0.06)


def test_a_search_still_climbing_grows_before_its_best_is_handed_on(tiny_gen, tmp_path, monkeypatch):
    """With ``grow=1`` a finished search that was still climbing goes on to twice its trials: the longer cell starts
    from the shorter's kept journal (its first trials replayed, exactly those), the scored cells and the search
    warmed from it take the grown best, the status lists it, an export keeps the chain, and the tuning table shows
    one row for it. A grown search is not grown again beyond the suite's limit."""
    import editbench.harness.cell as cell_mod
    import editbench.harness.grid as grid_mod
    from editbench.harness import Suite
    from editbench.harness.grid import SuitePlan, not_of_suite
    from editbench.harness.status import suite_status
    from editbench.leaderboard.frame import load_frame
    from editbench.leaderboard.tuning import tuning_table

    climbs = lambda rec: rec["cell"]["budget"] == 1  # noqa: E731 - the search at n = 1 climbs, grown or not
    monkeypatch.setattr(cell_mod, "search_climbing", climbs)
    monkeypatch.setattr(grid_mod, "search_climbing", climbs)
    kw = dict(tune=3, executor="inline", progress=False, checkpoints={"generator": tiny_gen}, n_eval=8, n_dev=8,
              n_boot=20, tune_seed=7, tune_budgets=[1, 4], warm={4: 1})
    rep = harness.run_suite(["unlit_lamps"], ["steer"], [1, 4], [0], tmp_path / "g", grow=1, **kw)
    assert rep["failed"] == 0 and rep["ok"] == 5  # n = 1: 3 trials, then 6; n = 4 (3 trials, warmed); two scored
    recs = load_results(tmp_path / "g")
    tuning = {(r["cell"]["budget"], r["cell"].get("grow", 0)): r for r in recs if r["cell"]["tune"] > 1}
    assert sorted(tuning) == [(1, 0), (1, 1), (4, 0)]
    short, long = tuning[(1, 0)], tuning[(1, 1)]
    assert "grow" not in short["cell"] and long["search"]["grown"]["trials"] == 6
    assert long["timing"]["resumed_trials"] == 3  # the shorter search's trials, from its journal
    assert long["tuning"][:3] == short["tuning"] and long["search"]["best"] == short["search"]["best"]
    grown_best = long["search"]["grown"]["best"]
    scored = {r["cell"]["budget"]: r for r in recs if r["cell"]["tune"] == 1}
    assert {k: scored[1]["config"][k] for k in grown_best} == grown_best
    assert tuning[(4, 0)]["cell"]["start"] == harness.grid.scored_config(long)
    # the shorter's journal was used up; the grown one, climbing at the limit, keeps its own
    assert [p.name for p in (tmp_path / "g").rglob("*.trials.jsonl")] == [f"n1-s7-{long['key']}.trials.jsonl"]
    suite = Suite("t", (1, 4), (0,), n_eval=8, n_dev=8, tune=3, n_boot=20, tune_budgets=(1, 4), tune_seed=7,
                  warm={4: 1}, grow=1)
    assert not_of_suite(recs, suite) == {}
    unused = not_of_suite(recs, dataclasses.replace(suite, grow=0))  # without growth the grown cell is not used
    assert unused[recs.index(long)] == "a longer search than the suite grows this one to"
    long["search"]["grown"]["best"]["strength"] = 123.0  # the grown search now hands on another configuration
    assert sorted(not_of_suite(recs, suite).values()) == [  # n = 1's scored cell, n = 4's search and its scored cell
        "a configuration its tuning cell (n1-s7) no longer hands on", "a search started elsewhere than the suite starts it",
        "its tuning cell (n4-s7) is not among these records"]
    long["search"]["grown"]["best"]["strength"] = grown_best["strength"]
    plan = SuitePlan(["unlit_lamps"], ["steer"], [1, 4], [0], tune=3, tune_budgets=[1, 4], tune_seed=7, warm={4: 1},
                     grow=1, cell_kw={"checkpoints": {"generator": tiny_gen}, "n_eval": 8, "n_dev": 8, "n_boot": 20})
    rows = suite_status(plan, tmp_path / "g")
    assert [r["state"] for r in rows] == ["done"] * 5 and sum(r["kind"] == "tuning" for r in rows) == 3
    t = tuning_table(load_frame([tmp_path / "g"])[0])
    assert len(t) == 2 and int(t[t.budget == 1].trials_grown.iloc[0]) == 6


def test_a_search_still_climbing_counts_its_late_gain_as_regret():
    """What a larger search would still gain is at least what a climbing search's last third added; a converged
    search without a measured regret has none."""
    import pandas as pd

    from editbench.leaderboard.tuning import regret_of

    rows = pd.DataFrame([
        {"task": "a", "method": "m", "budget": 16, "regret_dev": 0.05, "regret_test": -0.01, "climbing": True,
         "late_gain": 0.2},
        {"task": "b", "method": "m", "budget": 16, "regret_dev": 0.05, "regret_test": 0.07, "climbing": False,
         "late_gain": 0.01},
        {"task": "c", "method": "m", "budget": 256, "regret_dev": math.nan, "regret_test": math.nan, "climbing": True,
         "late_gain": 0.1},
        {"task": "d", "method": "m", "budget": 256, "regret_dev": math.nan, "regret_test": math.nan, "climbing": False,
         "late_gain": 0.0}])
    assert regret_of(rows) == {("a", "m", 16): 0.2, ("b", "m", 16): 0.07, ("c", "m", 256): 0.1}


@pytest.mark.parametrize("track,method", [("image", "steer"), pytest.param("image", "finetune_lora", marks=pytest.mark.slow),
                                          pytest.param("text", "rome", marks=pytest.mark.slow)])
def test_a_stopped_tuning_cell_resumes_from_its_journal_and_computes_the_same(track, method, tiny_gen, tmp_path):
    """A tuning cell journals each trial as it finishes; a run stopped part way (here: after two trials, the third
    line cut short by the kill) resumes in a fresh session from the journal, fits only the trials it lacks, and
    gives exactly the cell an uninterrupted run gives. A journal of another search is cut where it departs."""
    from editbench.harness.cell import run_cell
    from editbench.harness.journal import TrialJournal

    checkpoints = {"generator": tiny_gen} if track == "image" else {}  # text: the shipped LM (a tiny one reads nothing)
    task = "unlit_lamps" if track == "image" else "text/unlit_lamps"
    cell = harness.Cell(task, method, 4, 100, tune=3, regret=2, n_eval=8, n_dev=8, n_boot=20, checkpoints=checkpoints)
    journal = tmp_path / "task" / "method" / "cell.trials.jsonl"  # in a folder the grid has not made yet
    whole = run_cell(cell, harness.Session(track, checkpoints), journal)
    lines = journal.read_text().splitlines(keepends=True)
    assert len(lines) == len(whole["tuning"]) == 6 and "resumed_trials" not in whole["timing"]
    journal.write_text("".join(lines[:2]) + lines[2][:40])
    resumed = run_cell(cell, harness.Session(track, checkpoints), journal)
    assert resumed["timing"]["resumed_trials"] == 2
    drop = lambda recs: [{k: v for k, v in r.items() if k != "seconds"} for r in recs]  # noqa: E731
    assert drop(resumed["tuning"]) == drop(whole["tuning"]) and resumed["tuning"][:2] == whole["tuning"][:2]
    for field in ("scores", "config", "search"):
        assert resumed[field] == whole[field], field
    assert {**resumed["cost"], "fit_seconds": 0} == {**whole["cost"], "fit_seconds": 0}
    # a journal whose second trial is not this search's: the first is replayed, the rest refitted
    other = [json.loads(x) for x in lines[:3]]
    other[1]["config"] = {**other[1]["config"], "lr": 0.123}
    journal.write_text("".join(json.dumps(e) + "\n" for e in other))
    again = run_cell(cell, harness.Session(track, checkpoints), journal)
    assert again["timing"]["resumed_trials"] == 1 and drop(again["tuning"]) == drop(whole["tuning"])
    assert len(TrialJournal(journal).entries) == 6


def test_a_cell_run_by_the_grid_leaves_no_journal_once_written(tiny_gen, tmp_path):
    cells = [harness.Cell("unlit_lamps", "steer", 4, 100, tune=2, n_eval=8, n_dev=8, n_boot=20,
                          checkpoints={"generator": tiny_gen})]
    assert harness.run_grid(cells, tmp_path, executor="inline", progress=False)["ok"] == 1
    assert not list(tmp_path.rglob("*.trials.jsonl")) and len(list(tmp_path.rglob("*.json"))) == 1


def test_cli_run_rejects_bad_input(tmp_path, capsys):
    assert main(["run", "--tasks", "nope", "--out", str(tmp_path)]) == 2
    assert main(["run", "--methods", "nope", "--out", str(tmp_path)]) == 2
    assert main(["run", "--budgets", "x", "--out", str(tmp_path)]) == 2
    assert main(["run", "--executor", "nope", "--out", str(tmp_path)]) == 2
    assert main(["run", "--regret", "256x3", "--out", str(tmp_path)]) == 2
    assert main(["run", "--suite", "quick", "--regret", "16:3", "--out", str(tmp_path)]) == 2  # quick searches nothing
    assert main(["run", "--suite", "quick", "--tune-budgets", "4", "--out", str(tmp_path)]) == 2
    assert main(["run", "--suite", "full", "--tune-budgets", "0,4", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("editbench: error:") == 8 and "budget:factor" in err and "searches nothing" in err
    assert "tuned budgets must be >= 1" in err


def test_grid_pairs_methods_only_with_tracks_they_support():
    cells = harness.make_grid(["unlit_lamps", "text/unlit_lamps"], ["unit_clamp", "rome", "steer", "no_such_method"],
                              [4], [0])
    pairs = {(c.task, c.method) for c in cells}
    assert ("text/unlit_lamps", "unit_clamp") not in pairs and ("unlit_lamps", "rome") not in pairs
    assert {("unlit_lamps", "unit_clamp"), ("text/unlit_lamps", "rome"), ("unlit_lamps", "steer"),
            ("text/unlit_lamps", "steer")} <= pairs
    assert ("text/unlit_lamps", "no_such_method") in pairs  # kept, to be recorded as a failed cell
    assert {c.track for c in cells} == {"image", "text"}


def test_more_seeds_extend_one_budget_and_reuse_its_tuning(tiny_gen, tmp_path):
    """A budget's extra seeds (the full suite's headline budget) run with the config its tuning cell chose; a
    run that adds them to finished results recomputes nothing else."""
    kw = dict(tune=3, executor="inline", progress=False, checkpoints={"generator": tiny_gen}, n_eval=8, n_dev=8, n_boot=20)
    first = harness.run_suite(["unlit_lamps"], ["steer"], [2, 4], [0], tmp_path / "s", **kw)
    assert first["ok"] == 4  # two tuning cells (seed 100), two scored
    more = harness.run_suite(["unlit_lamps"], ["steer"], [2, 4], [0], tmp_path / "s", more_seeds={4: (1, 2)}, **kw)
    assert more["skipped"] == 4 and more["ran"] == 2 and more["ok"] == 2
    recs = {(r["cell"]["budget"], r["cell"]["seed"]): r for r in load_results(tmp_path / "s")}
    assert sorted(recs) == [(2, 0), (2, 100), (4, 0), (4, 1), (4, 2), (4, 100)]
    assert recs[(4, 2)]["cell"]["tuned_on"] == "n4-s100" and recs[(4, 2)]["config"] == recs[(4, 0)]["config"]
    cells = harness.make_grid(["unlit_lamps"], ["none"], [2, 4], [0], more_seeds={4: (0, 3)})
    assert sorted((c.budget, c.seed) for c in cells) == [(2, 0), (4, 0), (4, 3)]
    full = harness.SUITES.get("full")
    assert full.more_seeds == {16: tuple(range(3, 10))} and full.tune_budgets == (1, 16, 256)
    assert full.tune_seed not in full.seeds and full.regret == {1: 3, 16: 3}
    assert full.more_seeds_for(None) == full.more_seeds and full.more_seeds_for([0, 1]) == {}  # given seeds replace them


def test_restore_writes_an_export_back_as_the_grid_files(tiny_gen, tmp_path):
    """An export restored into a folder is the files the grid writes there: a run skips every cell, and
    a record whose key this version would not give is not restored."""
    import gzip

    cells = _grid(tiny_gen, methods=("none", "oracle"), tasks=("unlit_lamps",))
    harness.run_grid(cells, tmp_path / "a", executor="inline", progress=False)
    exported = tmp_path / "a.jsonl.gz"
    assert main(["leaderboard", "export", "--results", str(tmp_path / "a"), "--out", str(exported)]) == 0
    lines = gzip.open(exported, "rt").read().splitlines()
    stale = json.loads(lines[0])
    stale["key"] = "0" * 20
    stale["cell"]["seed"] = 7
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write("\n".join([*lines, json.dumps(stale)]) + "\n")
    assert harness.restore(tmp_path / "b.jsonl.gz", tmp_path / "r") == {"restored": 4, "kept": 0, "stale": 1}
    assert harness.restore(exported, tmp_path / "r") == {"restored": 0, "kept": 4, "stale": 0}
    again = harness.run_grid(cells, tmp_path / "r", executor="inline", progress=False)
    assert again["skipped"] == 4 and again["ran"] == 0
    assert _scores(tmp_path / "r") == _scores(tmp_path / "a")
    assert main(["leaderboard", "restore", "--results", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2


def test_a_tree_without_its_git_records_the_commit_it_was_told(monkeypatch):
    """A copied tree (no ``.git``) names its commit in EDITBENCH_COMMIT; a checkout's own commit wins over it."""
    import importlib

    provenance = importlib.import_module("editbench.results.provenance")  # the package exports a function of the name
    assert provenance.git()["commit"]  # this checkout
    monkeypatch.setenv("EDITBENCH_COMMIT", "0" * 40)
    assert provenance.git()["commit"] != "0" * 40
    monkeypatch.setattr(provenance.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 128, "", "fatal: not a git repository"))
    assert provenance.git() == {"commit": "0" * 40, "dirty": None, "source": "EDITBENCH_COMMIT"}
    monkeypatch.delenv("EDITBENCH_COMMIT")
    assert provenance.git() == {"commit": None, "dirty": None}


def test_the_cost_estimate_prices_searched_schedules_discriminators_and_evaluator_budgets():
    """The full suite's estimate from quick timings: a searched image finetuning also trains the discriminator
    in half its trials (2.5x a step), text finetuning has nothing of the kind; the weak and noisy evaluators
    add cells at their budgets only."""
    import dataclasses

    from editbench.harness.grid import estimate_full, fit_scale
    from editbench.tracks.image.track import DISCRIMINATOR_STEP_COST

    image, text = fit_scale("finetune_full", "image", 256, 16, True), fit_scale("finetune_full", "text", 256, 16, True)
    plain = fit_scale("finetune_samples", "image", 256, 16, True)  # same schedule and epochs, no discriminator
    assert image == pytest.approx(plain * (1 + DISCRIMINATOR_STEP_COST) / 2) and text > 0
    assert fit_scale("steer", "image", 256, 16) == 16 and fit_scale("none", "image", 256, 16) == 1
    rep = {"timings": [{"task": "unlit_lamps", "method": "prompt", "status": "ok", "fit_s": 1.0, "score_s": 1.0}]}
    full = harness.SUITES.get("full")
    parts: dict[str, float] = {}
    at_16 = estimate_full(rep, full=full, breakdown=parts)
    assert at_16 < estimate_full(rep, full=dataclasses.replace(full, evaluator_budgets=()))
    assert set(parts) == {"image prompt tuning", "image prompt scored"} and sum(parts.values()) == pytest.approx(at_16)


def test_the_unchanged_model_check_sees_flags_and_hooks_not_only_weights(tiny_gen):
    """A library that flips requires_grad, calls train() or leaves a hook on the shared model changes what
    the next method and the scorer see, with every weight as before: each is caught and named."""
    session = harness.Session("image", {"generator": tiny_gen})
    model, before = session.edited_model, session.fingerprint()
    assert session.changed(before) is None
    p = next(model.parameters())
    p.requires_grad_(not p.requires_grad)
    assert session.changed(before) == "which parameters require gradients"
    p.requires_grad_(not p.requires_grad)
    model.train(not model.training)
    assert session.changed(before) == "its training mode (train()/eval())"
    model.train(not model.training)
    handle = next(iter(model.modules())).register_forward_hook(lambda *a: None)
    with pytest.raises(MethodError, match="the hooks registered on it"):
        session.check_unchanged(before)
    handle.remove()
