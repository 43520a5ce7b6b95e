"""Activation reporting (seed 004) on a tiny lamp LM: labels from the frozen base, a finetuned reporter, its
measures, and a grid that runs on the harness's executors and resumes."""

import json

import torch

from editbench.cli import main
from editbench.experiments import activations as act
from editbench.tracks.text import load_lm


def test_labels_are_deciles_of_the_base_and_sentences_end_at_a_full_stop(tiny_lm):
    lm = load_lm(tiny_lm)
    s = act.sentences(lm, 64, seed=3)
    period = lm.tokenizer.get_vocab()["."]
    assert torch.all(s.ids[torch.arange(64), s.stop] == period) and torch.all(s.mask.sum(1) == s.stop + 1)
    calib = act.calibration(lm, "transformer.h.0")[:, 0]
    bins = act.to_bins(calib, act.edges(calib))
    shares = torch.bincount(bins, minlength=10).float() / len(bins)
    assert bins.min() >= 0 and bins.max() <= 9 and torch.all((shares - 0.1).abs() < 0.02)
    assert act.depth("transformer.drop") == 0 and act.depth("transformer.h.0.mlp.act") == 0.5


def test_a_point_trains_a_reporter_without_touching_the_base(tiny_lm):
    lm = load_lm(tiny_lm)
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    rec = act.run_point(lm, act.Point("transformer.h.0", 3, 64, "lora", steps=2))
    assert all(torch.equal(before[k], v) for k, v in lm.state_dict().items())
    assert 0 <= rec["accuracy"] <= 1 and 0 <= rec["mae"] <= 9 and 0 <= rec["probe_ceiling"] <= 1
    assert rec["accuracy_ci"][0] <= rec["accuracy"] <= rec["accuracy_ci"][1]
    assert 0 <= rec["drift"] <= 1 and abs(sum(rec["label_share"]) - 1) < 1e-5
    # LoRA trains adapters on the blocks and the new tokens' embeddings only: the embeddings of a sentence cannot
    # drift; full finetuning trains them too
    lora = act.run_point(lm, act.Point("transformer.drop", 3, 64, "lora", steps=2))
    full = act.run_point(lm, act.Point("transformer.drop", 3, 64, "full", steps=2))
    assert lora["drift"] == 0.0 and full["drift"] > 0.0


def _grid(**kw):
    return act.Grid((act.Part("depth", ("base",), ("transformer.h.0",), (32,), **kw),), steps=2)


def test_the_grid_resumes_and_writes_its_tables(tiny_lm, tmp_path, monkeypatch):
    monkeypatch.setitem(act.GRIDS, "quick", _grid())
    assert main(["experiment", "activations", "--quick", "--lm", tiny_lm, "--out", str(tmp_path),
                 "--executor", "inline"]) == 0
    files = list((tmp_path / "points").rglob("*.json"))
    assert len(files) == 1
    rec = json.loads(files[0].read_text())
    assert rec["status"] == "ok" and rec["provenance"]["checkpoints"]["lm"] and rec["provenance"]["versions"]
    stamp = files[0].stat().st_mtime_ns
    assert main(["experiment", "activations", "--quick", "--lm", tiny_lm, "--out", str(tmp_path),
                 "--executor", "inline"]) == 0
    assert files[0].stat().st_mtime_ns == stamp  # done points are not recomputed
    data = json.loads((tmp_path / "activations.json").read_text())
    assert data["rows"][0]["layer"] == "transformer.h.0" and data["answer"][0]["size"] == "base"
    assert (tmp_path / "accuracy_by_depth.png").exists() and (tmp_path / "accuracy_by_examples.png").exists()
    assert "chance 0.10" in (tmp_path / "activations.md").read_text()
    # the leaderboard page's section: the answer per model size and both plots
    from editbench.leaderboard.page import activations_section

    (tmp_path / "site").mkdir()
    html = activations_section(tmp_path, tmp_path / "site")
    assert "id='activation-reporting'" in html and "<td>base</td>" in html
    assert (tmp_path / "site" / "activations_accuracy_by_depth.png").exists()
    assert activations_section(tmp_path / "site", tmp_path / "site") == ""  # no study there: no section
    assert main(["leaderboard", "build", "--results", str(tmp_path), "--out", str(tmp_path / "x"), "--activations",
                 str(tmp_path / "site")]) == 2


def test_points_give_the_same_files_inline_and_in_worker_processes(tiny_lm, tmp_path):
    grid = act.Grid((act.Part("depth", ("base",), ("transformer.h.0", "transformer.drop"), (32,)),), steps=2)
    inline = act.run_grid(tmp_path / "inline", grid, {"base": tiny_lm}, executor="inline", progress=False)
    procs = act.run_grid(tmp_path / "process", grid, {"base": tiny_lm}, executor="process", workers=2, progress=False)
    assert len(inline["records"]) == len(procs["records"]) == 2 and not procs["failed"]
    for a, b in zip(inline["records"], procs["records"], strict=True):
        drop = ("seconds", "provenance")
        assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}


def test_a_failing_point_is_recorded_and_redone_on_the_next_run(tiny_lm, tmp_path, monkeypatch):
    grid = _grid(modes=("sideways",))  # not a finetuning mode: the point fails
    rep = act.run_grid(tmp_path, grid, {"base": tiny_lm}, executor="inline", progress=False)
    assert not rep["records"] and len(rep["failed"]) == 1 and "mode must be" in rep["failed"][0]["error"]
    again = act.run_grid(tmp_path, grid, {"base": tiny_lm}, executor="inline", progress=False)
    assert again["ran"] == 1  # a failed point is not kept as done
    monkeypatch.setitem(act.GRIDS, "quick", grid)
    assert main(["experiment", "activations", "--quick", "--lm", tiny_lm, "--out", str(tmp_path),
                 "--executor", "inline"]) == 1


def test_unknown_models_are_usage_errors(tiny_lm, tmp_path, capsys):
    assert main(["experiment", "activations", "--quick", "--model", "huge=x", "--out", str(tmp_path)]) == 2
    assert main(["experiment", "activations", "--quick", "--model", "nofolder", "--out", str(tmp_path)]) == 2
    assert main(["experiment", "activations", "--quick", "--lm", str(tmp_path / "missing"), "--out",
                 str(tmp_path)]) == 2


def test_the_cross_model_control_reports_another_models_neuron(tiny_lm, tmp_path):
    from editbench.tracks.text.train import train_lm

    other = train_lm(tmp_path / "other", steps=3, batch_size=8, n_layer=1, n_embd=32, n_head=2, warmup=1, seed=1,
                     progress=False) / "lm"
    lm, control = load_lm(tiny_lm), load_lm(str(other))
    assert not torch.equal(lm.transformer.wte.weight, control.transformer.wte.weight)
    p = act.Point("transformer.h.0", 3, 64, "lora", steps=2, reporter=str(other))
    rec = act.run_point(lm, p, control)
    own = act.run_point(lm, act.Point("transformer.h.0", 3, 64, "lora", steps=2))
    assert rec["label_share"] == own["label_share"]  # the same labels: the first model's neuron
    assert rec["drift"] is None and rec["causal_shift"] is None and own["drift"] is not None
    grid = _grid(control=True)
    points = act.grid_points(grid, {"base": lm}, {"base": tiny_lm, "control": str(other)})
    assert [p.reporter for p in points] == [None, str(other)]


def test_the_published_study_measured_the_shipped_models():
    """The study in leaderboard/activations (and the README's answer) names the checkpoints it measured, and
    they are the shipped ones."""
    from pathlib import Path

    from editbench.tracks.text.checkpoints import lm_hash

    root = Path(__file__).resolve().parents[1]
    data = json.loads((root / "leaderboard" / "activations" / "activations.json").read_text())
    readme = (root / "README.md").read_text()
    shipped = {name: lm_hash(folder) for name, folder in act.MODELS.items()}
    sizes = {r["size"] for r in data["rows"]}
    assert sizes == set(act.SIZES)
    for r in data["rows"]:
        assert r["lm"] == shipped[r["size"]]
        assert r["reporter_lm"] == (shipped["control"] if r["reporter"] == "control" else None)
    for h in shipped.values():
        assert h in readme


def test_an_ablation_scores_rows_on_the_dev_split_of_unscored_seeds_and_resumes(tmp_path, monkeypatch, capsys):
    from editbench.experiments import ablation as ab

    assert not set(ab.SEEDS) & set(range(10))  # never a seed the suites score
    monkeypatch.setitem(ab.ROWS, "steer", [("layer 1, 2 sd", {"layer": "transformer.h.1", "strength": 2.0}),
                                           ("layer 1, 0 sd", {"layer": "transformer.h.1", "strength": 0.0})])
    study = ab.Ablation("steer", seeds=(10,), n_dev=8)
    recs = ab.run_ablation(study, tmp_path)
    assert [r["row"] for r in recs] == ["layer 1, 2 sd", "layer 1, 0 sd"]
    assert recs[1]["mean"] == 0.0 and recs[0]["mean"] > 0  # no push moves nothing; the default push does
    assert "| layer 1, 2 sd |" in (tmp_path / "steer.md").read_text()
    monkeypatch.setattr(ab, "run_row", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    assert ab.run_ablation(study, tmp_path) == recs  # resumed from steer.jsonl
    assert main(["experiment", "ablation", "--method", "nonsense", "--out", str(tmp_path)]) == 2
    assert "no ablation for method 'nonsense'" in capsys.readouterr().err


def test_models_trace_writes_the_card_figures(tmp_path, capsys):
    out, fig = tmp_path / "trace.json", tmp_path / "trace.png"
    assert main(["models", "trace", "--track", "text", "--n", "24", "--draws", "2", "--json", str(out),
                 "--out", str(fig)]) == 0
    trace = json.loads(out.read_text())
    assert set(trace["effects"]) == {"mlp", "residual"} and fig.stat().st_size > 0
    assert "peaks at block" in capsys.readouterr().out
    assert main(["models", "trace", "--track", "text", "--lm", str(tmp_path / "missing")]) == 2
