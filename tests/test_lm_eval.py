"""lm-eval: the lamp tasks run by the plain lm_eval command line on the shipped LM and agree with editbench's
own scoring; edited LMs through HFLM; weight edits exported as HF folders; collateral in text cells; bad
input refused in one line."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from editbench.cli import main
from editbench.core import Edit
from editbench.tracks.text.checkpoints import ASSETS
from editbench.tracks.text.lm_tasks import TASKS, build_docs, evaluate, own_scores, write_tasks

OFFLINE = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("lamp_tasks")
    assert main(["lm-eval", "tasks", "--out", str(out)]) == 0
    return out


def test_tasks_are_deterministic_and_say_their_version(task_dir, tmp_path):
    write_tasks(tmp_path, ("lamp_state",))
    assert (tmp_path / "lamp_state.jsonl").read_text() == (task_dir / "lamp_state.jsonl").read_text()
    for t in TASKS:
        text = (task_dir / f"{t}.yaml").read_text()
        assert f"task: {t}" in text and "version: 1" in text
    facts = {d["fact"] for d in build_docs("lamp_facts")}
    assert facts == {"wall", "window", "time", "kind", "place"}
    state = build_docs("lamp_state")
    assert 0.2 < sum(d["gold"] for d in state) / len(state) < 0.5  # about a third of lamps are unlit


@pytest.mark.slow
def test_the_lm_eval_command_line_scores_the_shipped_lm_as_editbench_does(task_dir, tmp_path, shipped_text):
    """A real client: lm_eval in a subprocess, offline, on the shipped LM folder and the exported tasks."""
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={ASSETS / 'lm'},dtype=float32",
           "--include_path", str(task_dir), "--tasks", "lamp_state,lamp_facts,lamp_perplexity,lamp_describe",
           "--batch_size", "32", "--output_path", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=OFFLINE, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = list((tmp_path / "out").rglob("results_*.json"))
    assert len(files) == 1
    results = json.loads(files[0].read_text())["results"]
    lm = shipped_text.models["lm"]
    for task in ("lamp_state", "lamp_facts"):
        assert results[task]["acc,none"] == pytest.approx(own_scores(lm, task)["acc"], abs=1e-12)
    ppl = own_scores(lm, "lamp_perplexity")["word_perplexity"]
    assert results["lamp_perplexity"]["word_perplexity,none"] == pytest.approx(ppl, rel=1e-5)
    assert results["lamp_describe"]["parses,none"] >= 0.95  # greedy descriptions of the shipped LM parse
    assert "lamp_state" in proc.stdout  # the table lm_eval prints


def test_an_edit_runs_inside_hflm_and_is_removed_after(shipped_text, task_dir):
    lm = shipped_text.models["lm"]
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    base = evaluate(lm, ["lamp_state"], task_dir, limit=60)
    assert evaluate(lm, ["lamp_state"], task_dir, Edit("none"), limit=60) == base
    w = "transformer.h.3.mlp.c_proj.weight"
    kill = Edit("x", tensors={f"delta.{w}": -lm.get_parameter(w).detach().clone()}, deltas=[w])
    assert evaluate(lm, ["lamp_state"], task_dir, kill, limit=60) != base
    prompt = Edit("p", prompt={"clause": "an unlit table lamp and an unlit floor lamp"})
    assert evaluate(lm, ["lamp_state"], task_dir, prompt, limit=60)["lamp_state"]["acc"] != base["lamp_state"]["acc"]
    assert all(torch.equal(before[k], v) for k, v in lm.state_dict().items())


def test_lm_eval_run_and_export(tmp_path, task_dir):
    out = tmp_path / "rome.json"
    edit_dir = tmp_path / "edit"
    assert main(["edit", "--method", "rome", "--task", "text/unlit_lamps", "--eval-n", "8", "--out",
                 str(tmp_path / "pairs.txt"), "--save-edit", str(edit_dir)]) == 0
    assert main(["lm-eval", "run", "--edit", str(edit_dir), "--tasks", "lamp_state", "--task-dir", str(task_dir),
                 "--limit", "60", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert 0 <= rec["results"]["lamp_state"]["acc"] <= 1 and rec["provenance"]["checkpoints"]["lm"]
    hf = tmp_path / "hf"
    assert main(["lm-eval", "export", "--edit", str(edit_dir), "--out", str(hf)]) == 0
    from transformers import GPT2LMHeadModel

    from editbench.tracks.text import load_lm

    plain = GPT2LMHeadModel.from_pretrained(hf).eval()
    lm, edit = load_lm(), Edit.load(edit_dir)
    ids = torch.tensor([[2, 8, 9, 10, 4]])
    with torch.no_grad(), edit.applied(lm):
        assert torch.allclose(plain(ids).logits, lm(ids).logits, atol=1e-5)


def test_lm_eval_bad_input_is_one_line_and_leaves_no_file(tmp_path, task_dir, capsys):
    out = tmp_path / "r.json"
    assert main(["lm-eval", "run", "--tasks", "lamp_sate", "--task-dir", str(task_dir), "--out", str(out)]) == 2
    assert "unknown lm-eval task" in capsys.readouterr().err
    assert main(["lm-eval", "run", "--tasks", "lamp_state", "--task-dir", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "lamp_state.yaml").write_text("task: lamp_state\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                         f"    test: {bad / 'missing.jsonl'}\ntest_split: test\noutput_type: multiple_choice\n")
    assert main(["lm-eval", "run", "--tasks", "lamp_state", "--task-dir", str(bad), "--out", str(out)]) == 2
    assert "cannot be loaded" in capsys.readouterr().err
    f = tmp_path / "boom.py"
    f.write_text(textwrap.dedent("""
        import torch
        from editbench.core import Edit, Method

        class BoomEdit(Edit):
            def hook_fn(self, point, spec):
                def boom(out):
                    raise RuntimeError("boom inside lm-eval")
                return boom

        class Boom(Method):
            name = "boom"
            consumes = "none"
            tracks = ("text",)

            def fit(self, model, request, evidence, budget):
                return BoomEdit(self.name, hooks={"transformer.h.0": {"op": "add"}})
    """))
    sys.path.insert(0, str(tmp_path))
    assert main(["lm-eval", "run", "--method", f"{f}:Boom", "--tasks", "lamp_state", "--task-dir", str(task_dir),
                 "--out", str(out)]) == 2
    assert "failed during lm-eval" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("r.json*"))
    assert main(["lm-eval", "export", "--edit", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2


def test_text_cells_carry_collateral(shipped_text):
    from editbench.harness import Cell, run_cell

    out = run_cell(Cell("text/unlit_lamps", "steer", 16, 0, n_eval=8, n_boot=20), shipped_text)
    col = out["collateral"]
    assert set(col) == {"edited", "unedited"} and set(col["edited"]) == {"lamp_facts", "lamp_perplexity"}
    assert col["edited"] != col["unedited"]
    assert run_cell(Cell("text/unlit_lamps", "oracle", 16, 0, n_eval=8, n_boot=20), shipped_text)["collateral"] is None
    none = run_cell(Cell("text/unlit_lamps", "none", 16, 0, n_eval=8, n_boot=20), shipped_text)["collateral"]
    assert none["edited"] == none["unedited"] == col["unedited"]


def test_collateral_measures_an_edit_that_applies_itself_its_own_way(shipped_text):
    """An Edit subclass that overrides applied() declares no hooks, deltas or prompt: its collateral is
    measured on the LM as it applies it, never copied from the unedited LM."""
    from contextlib import contextmanager

    class Flattened(Edit):
        @contextmanager
        def applied(self, model):
            w = model.transformer.ln_f.weight
            keep = w.detach().clone()
            with torch.no_grad():
                w.mul_(0.5)
            try:
                yield model
            finally:
                with torch.no_grad():
                    w.copy_(keep)

    col = shipped_text.track.collateral(shipped_text, Flattened("flattened"))
    assert col["edited"] != col["unedited"]
    assert shipped_text.track.collateral(shipped_text, Edit("none"))["edited"] == col["unedited"]
