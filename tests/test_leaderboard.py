import csv
import io
import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from editbench import harness
from editbench import leaderboard as L
from editbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"n_eval": 8, "n_dev": 8, "n_boot": 50, "tune": 1}
TASKS, METHODS = ["unlit_lamps", "second_order"], ["none", "oracle", "steer"]


@pytest.fixture(scope="module")
def results(tmp_path_factory, tiny_gen):
    """A small results folder: 2 tasks x (3 methods + one that raises) x budgets 2, 4 x seeds 0, 1."""
    root = tmp_path_factory.mktemp("lb")
    gen = tiny_gen
    bad = root / "broken.py"
    bad.write_text(textwrap.dedent("""
        from editbench.core import Method

        class Broken(Method):
            name = "broken"
            family = "edit"
            consumes = "none"
            def fit(self, model, request, evidence, budget):
                raise RuntimeError("broken on purpose")
    """))
    methods = [*METHODS, f"{bad}:Broken"]
    cells = harness.make_grid(TASKS, methods, [2, 4], [0, 1], checkpoints={"generator": gen}, **SMALL)
    rep = harness.run_grid(cells, root / "results", executor="inline", progress=False)
    assert rep["ok"] == 24 and rep["failed"] == 8
    return root / "results"


def test_summary_ranks_the_oracle_first_and_keeps_failed_cells(results):
    df, per_image = L.load_frame(results)
    assert len(df) == 32 and (df.status == "failed").sum() == 8
    s = L.summarize(df, per_image, n_boot=200)
    assert len(s) == 2 * 4 * 2  # tasks x methods x budgets
    for (_task, _budget), g in s.groupby(["task", "budget"]):
        g = g.set_index("method")
        assert g.loc["oracle", "rank"] == 1 and g.loc["oracle", "primary"] > 0.8
        assert g.loc["none", "primary"] == 0.0 and g.loc["none", "rank"] > 1
        assert g.loc["oracle", "ci_lo"] <= g.loc["oracle", "primary"] <= g.loc["oracle", "ci_hi"]
        broken = g.loc["broken"]  # shown under its declared name, not file.py:Broken
        assert broken.status == "failed" and "broken on purpose" in broken.error and broken["n_failed"] == 2


def test_published_tables_agree_with_the_json(results, tmp_path):
    assert main(["leaderboard", "build", "--results", str(results), "--out", str(tmp_path / "site"), "--budget", "4"]) == 0
    site = tmp_path / "site"
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "leaderboard.tex", "index.html",
                 "plots/budget_curves.png", "plots/cost.png", "grids/unlit_lamps.png", "grids/second_order.png"):
        assert (site / name).stat().st_size > 0, name
    js = json.loads((site / "leaderboard.json").read_text())
    rows = js["rows"]
    assert len(rows) == len(TASKS) * (len(METHODS) + 1)
    assert len({(r["task"], r["method"]) for r in rows}) == len(rows)
    assert js["meta"]["seeds"] == [0, 1] and js["meta"]["checkpoints"]["generator"] and js["meta"]["commits"]

    text = (site / "leaderboard.csv").read_text()
    assert text.startswith("# suite")
    table = list(csv.DictReader(io.StringIO(text.split("\n", 1)[1])))
    assert len(table) == len(rows)
    for r, c in zip(rows, table, strict=True):
        assert (r["task"], r["method"]) == (c["task"], c["method"])
        if r["primary"] is None:
            assert c["status"] == "failed" and c["primary"] == ""
        else:
            assert float(c["primary"]) == pytest.approx(r["primary"], abs=1e-12)

    md = (site / "leaderboard.md").read_text()
    md_rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| task")]
    assert len(md_rows) == len(rows)
    for r, line in zip(rows, md_rows, strict=True):
        cells = [x.strip() for x in line.strip("|").split("|")]
        assert cells[0] == r["task"] and cells[2] == r["method"]
        assert cells[4] in ("samples (proxy-read)", "none")  # the evidence the row learned from
        assert cells[5] == ("failed" if r["primary"] is None else f"**{r['primary']:.3f}** "
                            f"[{r['ci_lo']:.3f}, {r['ci_hi']:.3f}]".replace("-0.000", "0.000"))
    assert "commit" in md and "generator" in md
    assert r"\toprule" in (site / "leaderboard.tex").read_text()
    fam = [line for line in (site / "families.md").read_text().splitlines() if line.startswith("| ") and "leader" not in line]
    assert len(fam) == len(TASKS) * 2 and all(line.rstrip(" |").endswith("edit") for line in fam)  # steer: the only family
    html = (site / "index.html").read_text()
    assert "http://" not in html and "https://" not in html  # works offline


def test_families_table_names_a_leader_only_where_the_bootstrap_separates():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.02, 500)
    def row(method, family, primary):
        return {"task": "t", "budget": 4, "method": method, "family": family, "primary": primary,
                "ci_lo": primary - 0.04, "ci_hi": primary + 0.04}
    summary = pd.DataFrame([row("oracle", "reference", 0.95), row("a", "edit", 0.6), row("b", "edit", 0.3),
                            row("c", "finetune", 0.58), row("d", "prompt", 0.2)])
    draws = {("t", 4): {"oracle": 0.95 + noise, "a": 0.6 + noise + rng.normal(0, 0.01, 500), "b": 0.3 + noise,
                        "c": 0.58 + noise + rng.normal(0, 0.01, 500), "d": 0.2 + noise}}
    f = L.families(summary, draws).iloc[0]
    assert (f.best_edit, f.best_finetune, f.best_prompt) == ("a", "c", "d")
    assert f.leader == "edit = finetune"  # 0.02 apart with paired noise 0.014: not separated
    draws[("t", 4)]["c"] = 0.5 + noise
    summary.loc[summary.method == "c", "primary"] = 0.5
    assert L.families(summary, draws).iloc[0].leader == "edit"
    assert "a 0.600 [0.560, 0.640]" in L.families_markdown(L.families(summary, draws))


def test_what_a_republish_changed_of_each_conclusion(tmp_path, capsys):
    """Each (task, budget) of an earlier families table against a newer one: held, flipped, became a tie, tie
    resolved, tie changed, or measured on one side only; from the CLI as a table with a count of each."""
    import pandas as pd

    from editbench.leaderboard.families import protocol_changes, read_families, verdict

    def fam(rows):
        return pd.DataFrame([{"task": t, "budget": n, "leader": lead, "best_edit": "rome", "edit_primary": e,
                              "best_finetune": "finetune_full", "finetune_primary": f, "best_prompt": None,
                              "prompt_primary": float("nan")} for t, n, lead, e, f in rows])

    before = fam([("a", 1, "edit", 0.6, 0.3), ("a", 16, "edit", 0.6, 0.5), ("a", 256, "edit = finetune", 0.6, 0.6),
                  ("b", 16, "edit = finetune = prompt", 0.4, 0.4), ("b", 64, "finetune", 0.2, 0.5),
                  ("c", 16, "edit", 0.5, 0.1)])
    after = fam([("a", 1, "edit", 0.61, 0.31), ("a", 16, "finetune = edit", 0.6, 0.58), ("a", 256, "finetune", 0.5, 0.7),
                 ("b", 16, "edit = finetune", 0.4, 0.4), ("b", 64, "edit", 0.6, 0.5), ("d", 16, "prompt", 0.1, 0.1)])
    c = protocol_changes(before, after).set_index(["task", "budget"]).verdict.to_dict()
    assert c == {("a", 1): "held", ("a", 16): "became a tie", ("a", 256): "tie resolved", ("b", 16): "tie changed",
                 ("b", 64): "flipped", ("c", 16): "not measured now", ("d", 16): "not measured before"}
    assert verdict({"edit", "finetune"}, {"finetune", "edit"}) == "tie held"
    assert verdict({"edit", "prompt"}, {"finetune"}) == "flipped"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "families.csv").write_text("# suite full; editbench 0.2.0\n" + before.to_csv(index=False))
    after.to_csv(tmp_path / "new.csv", index=False)
    assert len(read_families(tmp_path / "old")) == 6
    assert main(["leaderboard", "changes", "--before", str(tmp_path / "old"), "--after", str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "changes.md")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("7 conclusions: 1 held, 1 flipped, 1 became a tie, 1 tie resolved, 1 tie changed")
    assert "rome 0.600 -> rome 0.610" in out and (tmp_path / "changes.csv").is_file()
    c_row = next(line for line in out.splitlines() if line.startswith("| c "))  # measured before only
    assert "nan" not in c_row and "rome 0.500 -> -" in c_row and "| edit " in c_row and "| -  " in c_row
    assert main(["leaderboard", "changes", "--before", str(tmp_path / "nothing"), "--after", str(tmp_path / "new.csv")]) == 2
    assert "no families table there" in capsys.readouterr().err


def test_gate_passes_on_the_same_results_and_fails_on_a_drop(results, tmp_path, capsys):
    base = tmp_path / "baseline.json"
    assert main(["check", "--update", "--baseline", str(base), "--results", str(results)]) == 0
    assert main(["check", "--baseline", str(base), "--results", str(results)]) == 0
    assert main(["check", "--baseline", str(base), "--results", str(results)]) == 0
    assert "PASS" in capsys.readouterr().out

    worse = tmp_path / "worse"
    shutil.copytree(results, worse)
    target = next(p for p in worse.rglob("*.json") if "/oracle/" in p.as_posix() and "n4-s0" in p.name)
    rec = json.loads(target.read_text())
    b = json.loads(base.read_text())["cells"]["unlit_lamps/oracle/n4/s0" if "unlit" in str(target) else
                                               "second_order/oracle/n4/s0"]
    tol = L.tolerance("primary", b)
    rec["scores"]["primary"] -= tol + 0.05
    target.write_text(json.dumps(rec))
    assert main(["check", "--baseline", str(base), "--results", str(worse)]) == 1
    out = capsys.readouterr().out
    assert "oracle/n4/s0" in out and "primary" in out and "FAIL" in out

    # a small change within the tolerance passes
    rec["scores"]["primary"] += 0.05 + tol / 2
    target.write_text(json.dumps(rec))
    assert main(["check", "--baseline", str(base), "--results", str(worse)]) == 0

    next(p for p in worse.rglob("*.json") if "/steer/" in p.as_posix()).unlink()
    assert main(["check", "--baseline", str(base), "--results", str(worse)]) == 1
    assert "missing cell" in capsys.readouterr().out
    assert "31 of 32 cells (incomplete)" in L.meta_line(L.meta(L.load_frame(worse)[0]))
    assert "incomplete" not in L.meta_line(L.meta(L.load_frame(results)[0]))


def test_gate_and_builder_reject_bad_input(results, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["check", "--baseline", str(bad), "--results", str(results)]) == 2
    assert main(["check", "--baseline", str(tmp_path / "none.json"), "--results", str(results)]) == 2
    assert main(["leaderboard", "build", "--results", str(tmp_path / "empty"), "--out", str(tmp_path / "s")]) == 2
    assert main(["leaderboard", "build", "--results", str(results), "--out", str(tmp_path / "s"), "--budget", "7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("editbench: error:") for line in err)


def _chromium() -> tuple[str, str] | None:
    browser, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not browser or not driver:
        return None
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None
    return browser, driver


def test_html_page_opens_and_sorts_in_headless_chromium(results, tmp_path):
    found = _chromium()
    if found is None:
        pytest.skip("Debian's chromium and chromium-driver (and selenium) are needed; .ci/run installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    site = tmp_path / "site"
    L.publish(results, site, budget=4, n_boot=100)
    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=opts)
    try:
        driver.get((site / "index.html").as_uri())
        assert "editbench leaderboard" in driver.title
        table = driver.find_element(By.ID, "table-unlit_lamps")
        headers = table.find_elements(By.TAG_NAME, "th")
        col = [h.text for h in headers].index("primary")

        def column() -> list[float]:
            rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
            return [float(r.find_elements(By.TAG_NAME, "td")[col].get_attribute("data-value")) for r in rows]

        headers[col].click()
        asc = column()
        assert asc == sorted(asc) and len(asc) == len(METHODS) + 1
        headers[col].click()
        assert column() == sorted(asc, reverse=True)
        images = driver.find_elements(By.TAG_NAME, "img")
        assert images and all(driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
        shot = tmp_path / "page.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()


def test_results_carry_before_after_pictures(results):
    pngs = list(Path(results).rglob("*.png"))
    assert len(pngs) == 24  # one per ok cell
    from PIL import Image

    w, h = Image.open(pngs[0]).size
    assert (w, h) == (64 * harness.SAMPLE_OUTPUTS, 128)


def test_export_round_trips_the_tables(results, tmp_path):
    exported = tmp_path / "full.jsonl.gz"
    assert main(["leaderboard", "export", "--results", str(results), "--out", str(exported)]) == 0
    a = L.publish(results, tmp_path / "a", budget=4, n_boot=100)["table"]
    b = L.publish(exported, tmp_path / "b", budget=4, n_boot=100)["table"]
    assert a.equals(b)
    assert main(["leaderboard", "export", "--results", str(results), "--out", str(tmp_path / "x.json")]) == 2


def test_several_sources_in_one_leaderboard(results, tiny_gen, tmp_path, capsys):
    """A new method's results beside published ones: one table, page and families table; the method shows
    under its declared name; rows of another protocol (fewer seeds) make the heading say so, not "suite
    ..."; a cell two sources disagree on is an error naming it unless the later one is asked for."""
    mine = tmp_path / "mine.py"
    mine.write_text((ROOT / "examples/plugin/editbench_dim_lamps/__init__.py").read_text())
    rep = harness.run_suite(TASKS, [f"{mine}:DimLamps"], [2, 4], [0], tmp_path / "mine", tune_budgets=[4],
                            executor="inline", progress=False, checkpoints={"generator": tiny_gen},
                            **{**SMALL, "tune": 2})
    assert rep["cells"] == 6  # two tuning cells, four tuned ones
    exported = tmp_path / "published.jsonl.gz"
    assert main(["leaderboard", "export", "--results", str(results), "--out", str(exported)]) == 0
    assert L.meta(L.load_frame(exported)[0])["suite"] == "custom"
    assert main(["leaderboard", "build", "--results", str(exported), "--results", str(tmp_path / "mine"),
                 "--out", str(tmp_path / "site"), "--budget", "4"]) == 0
    payload = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    methods = {r["method"] for r in payload["rows"]}
    assert {"none", "oracle", "steer", "broken", "dim_lamps"} <= methods and not any(":" in m for m in methods)
    assert payload["meta"]["suite"].startswith("mixed")  # tuned rows beside rows of default configs
    assert {r["tuning"] for r in payload["rows"] if r["method"] == "dim_lamps"} == {"tuned"}
    assert {r["tuning"] for r in payload["rows"] if r["method"] == "steer"} == {"defaults"}
    assert re.search(r"\|\s*tuning\s*\|", (tmp_path / "site" / "leaderboard.md").read_text())
    assert {r["seeds"] for r in payload["rows"] if r["method"] == "dim_lamps"} == {"0"}
    assert "dim_lamps" in (tmp_path / "site" / "index.html").read_text()
    assert main(["leaderboard", "build", "--results", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    # the same cell, another result: never resolved silently
    other = tmp_path / "other"
    src = next(p for p in sorted(Path(results).rglob("*.json")) if json.loads(p.read_text())["status"] == "ok")
    rec = json.loads(src.read_text())
    rec["scores"]["primary"] += 0.25
    rec["timing"]["finished_at"] += 1
    (other / src.relative_to(results)).parent.mkdir(parents=True)
    (other / src.relative_to(results)).write_text(json.dumps(rec))
    capsys.readouterr()
    assert main(["leaderboard", "build", "--results", str(results), "--results", str(results), "--out",
                 str(tmp_path / "same"), "--budget", "4"]) == 0  # the same results twice: no conflict
    assert main(["leaderboard", "build", "--results", str(results), "--results", str(other), "--out",
                 str(tmp_path / "conflict"), "--budget", "4"]) == 2
    err = capsys.readouterr().err
    assert "1 cell(s) differ between sources" in err and rec["cell"]["method"] in err and "--on-conflict" in err
    assert main(["leaderboard", "build", "--results", str(results), "--results", str(other), "--out",
                 str(tmp_path / "conflict"), "--budget", "4", "--on-conflict", "latest"]) == 0
    capsys.readouterr()


def test_published_export_still_reads(tmp_path):
    """The committed full-suite export (both tracks, the evaluator axis) is read by this version of the store,
    and every published failure is a method that declined its evidence, not a crash."""
    df, per_image = L.load_frame(ROOT / "leaderboard" / "results" / "full.jsonl.gz")
    assert len(df) == 2312 and set(df.track) == {"image", "text"} and len(per_image) == (df.status == "ok").sum()
    # the text editors were re-run at the headline budget only; their other budgets await the next protocol
    editors = df[(df.track == "text") & (df.family == "edit")]
    assert set(editors.budget) == {16} and len(editors) == 200 and (editors.status == "ok").all()
    assert sorted(df[df.budget == 16].seed.unique()) == list(range(10)) and sorted(df[df.budget == 4].seed.unique()) == [0, 1, 2]
    assert L.meta(df)["suite"] == "full"  # the suite's shape, its ten seeds at n = 16 included
    assert set(df.evaluator) == {"proxy", "weak", "noisy"}
    assert set(df.method) == {"none", "oracle", "unit_clamp", "spatial_clamp", "steer", "rank_one", "finetune_full",
                              "finetune_lora", "finetune_reward", "prompt", "rome", "memit", "iti", "neuron_clamp"}
    failed = df[df.status != "ok"]
    assert (failed.budget <= 4).all() and failed.error.str.startswith("MethodError").all()
    # a table's head line says what a slice's test outputs are: images, descriptions, or outputs for both tracks
    words = {t: L.meta_line(L.meta(df[df.track == t])) for t in ("image", "text")}
    assert "32 test images per slice" in words["image"] and "32 test descriptions per slice" in words["text"]
    assert "32 test outputs per slice" in L.meta_line(L.meta(df))


def test_exact_comparison(results, tmp_path, capsys):
    assert main(["check", "--exact", "--baseline", str(results), "--results", str(results)]) == 0
    assert "IDENTICAL: 32 cells compared exactly" in capsys.readouterr().out
    other = tmp_path / "other"
    shutil.copytree(results, other)
    target = next(p for p in other.rglob("*.json") if "/steer/" in p.as_posix())
    rec = json.loads(target.read_text())
    rec["scores"]["per_image"]["locality"][0] += 1e-12  # the smallest change is a difference
    target.write_text(json.dumps(rec))
    assert main(["check", "--exact", "--baseline", str(results), "--results", str(other)]) == 1
    out = capsys.readouterr().out
    assert "per_image" in out and "DIFFERENT" in out


def test_baseline_takes_new_cells_without_rebasing_the_rest(results, tmp_path, capsys):
    base = tmp_path / "baseline.json"
    partial = tmp_path / "partial"
    shutil.copytree(results, partial)
    for p in partial.rglob("*.json"):
        if "/second_order/" in p.as_posix():
            p.unlink()
    assert main(["check", "--update", "--baseline", str(base), "--results", str(partial)]) == 0
    first = json.loads(base.read_text())["cells"]
    tampered = {**first, "unlit_lamps/oracle/n2/s0": {**first["unlit_lamps/oracle/n2/s0"], "primary": 0.5}}
    base.write_text(json.dumps({**json.loads(base.read_text()), "cells": tampered}))
    assert main(["check", "--update", "--new-only", "--baseline", str(base), "--results", str(results)]) == 0
    b = json.loads(base.read_text())
    assert b["cells"]["unlit_lamps/oracle/n2/s0"]["primary"] == 0.5  # kept as it was
    assert len(b["cells"]) == 32 and all(c.startswith("second_order/") for c in b["additions"][0]["cells"])
    capsys.readouterr()


def test_detectable_difference_and_power_table():
    import numpy as np
    import pandas as pd

    from editbench.core.stats import detectable_difference
    from editbench.leaderboard.families import families
    from editbench.leaderboard.power import power_markdown, power_table, seeds_for

    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 0.2, 20000)
    b = a + rng.normal(0.0, 0.05, 20000)  # the pair's differences vary by 0.05
    assert abs(detectable_difference(a, b) - 2.8016 * 0.05) < 0.003
    assert np.isnan(detectable_difference([0.1], [0.2]))
    c = a + rng.normal(0.0, 0.10, 20000)
    summary = pd.DataFrame([
        {"task": "t", "budget": 16, "track": "image", "family": f, "method": m, "primary": p, "ci_lo": p - w, "ci_hi": p + w,
         "seeds": "0,1"} for m, f, p, w in (("x", "edit", 0.5, 0.05), ("y", "finetune", 0.4, 0.2),
                                             ("z", "prompt", 0.3, 0.1), ("oracle", "reference", 0.9, 0.4))])
    draws = {("t", 16): {"x": a, "y": b, "z": c, "oracle": a * 0}}
    t = power_table(summary, draws)
    r = t.iloc[0]
    assert r.methods == 3 and r.widest_method == "y" and abs(r.widest_width - 0.4) < 1e-12  # references left out
    assert abs(r.mdd_max - 2.8016 * np.std(b - c)) < 0.01 and r.mdd_median < r.mdd_max
    assert "| t " in power_markdown(t)
    assert r.headline_method is None and r.seeds_for_target is None  # no families table: no headline cells
    r = power_table(summary, draws, families(summary, draws)).iloc[0]
    assert r.headline_method == "y" and r.seeds_for_target == 32  # 0.4 wide at 2 seeds: 2 * 4 ** 2 seeds for 0.1
    summary.loc[summary.method == "y", "family"] = "edit"  # y is no longer a family's best: x leads the edits
    r = power_table(summary, draws, families(summary, draws)).iloc[0]
    assert r.headline_method == "z" and abs(r.headline_width - 0.2) < 1e-12 and r.seeds_for_target == 8
    assert seeds_for(0.1, 3) == 3 and seeds_for(0.05, 3) == 3 and seeds_for(0.2, 3) == 12


def _shipped_hashes() -> dict[str, str]:
    """Every checkpoint editbench ships, by the hash its results and cards name."""
    from editbench.experiments.activations import EXPERIMENT_ASSETS
    from editbench.results import provenance
    from editbench.tracks import get_track
    from editbench.tracks.text.checkpoints import lm_hash

    shipped = {h: role for t in ("image", "text") for role, h in provenance(get_track(t), {})["checkpoints"].items()}
    shipped.update({lm_hash(d / "lm"): f"experiments/{d.name}" for d in EXPERIMENT_ASSETS.iterdir() if d.is_dir()})
    return shipped


def test_published_tables_name_only_the_shipped_checkpoints():
    """The README and every published table name the checkpoints they measured, and those are the shipped ones:
    a retrained model without a re-run of the published suites fails here."""
    shipped = _shipped_hashes()
    pages = [ROOT / "README.md", *sorted((ROOT / "leaderboard").glob("*/*.md"))]
    named = {(page.relative_to(ROOT).as_posix(), h) for page in pages
             for h in re.findall(r"(?<![0-9a-f])([0-9a-f]{16})(?![0-9a-f])", page.read_text())}
    measured = {h for h, role in shipped.items() if role in ("generator", "meter", "judge", "lm")}
    readme = {h for page, h in named if page == "README.md"}
    assert measured <= readme, f"the README should name the checkpoints its tables measured: {measured - readme}"
    stale = sorted((page, h) for page, h in named if h not in shipped)
    assert not stale, f"published pages name checkpoints that are not shipped: {stale}"


def test_published_export_measured_the_shipped_checkpoints():
    import gzip

    shipped = _shipped_hashes()
    with gzip.open(ROOT / "leaderboard" / "results" / "full.jsonl.gz", "rt") as f:
        used = {h for line in f for h in json.loads(line)["provenance"]["checkpoints"].values()}
    assert used and used <= set(shipped), f"the published export measured unshipped checkpoints: {used - set(shipped)}"


def test_meta_names_the_extra_seeds_of_a_budget(results, tiny_gen, tmp_path):
    """Results with more seeds at one budget (the full suite's headline budget) say so in every table's meta line,
    and the summary pools each budget's own seeds."""
    more = tmp_path / "more"
    shutil.copytree(results, more)
    cells = harness.make_grid(TASKS, METHODS, [4], [2, 3, 4, 5], checkpoints={"generator": tiny_gen}, **SMALL)
    harness.run_grid(cells, more, executor="inline", progress=False)
    df = L.load_frame(more)[0]
    m = L.meta(df)
    assert m["seeds"] == [0, 1] and m["more_seeds"] == {4: [2, 3, 4, 5]} and m["suite"] == "custom"
    assert "seeds [0, 1], at n = 4 also seeds [2, 3, 4, 5]" in L.meta_line(m)
    assert "incomplete" in L.meta_line(m)  # the broken method ran on seeds 0 and 1 only
    assert L.meta(L.load_frame(results)[0])["more_seeds"] == {}
    s = L.summarize(df, L.load_frame(more)[1], n_boot=200).set_index(["task", "method", "budget"])
    assert s.loc[("unlit_lamps", "steer", 4), "seeds"] == "0,1,2,3,4,5"
    assert s.loc[("unlit_lamps", "steer", 2), "seeds"] == "0,1"


def test_readme_leaderboard_tables_are_the_published_ones():
    """Every row of a table in the README's leaderboard section (families, cross-track, evaluators, headline and
    power tables) is a row of a published table in leaderboard/full/: the README cannot drift from the export."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Leaderboard\n"):readme.index("\n### Speed")]
    published = {line.rstrip() for p in (ROOT / "leaderboard" / "full").glob("*.md") for line in p.read_text().splitlines()}
    rows = [line.rstrip() for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert len(rows) > 100
    missing = [r[:100] for r in rows if r not in published]
    assert not missing, f"README leaderboard rows not in leaderboard/full/*.md: {missing[:5]}"


def test_the_republish_script_runs_every_step_with_commands_editbench_has(tmp_path):
    """``leaderboard/republish.sh`` with a stand-in ``editbench`` that records its arguments: every step runs, in
    order (the regret probes for each task's family bests at n = 256, read from the families table), and every call
    parses as this version's command line, so a renamed command or option fails here rather than hours into a run."""
    import os
    import subprocess
    import sys

    from editbench.cli.main import build_parser

    repo = Path(__file__).resolve().parents[1]
    if subprocess.run(["git", "-C", str(repo), "cat-file", "-e", "7cd9f3e:leaderboard/full/families.csv"],
                      capture_output=True).returncode:
        pytest.skip("the 0.2 tables' commit is not in this checkout (a shallow clone)")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "editbench").write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, sys
        from pathlib import Path
        argv = sys.argv[1:]
        with open(os.environ["CALLS"], "a") as f:
            f.write(json.dumps(argv) + "\\n")
        if argv[:2] == ["leaderboard", "build"] and "--budget" in argv:  # the families table the probes read
            out = Path(argv[argv.index("--out") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "families.csv").write_text(
                "# suite full\\ntask,budget,leader,best_edit,best_finetune,best_prompt\\n"
                "unlit_lamps,256,edit,steer,finetune_full,prompt\\nunlit_lamps,16,edit,rome,finetune_lora,\\n"
                "text/unlit_lamps,256,finetune,rome,finetune_local,\\n")
        """))
    (bin_ / "editbench").chmod(0o755)
    results = tmp_path / "r"
    (results / "unlit_lamps").mkdir(parents=True)
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}", "CALLS": str(tmp_path / "calls.jsonl")}
    done = subprocess.run(["bash", str(repo / "leaderboard" / "republish.sh"), str(results), "--device", "cpu"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines() if line.startswith("== step")] == \
        [f"== step {k}" for k in range(1, 7)]
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    runs = [c for c in calls if c[0] == "run"]
    assert [c[c.index("--budgets") + 1] if "--budgets" in c else None for c in runs[:4]] == ["16", "1", "256", None]
    probes = [(c[c.index("--tasks") + 1], c[c.index("--methods") + 1]) for c in runs if "--regret" in c]
    assert probes == [("unlit_lamps", "finetune_full,prompt,steer"), ("text/unlit_lamps", "finetune_local,rome")]
    assert all("--device" in c for c in runs) and any(c[:2] == ["experiment", "compute"] for c in calls)
    assert any(c[:2] == ["leaderboard", "changes"] for c in calls)
    parser = build_parser()
    for c in calls:
        parser.parse_args(c)  # raises (a one-line usage error) on an unknown command or option
