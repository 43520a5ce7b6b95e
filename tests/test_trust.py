"""The judge and the proxy: a judge that counts beyond the world's support, every score read by it with the
proxy's reading and the gap beside it, evaluators of graded quality, and the trust tables."""

import json
import math
from pathlib import Path

import pytest
import torch

from editbench import harness
from editbench import leaderboard as L
from editbench.cli import main
from editbench.core import MethodError
from editbench.core.stats import output_gap, widen

SMALL = {"n_eval": 8, "n_dev": 8, "n_boot": 50, "tune": 1}


# ---- the world beyond its support, and a meter with more slots ------------------------------------------
def test_beyond_support_adds_lamps_the_world_never_places(world):
    from editbench.world.scene import beyond_support

    scene = world.scenes(200, 3)
    more = beyond_support(scene, 3, 1.0, 5)
    assert more.lamp_present.shape == (200, 5)
    assert int(more.n_lamps.max()) == 5 and (more.n_lamps > 3).float().mean() > 0.3
    assert torch.equal(more.n_lamps >= scene.n_lamps, torch.ones(200, dtype=torch.bool))
    for b in range(200):  # present lamps first, left to right, never two within 0.07 of each other
        n = int(more.n_lamps[b])
        assert more.lamp_present[b, :n].all() and not more.lamp_present[b, n:].any()
        x = more.lamp_x[b, :n]
        assert torch.all(x[1:] > x[:-1]) and (n < 2 or float((x[1:] - x[:-1]).min()) >= 0.07)
        assert not (more.lamp_on[b] & ~more.lamp_present[b]).any()
    same = beyond_support(scene, 3, 0.0, 5)
    assert torch.equal(same.n_lamps, scene.n_lamps) and torch.equal(same.lamp_x[:, :3], scene.lamp_x)
    assert torch.equal(beyond_support(scene, 3, 1.0, 5).lamp_x, more.lamp_x)  # seeded
    images, truth = world.render(beyond_support(world.scenes(4, 3), 3, 1.0, 5))
    assert truth.light1.shape[1] == 5 and torch.isfinite(images).all()


def test_a_meter_with_five_slots_reads_and_splits_light():
    from editbench.tracks.image.meter import JUDGE_CONFIG, LampMeter

    m = LampMeter(**JUDGE_CONFIG)
    r = m.read(torch.rand(2, 3, 64, 64))
    assert r.present.shape == (2, 5) and r.per_lamp_light().shape == (2, 5, 64, 64)


# ---- the shipped judge -----------------------------------------------------------------------------------
def _report():
    from editbench.tracks.image import ASSETS

    return json.loads((ASSETS / "report.json").read_text())


def test_shipped_judge_reproduces_its_card_and_counts_beyond_the_world(shipped):
    from editbench.tracks.image.report import beyond_support_figures, meter_figures

    card = _report()["judge"]
    judge = shipped.models["judge"]
    f = meter_figures(judge, n=150, seed=2**41 + 17)
    for cond in ("clean", "degraded"):
        for k, v in card[cond].items():
            assert abs(f[cond][k] - v) <= (0.04 if k != "ambient_mae" else 0.01), (cond, k, f[cond][k], v)
    b = beyond_support_figures(judge, n=150, seed=2**41 + 17)
    assert b["rooms"] > 30 and b["count_exact"] >= 0.85
    assert all(g["passed"] for g in _report()["gates"] if g["name"].startswith("judge"))
    assert 0 < card["reader_floor"] < 0.25 and card["agreement_samples"]["n"] == _report()["n"]


def test_judge_is_not_the_proxy(shipped):
    from editbench.tracks.image.checkpoints import checkpoint_hash

    m = shipped.models
    assert m["judge"].config.slots == 5 and m["meter"].config.slots == 3
    assert tuple(m["judge"].config.channels) != tuple(m["meter"].config.channels)
    assert len({checkpoint_hash(None, k) for k in ("meter", "judge", "weak")}) == 3


# ---- evaluators of graded quality ------------------------------------------------------------------------
def test_evaluators_are_graded_and_fixed(shipped, world):
    track = shipped.track
    assert track.evaluators[0] == "proxy" and set(track.evaluators) == {"proxy", "weak", "noisy"}
    with pytest.raises(MethodError, match="unknown evaluator"):
        track.evaluator(shipped.models, "oracle")
    images = world.sample(16, 2**41 + 3).images
    noisy = track.evaluator(shipped.models, "noisy")
    a, b = noisy.read(images), noisy.read(images)
    assert torch.equal(a.on, b.on) and torch.equal(a.light1, b.light1)  # an image always reads the same way
    proxy = track.evaluator(shipped.models, "proxy").read(images)
    assert not torch.equal(a.light1, proxy.light1)
    out = noisy(images)  # the differentiable form carries the same noise
    assert torch.allclose(out["light1"].clamp_min(0), a.light1, atol=1e-5)
    figures = _report()["evaluators"]
    assert figures["proxy"]["on_off_accuracy"] > figures["noisy"]["on_off_accuracy"] > 0.5
    assert figures["proxy"]["on_off_accuracy"] > figures["weak"]["on_off_accuracy"]


def test_text_evaluators_misread_at_their_rates(shipped_text):
    from editbench.tracks.text.track import EVALUATORS
    from editbench.world import World
    from editbench.world.descriptions import describe

    texts = describe(World().scenes(400, 5))
    truth = [f for f in shipped_text.track._reader("judge")(texts)]
    for name, rate in EVALUATORS.items():
        read = shipped_text.track.evaluator(shipped_text.models, name)(texts)
        lamps = [(t.lit, r.lit) for f, g in zip(truth, read, strict=True) for t, r in zip(f.lamps, g.lamps, strict=True)]
        wrong = sum(a != b for a, b in lamps) / len(lamps)
        assert abs(wrong - rate) < 0.05, (name, wrong)


def test_a_cells_evaluator_is_part_of_its_key_and_reaches_its_evidence(shipped):
    from editbench.benchmarks import EVIDENCE_SEED
    from editbench.world.requests import EditRequest

    a = harness.Cell("unlit_lamps", "unit_clamp", 4, 0)
    b = harness.Cell("unlit_lamps", "unit_clamp", 4, 0, evaluator="noisy")
    assert a.key({}) != b.key({})
    from editbench.core import Budget
    from editbench.world import World

    request, budget = EditRequest.named("lamps_off"), Budget(4, 0, seed=EVIDENCE_SEED)
    ev = {e: shipped.track.build_evidence("samples", shipped.models, request, budget, World(), False, e)
          for e in ("proxy", "noisy")}
    assert torch.equal(ev["proxy"].outputs, ev["noisy"].outputs)
    assert not torch.equal(ev["proxy"].readings.light1, ev["noisy"].readings.light1)


# ---- every score is the judge's, with the proxy's beside it ---------------------------------------------
def test_output_gap_is_paired_and_widen_keeps_a_floor():
    g = torch.Generator().manual_seed(0)
    a = {"x": torch.rand(64, generator=g), "y": torch.rand(64, generator=g)}
    point, lo, hi = output_gap(a, a, n_boot=200)
    assert point == lo == hi == 0  # the same outputs read the same way: no gap, no spread
    up = {k: (v + 0.2).clamp(max=1) for k, v in a.items()}
    point, lo, hi = output_gap(up, a, n_boot=200)
    assert 0 < lo <= point <= hi
    assert widen(0.5, 0.45, 0.55, 0.1) == (0.4, 0.6)
    assert widen(0.5, 0.3, 0.7, 0.1) == (0.3, 0.7)
    assert widen(0.95, 0.9, 0.97, 0.1) == (0.85, 1.0)
    assert widen(0.5, 0.45, 0.55, None) == (0.45, 0.55)


def test_cells_carry_judge_proxy_and_gap(shipped, shipped_text):
    from editbench.harness.cell import run_cell

    for session, task in ((shipped, "unlit_lamps"), (shipped_text, "text/unlit_lamps")):
        kw = SMALL if session.track.name == "image" else {**SMALL, "n_eval": 32}  # text: enough lamps to misread
        out = run_cell(harness.Cell(task, "oracle", 4, 0, **kw), session)
        sc = out["scores"]
        assert sc["primary"] > 0.8 and sc["proxy"]["primary"] > 0.8
        lo, hi = sc["gap"]["ci"]
        assert lo <= sc["gap"]["point"] <= hi
        assert math.isclose(sc["gap"]["point"], sc["proxy"]["primary"] - sc["primary"], abs_tol=1e-12)
        floor = session.track.reader_floor({})
        assert sc["reader_floor"] == floor
        if session.track.name == "text":  # the exact parser: no floor, the bootstrap's interval
            assert floor == 0 and sc["ci"] == sc["ci_sampling"]
            assert sc["proxy"]["primary"] < sc["primary"]  # the proxy misreads some of the oracle's unlit lamps
        else:
            assert sc["ci"][1] - sc["ci"][0] >= min(2 * floor, 1 - sc["primary"] + floor) - 1e-9


def test_leaderboard_flags_a_gap_the_judge_does_not_confirm(tmp_path, tiny_gen):
    cells = harness.make_grid(["unlit_lamps"], ["none", "oracle", "steer"], [2], [0, 1],
                              checkpoints={"generator": tiny_gen}, **SMALL)
    harness.run_grid(cells, tmp_path / "r", executor="inline", progress=False)
    target = next(p for p in (tmp_path / "r").rglob("*.json") if "/steer/" in p.as_posix())
    for path in (tmp_path / "r").rglob("*.json"):  # the proxy reads the steer cells as a full success
        if "/steer/" in path.as_posix():
            rec = json.loads(path.read_text())
            rec["scores"]["proxy"]["per_image"] = {k: [1.0] * len(v) for k, v in rec["scores"]["per_image"].items()}
            path.write_text(json.dumps(rec))
    assert target.exists()
    df, per_image = L.load_frame(tmp_path / "r")
    s = L.summarize(df, per_image, n_boot=200).set_index("method")
    assert s.loc["steer", "proxy_primary"] == 1.0 and s.loc["steer", "gap_flag"]
    assert not s.loc["oracle", "gap_flag"] or s.loc["oracle", "gap"] > 0
    assert main(["leaderboard", "build", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "site")]) == 0
    md = (tmp_path / "site" / "leaderboard.md").read_text()
    assert "proxy-judge gap" in md and " !" in md
    assert 'class="flag"' in (tmp_path / "site" / "index.html").read_text()


# ---- the trust study -------------------------------------------------------------------------------------
def test_trust_grid_runs_each_reading_method_under_every_evaluator():
    from editbench.experiments.trust import GRIDS, evaluator_cells, overoptimisation_cells, reads_evaluator

    g = GRIDS["default"]
    over = overoptimisation_cells(g)
    assert {c.evaluator_calls for c in over} == set(g.calls) and {c.method for c in over} == {"finetune_reward"}
    cells = evaluator_cells(g)
    by = {}
    for c in cells:
        by.setdefault((c.task, c.method), set()).add(c.evaluator)
    assert by[("unlit_lamps", "finetune_reward")] == by[("text/unlit_lamps", "rome")] == set(g.evaluators)
    assert by[("unlit_lamps", "finetune_full")] == by[("text/unlit_lamps", "oracle")] == {"proxy"}
    assert reads_evaluator("unit_clamp") and reads_evaluator("prompt") and not reads_evaluator("finetune_lora")
    assert len({c.key({}) for c in over + cells}) == len(over + cells)


@pytest.mark.slow
def test_trust_tables_from_cells(tmp_path, tiny_gen):
    cells = [harness.Cell("unlit_lamps", "finetune_reward", 2, s, config={"call_share": 1.0}, evaluator_calls=calls,
                          checkpoints={"generator": tiny_gen}, **SMALL) for calls in (16, 48) for s in (0, 1)]
    cells += [harness.Cell("unlit_lamps", m, 2, s, evaluator=e, checkpoints={"generator": tiny_gen}, **SMALL)
              for m in ("steer", "finetune_reward", "prompt") for e in ("proxy", "noisy") for s in (0, 1)]
    cells += [harness.Cell("unlit_lamps", "oracle", 2, s, checkpoints={"generator": tiny_gen}, **SMALL) for s in (0, 1)]
    rep = harness.run_grid(cells, tmp_path / "cells", executor="inline", progress=False)
    assert rep["failed"] == 0
    res = L.write_trust(tmp_path / "cells", tmp_path)
    over = res["overoptimisation"]
    assert list(over.evaluator_budget) == [16, 48]
    assert (over.calls_spent <= over.evaluator_budget).all() and over.calls_spent.iloc[1] > over.calls_spent.iloc[0]
    ev = res["evaluators"]
    assert list(ev.evaluator) == ["proxy", "noisy"] and set(ev.edit_method) == {"steer"}
    assert ev.edit_vs_reward.isin(["edit better", "reward finetuning better", "tied"]).all()
    for name in ("overoptimisation.md", "evaluators.md", "overoptimisation.csv", "evaluators.csv", "trust.json",
                 "overoptimisation.png", "evaluators.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    # the main leaderboard keeps the proxy's cells only; the page gets the trust section
    assert main(["leaderboard", "build", "--results", str(tmp_path / "cells"), "--out", str(tmp_path / "site"),
                 "--trust", str(tmp_path)]) == 0
    page = (tmp_path / "site" / "index.html").read_text()
    assert "id='trust'" in page and "trust_overoptimisation.png" in page
    assert main(["leaderboard", "build", "--results", str(tmp_path / "cells"), "--out", str(tmp_path / "x"),
                 "--trust", str(tmp_path / "nowhere")]) == 2


def test_gate_ids_name_the_trust_axes():
    from editbench.leaderboard.gate import cell_id

    row = {"task": "t", "method": "m", "budget": 16, "seed": 0, "evaluator": "proxy", "evaluator_budget": 512}
    assert cell_id(row) == "t/m/n16/s0"
    assert cell_id({**row, "evaluator": "weak", "evaluator_budget": 8192}) == "t/m/n16/s0/eweak/c8192"


def test_readme_method_table_says_evidence_and_evaluator():
    from editbench.methods import METHODS, is_builtin, resolve

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Methods", 1)[1].split("\n## ", 1)[0]
    for name in (m for m in METHODS.names() if is_builtin(m)):
        cls = resolve(name)
        line = next((ln for ln in section.splitlines() if ln.startswith(f"| `{name}`")), None)
        assert line is not None, name
        assert cls.consumes in line, (name, line)
        assert ("proxy" in line) == (cls.uses_evaluator or cls.consumes == "samples"), (name, line)


def test_cli_trains_and_ships_a_judge(tmp_path, capsys):
    assert main(["train", "judge", "--out", str(tmp_path / "run"), "--steps", "2", "--batch-size", "4",
                 "--ckpt-every", "1"]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["args"]["seed"] == 7 and run["args"]["extra_lamps"] > 0 and run["args"]["meter_config"]["slots"] == 5
    assets = tmp_path / "assets"
    assert main(["models", "ship", "judge", "--run", str(tmp_path / "run"), "--assets", str(assets)]) == 0
    from editbench.tracks.image import load_meter

    assert load_meter(assets / "judge").config.slots == 5
    assert main(["models", "ship", "judge", "--run", str(tmp_path / "nowhere"), "--assets", str(assets)]) == 2


def test_suite_runs_evaluator_calling_methods_under_each_evaluator(tiny_gen, tmp_path):
    kw = {"n_eval": 8, "n_dev": 8, "n_boot": 50, "checkpoints": {"generator": tiny_gen}}
    rep = harness.run_suite(["unlit_lamps"], ["none", "steer", "prompt"], [1, 2], [0], tmp_path / "r",
                            executor="inline", progress=False, evaluators=("proxy", "noisy"), evaluator_budgets=(2,), **kw)
    # prompt calls an evaluator: once more under the noisy one, at the evaluator table's budget only
    assert rep["cells"] == 7 and rep["failed"] == 0
    df, _ = L.load_frame(tmp_path / "r")
    prompt = df[df.method == "prompt"]
    assert sorted(prompt[prompt.budget == 2].evaluator) == ["noisy", "proxy"]
    assert list(prompt[prompt.budget == 1].evaluator) == ["proxy"]
    assert main(["leaderboard", "build", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "site")]) == 0
    md = (tmp_path / "site" / "leaderboard.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| unlit_lamps ") and "| prompt " in line]
    assert len(rows) == 1  # the leaderboard's methods see the proxy
    assert "noisy" in (tmp_path / "site" / "evaluators.md").read_text()
    assert "id='evaluators'" in (tmp_path / "site" / "index.html").read_text()


@pytest.mark.slow
def test_evaluator_table_reads_a_tuned_suites_cells_under_each_evaluator(tiny_gen, tmp_path):
    """In a tuned suite every cell but the tuning one carries the tuned config: reward finetuning's row under
    each evaluator pools that evaluator's own cells (not the over-optimisation curve's, not the proxy's)."""
    from editbench.leaderboard.aggregate import summarize
    from editbench.leaderboard.trust import evaluator_table

    kw = {"n_eval": 8, "n_dev": 8, "n_boot": 50, "checkpoints": {"generator": tiny_gen}}
    rep = harness.run_suite(["unlit_lamps"], ["steer", "finetune_reward"], [2], [0, 1], tmp_path / "r", tune=2,
                            executor="inline", progress=False, evaluators=("proxy", "noisy"), **kw)
    # steer calls no evaluator: once, under the proxy; one tuning cell per method, on the tuning seed
    assert rep["cells"] == 8 and rep["failed"] == 0
    df, per_image = L.load_frame(tmp_path / "r")
    ev = evaluator_table(df, per_image, n_boot=50).set_index("evaluator")
    reward = df[df.method == "finetune_reward"]
    assert reward.tuned_on.notna().sum() == 4  # the tuning cell (seed 100) chose the config the other four carry
    for e in ("proxy", "noisy"):
        own = summarize(reward[(reward.evaluator == e) & (reward.role == "scored")], per_image, n_boot=50)
        assert len(reward[(reward.evaluator == e) & (reward.role == "scored")]) == 2
        assert ev.loc[e, "finetune_reward_primary"] == pytest.approx(float(own.primary.iloc[0]), abs=1e-12)


def test_cli_shows_both_readers_side_by_side(tmp_path):
    assert main(["models", "show-meter", "--reader", "both", "--samples", "--n", "3", "--out", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "b.png").stat().st_size > 0
