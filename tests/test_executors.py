"""Every executor runs the same cells into the same files, and survives workers that die or hang."""

import json
import textwrap
from pathlib import Path

import pytest

from editbench import harness
from editbench.cli import main
from editbench.harness import ExecutorSpec

SMALL = {"n_eval": 8, "n_dev": 8, "n_boot": 20, "tune": 1}
VOLATILE = ("timing", "fit_seconds", "inference_overhead", "finished_at", "fit_s", "score_s", "total_s", "tune_s")


def _stable(obj):
    """A result record without what measures time (wall clock, seconds spent)."""
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


def _files(out: Path) -> dict[str, object]:
    files = {}
    for p in sorted(out.rglob("*")):
        if p.suffix == ".json":
            files[p.relative_to(out).as_posix()] = _stable(json.loads(p.read_text()))
        elif p.suffix == ".png":
            files[p.relative_to(out).as_posix()] = p.read_bytes()
    return files


def _specs(tmp_path):
    return {
        "inline": "inline",
        "process": "process",
        "ray": ExecutorSpec("ray"),
        "slurm": ExecutorSpec("slurm", {"cluster": "local", "chunk": 2, "folder": str(tmp_path / "submitit")}),
    }


@pytest.mark.slow
def test_the_same_cells_give_the_same_files_under_every_executor(tiny_gen, tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("submitit")
    cells = harness.make_grid(["unlit_lamps"], ["none", "steer"], [4], [0, 1], checkpoints={"generator": tiny_gen},
                              **SMALL)
    files = {}
    for name, spec in _specs(tmp_path).items():
        rep = harness.run_grid(cells, tmp_path / name, executor=spec, workers=2, progress=False)
        assert rep["ok"] == 4 and rep["failed"] == 0, name
        files[name] = _files(tmp_path / name)
    assert len(files["inline"]) == 8  # four results, four pictures
    for name in ("process", "ray", "slurm"):
        assert files[name] == files["inline"], name


BROKEN = """
    import os
    import time
    from pathlib import Path
    from editbench.core import Edit, Method

    class DiesOnce(Method):
        name = "dies_once"
        consumes = "none"
        def fit(self, model, request, evidence, budget):
            marker = Path({marker!r})
            if not marker.exists():
                marker.write_text("died")
                os._exit(3)  # the worker process goes, mid-cell
            return Edit(self.name)

    class Hangs(Method):
        name = "hangs"
        consumes = "none"
        def fit(self, model, request, evidence, budget):
            time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ray", "slurm"])
def test_a_dead_worker_or_a_hang_is_recorded_and_the_cell_redone(name, tiny_gen, tmp_path):
    pytest.importorskip({"ray": "ray", "slurm": "submitit"}[name])
    f = tmp_path / "broken.py"
    f.write_text(textwrap.dedent(BROKEN.format(marker=str(tmp_path / "died"))))
    cells = harness.make_grid(["unlit_lamps"], [f"{f}:DiesOnce", f"{f}:Hangs", "none"], [4], [0],
                              checkpoints={"generator": tiny_gen}, **SMALL)
    spec = _specs(tmp_path)[name]
    rep = harness.run_grid(cells, tmp_path / "r", executor=spec, workers=2, timeout_s=60, progress=False)
    errors = {t["method"].split(":")[-1]: t["error"] for t in rep["timings"]}
    assert rep["ok"] == 1 and rep["failed"] == 2, errors
    assert "died" in errors["DiesOnce"] and "past its limit" in errors["Hangs"] and errors["none"] is None
    for p in (tmp_path / "r").rglob("*.json"):
        json.loads(p.read_text())  # every file whole
    again = harness.run_grid(cells[:1] + cells[2:], tmp_path / "r", executor=spec, workers=2, timeout_s=60,
                             progress=False)
    assert again["skipped"] == 1 and again["ran"] == 1 and again["ok"] == 1  # the dead worker's cell, redone


def test_a_slurm_array_task_that_ends_records_its_cells_as_failed(tiny_gen, tmp_path):
    pytest.importorskip("submitit")
    import concurrent.futures as cf

    from editbench.harness.slurm import SlurmExecutor, _Array

    cells = harness.make_grid(["unlit_lamps"], ["none", "oracle"], [4], [0], checkpoints={"generator": tiny_gen}, **SMALL)
    done = tmp_path / "done.json"
    done.write_text(json.dumps({"status": "ok"}))

    class Preempted:
        job_id = "123_0"

        def result(self):
            raise RuntimeError("Job 123_0 was preempted\nslurmstepd: CANCELLED")

    ex = SlurmExecutor(cluster="local", folder=tmp_path / "s")
    items = [(cf.Future(), (cells[0], str(tmp_path / "lost.json"), "k0", {})), (cf.Future(), (cells[1], str(done), "k1", {}))]
    ex._finish(_Array(items, Preempted()))
    assert [f.result() for f, _ in items] == ["failed", "ok"]  # a cell that finished before the job ended stays
    rec = json.loads((tmp_path / "lost.json").read_text())
    assert rec["status"] == "failed" and "SLURM job 123_0 ended: slurmstepd: CANCELLED" in rec["error"]


def test_cli_executor_options_are_checked(tmp_path, capsys):
    out = str(tmp_path / "r")
    base = ["run", "--tasks", "unlit_lamps", "--methods", "none", "--out", out]
    assert main(base + ["--executor", "process", "--address", "auto"]) == 2
    assert "--address is an option of another executor" in capsys.readouterr().err
    assert main(base + ["--device", "tpu"]) == 2
    assert main(base + ["--executor", "nope"]) == 2
    assert main(base + ["--executor", "slurm", "--slurm", "[1, 2]"]) == 2
    assert not Path(out).exists()


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cells_on_cuda_give_the_same_files_when_run_again(tiny_gen, tiny_lm, tmp_path):
    """--device cuda: both tracks' cells run on the GPU, and a second run gives the same files bit for bit."""
    cells = harness.make_grid(["unlit_lamps", "text/unlit_lamps"], ["none", "steer", "oracle"], [4], [0],
                              checkpoints={"generator": tiny_gen, "lm": tiny_lm}, **SMALL)
    files = {}
    for name in ("a", "b"):
        rep = harness.run_grid(cells, tmp_path / name, executor=ExecutorSpec("inline", {"device": "cuda"}), progress=False)
        assert rep["ok"] == len(cells) and rep["failed"] == 0, name
        files[name] = _files(tmp_path / name)
    assert files["a"] == files["b"]
    rec = json.loads(next((tmp_path / "a").rglob("*.json")).read_text())
    assert rec["status"] == "ok"


def test_a_tuning_cell_may_run_the_timeout_once_per_fit():
    """A search of 24 trials is not a hang: the limit is the timeout per fit the cell makes."""
    from editbench.harness.cell import Cell
    from editbench.harness.executors import limit

    tuned = Cell("unlit_lamps", "finetune_full", 16, 100, tune=8, regret=3)
    assert tuned.fits == 1 + 24 + 1  # every trial, the best's fit, the larger search's best
    assert limit((tuned, "", "", {}), 60) == 60 * 26
    assert Cell("unlit_lamps", "finetune_full", 16, 100, tune=8).fits == 9
    assert Cell("unlit_lamps", "finetune_full", 16, 0).fits == 1
    assert Cell("unlit_lamps", "finetune_full", 16, 0, config={"lr": 1e-4}, tune=8).fits == 1  # told its config
    assert limit((object(), "", "", {}), 60) == 60 and limit((tuned, "", "", {}), None) is None
