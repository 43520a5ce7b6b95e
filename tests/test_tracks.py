"""Adding a track is adding a folder: a toy third track, defined only in ``tests/fixtures/tracks/toy/``, runs the
references and a finetuning method through cells, the gate and a leaderboard build.

The folder is dropped into a copy of the package made of links to the real files (nothing of the checkout is
edited), and the command line runs on that copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests/fixtures/tracks/toy"


def package_with_toy_track(where: Path) -> Path:
    """``where/editbench``: links to every file of the package, and in ``tracks/`` the toy folder beside the others."""
    real = ROOT / "editbench"
    pkg = where / "editbench"
    pkg.mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name not in ("tracks", "__pycache__"):
            (pkg / entry.name).symlink_to(entry)
    (pkg / "tracks").mkdir()
    for entry in (real / "tracks").iterdir():
        if entry.name != "__pycache__":
            (pkg / "tracks" / entry.name).symlink_to(entry)
    (pkg / "tracks" / "toy").symlink_to(TOY)
    return where


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    site = package_with_toy_track(tmp_path_factory.mktemp("site"))
    env = {**os.environ, "PYTHONPATH": str(site)}

    def cli(*args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "editbench.cli", *args], env=env, capture_output=True, text=True,
                           timeout=600, cwd=site)
        assert r.returncode in ok, r.stderr[-3000:]
        return r

    return cli, tmp_path_factory.mktemp("toy-run")


@pytest.mark.slow
def test_a_third_track_is_one_folder(toy):
    cli, tmp = toy
    listing = {line.split()[0]: line.split()[3] for line in cli("methods", "list").stdout.splitlines()[1:]}
    assert listing["finetune_full"] == "image,text,toy"  # every track that says how finetuning reaches its model
    assert listing["none"] == listing["oracle"] == "*"
    assert "rome" not in {m for m, t in listing.items() if "toy" in t}

    results = tmp / "results"
    cli("run", "--suite", "quick", "--track", "toy", "--methods", "none,oracle,finetune_full", "--workers", "1",
        "--out", str(results))
    records = {}
    for f in results.rglob("*.json"):
        rec = json.loads(f.read_text())
        records[rec["cell"]["method"]] = rec
    assert set(records) == {"none", "oracle", "finetune_full"}
    assert all(r["status"] == "ok" and r["track"] == "toy" for r in records.values()), records
    primary = {m: r["scores"]["primary"] for m, r in records.items()}
    assert primary["oracle"] > 0.99 and primary["none"] < 0.01  # the world's answer on top, the unedited model at 0
    ft = records["finetune_full"]["cost"]
    assert ft["steps"] > 0 and ft["params_changed"] > 0 and primary["none"] <= primary["finetune_full"] <= 1
    assert set(records["oracle"]["scores"]["parts"]) == {"efficacy", "locality"}

    baseline = tmp / "baseline.json"
    cli("check", "--update", "--baseline", str(baseline), "--results", str(results))
    assert "toy/unlit_lamps" in baseline.read_text()
    cli("check", "--baseline", str(baseline), "--results", str(results))
    page = tmp / "leaderboard"
    cli("leaderboard", "build", "--results", str(results), "--out", str(page))
    board = (page / "leaderboard.md").read_text()
    assert "toy/unlit_lamps" in board and all(m in board for m in ("none", "oracle", "finetune_full"))
