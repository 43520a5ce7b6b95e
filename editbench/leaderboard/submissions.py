"""Submissions a maintainer can trust: a self-describing bundle of one method's results, verified by re-running
a seeded random sample of its cells, and merged beside the published rows.

* :func:`submit` writes a bundle (a folder): the method's source file (or its distribution's name and version,
  and a wheel's hash where one is given), every cell's result file, the suite's definition and the tasks'
  versions, the checkpoints' hashes, the environment, and ``manifest.json`` with the hash of every file. It
  refuses (:class:`SubmissionError`, one line) results from checkpoints that are not the shipped ones, from a
  dirty tree of the method's own repository, of another suite definition or another version of the method or
  of editbench (a cell's key is recomputed), an incomplete grid, and failed cells that are not declared.
* :func:`verify` checks the manifest, re-runs a sample (at least ``min_cells`` or ``fraction`` of the cells,
  always cells of the headline budget, every task represented; the sample's seed is drawn afresh unless given,
  so a submitter cannot know which cells will be re-run) and compares each with the submitted file within the
  gate's cross-machine tolerance, or exactly. It writes ``verification.json`` into the bundle.
* :func:`verified_sources` gives the leaderboard the results of every verified bundle under a folder, each
  with its mark ("verified: k of N cells re-run").
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from editbench.core import io
from editbench.results import read_records

from .frame import LeaderboardError
from .gate import EXACT_FIELDS, _same, tolerance

BUNDLE_VERSION = 1
MANIFEST, VERIFICATION = "manifest.json", "verification.json"
MIN_CELLS, FRACTION = 8, 0.05


class SubmissionError(LeaderboardError):
    """A bundle that cannot be made or read (one line, exit 2)."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cell_id(cell: dict[str, Any]) -> str:
    """``task/n<budget>/s<seed>`` and ``/e<evaluator>`` off the proxy: a cell of the bundle's one method."""
    cid = f"{cell['task']}/n{cell['budget']}/s{cell['seed']}"
    return cid + (f"/e{cell['evaluator']}" if cell.get("evaluator", "proxy") != "proxy" else "")


# ---- what a method is -----------------------------------------------------------------------------------
def _repo_state(path: Path) -> dict[str, Any] | None:
    """The git commit and dirty flag of the repository holding ``path`` (None outside any repository)."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path.parent, capture_output=True, text=True,
                             timeout=10)
        if top.returncode != 0:
            return None
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path.parent, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=top.stdout.strip(), capture_output=True, text=True,
                               timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"repository": top.stdout.strip(), "commit": commit.stdout.strip() or None,
            "dirty": bool(dirty.stdout.strip())}


def describe_method(method: str, wheel: str | Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """What identifies ``method``'s code, and its source file where it is one (a file reference)."""
    import importlib.metadata as md

    from editbench.methods import METHODS, is_builtin, method_code, resolve

    cls = resolve(method)
    if is_builtin(method):
        return {"name": cls.name, "kind": "built-in", "version": cls.version}, None
    entry = METHODS.entries().get(method)
    where = (entry.target if entry is not None else method).rsplit(":", 1)[0]
    source = Path(sys.modules[cls.__module__].__file__).resolve() if getattr(sys.modules.get(cls.__module__),
                                                                               "__file__", None) else None
    info: dict[str, Any] = {"name": cls.name, "class": cls.__qualname__, "version": cls.version,
                            "code": method_code(method), "repository": _repo_state(source) if source else None}
    if where.endswith(".py"):
        info["kind"] = "file"
        return info, source
    dist = md.packages_distributions().get(where.split(".")[0])
    info.update(kind="package", module=where, distribution=dist[0] if dist else None,
                distribution_version=md.version(dist[0]) if dist else None)
    if wheel is not None:
        if not Path(wheel).is_file():
            raise SubmissionError(f"--wheel {str(wheel)!r} does not exist")
        info["wheel"] = {"file": Path(wheel).name, "sha256": sha256(Path(wheel))}
    return info, None


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    from editbench import __version__
    from editbench.results.provenance import LIBRARIES, git

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"editbench": __version__, "editbench_git": git(), "python": platform.python_version(),
            "platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__, "torch_cuda": torch.version.cuda, "gpu": gpu,
            "packages": {p: _version(md, p) for p in (*LIBRARIES, "optuna", "pandas", "lm_eval")}}


def _version(md: Any, pkg: str) -> str | None:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


# ---- the grid a suite asks of one method --------------------------------------------------------------
def expected_cells(suite: Any, method: str, track: str) -> set[str]:
    """The scored cells (ids) ``suite`` runs for ``method`` on ``track``'s tasks."""
    from editbench.benchmarks import TASKS, get_task
    from editbench.harness.grid import make_grid, uses_evaluator

    tasks = [t for t in sorted(TASKS) if get_task(t).track == track]
    cells = make_grid(tasks, [method], list(suite.budgets), list(suite.seeds), more_seeds=suite.more_seeds)
    out = {cell_id({"task": c.task, "budget": c.budget, "seed": c.seed}) for c in cells}
    if uses_evaluator(method):
        for c in cells:
            if not suite.evaluator_budgets or c.budget in suite.evaluator_budgets:
                out |= {cell_id({"task": c.task, "budget": c.budget, "seed": c.seed, "evaluator": e})
                        for e in suite.evaluators if e != "proxy"}
    return out


def _recomputed_key(rec: dict[str, Any]) -> str:
    import dataclasses

    from editbench.harness import Cell

    fields = {f.name for f in dataclasses.fields(Cell)}
    cell = Cell(**{k: v for k, v in rec["cell"].items() if k in fields})
    return cell.key((rec.get("provenance") or {}).get("checkpoints") or {})


# ---- submit -----------------------------------------------------------------------------------------------
def submit(method: str, results: str | Path, out: str | Path, suite: str = "quick", declare_failed: tuple[str, ...] = (),
           wheel: str | Path | None = None) -> dict[str, Any]:
    """Write the bundle of ``method``'s cells in ``results`` (a results folder) to ``out``; returns the manifest."""
    from editbench.benchmarks import get_task
    from editbench.benchmarks.suites import SUITES
    from editbench.methods import resolve
    from editbench.results import ResultsError
    from editbench.tracks import get_track

    cls = resolve(method)
    s = SUITES.get(suite)
    if not Path(results).is_dir():
        raise SubmissionError(f"--results {str(results)!r} is not a results folder")
    try:
        recs = [r for r in read_records(results) if r.get("method_name") == cls.name]
    except ResultsError as e:
        raise SubmissionError(str(e)) from None
    if not recs:
        raise SubmissionError(f"no cell of method {cls.name!r} under {str(results)!r}")
    info, source = describe_method(method, wheel)
    repo = info.get("repository")
    if repo and repo["dirty"]:
        raise SubmissionError(f"the method's repository {repo['repository']} has uncommitted changes; commit them and "
                              "run the suite again, so the bundle names the code its results came from")
    tracks = sorted({r["track"] for r in recs})
    shipped = {t: get_track(t).checkpoint_hashes({}) for t in tracks}
    scored, tuning = [], []
    for rec in recs:
        c, prov = rec["cell"], rec.get("provenance") or {}
        cid = cell_id(c)
        ckpts = prov.get("checkpoints") or {}
        if ckpts != shipped[rec["track"]]:
            bad = sorted(k for k in set(ckpts) | set(shipped[rec["track"]]) if ckpts.get(k) != shipped[rec["track"]].get(k))
            raise SubmissionError(f"cell {cid} was run on checkpoints that are not the shipped ones ({', '.join(bad)}: "
                                  f"{', '.join(str(ckpts.get(k)) for k in bad)}); the leaderboard compares the shipped models")
        if (c.get("n_eval"), c.get("n_dev"), c.get("n_boot")) != (s.n_eval, s.n_dev, s.n_boot):
            raise SubmissionError(f"cell {cid} is not of suite {s.name!r} (n_eval {c.get('n_eval')}, n_dev "
                                  f"{c.get('n_dev')}, n_boot {c.get('n_boot')}; the suite's: {s.n_eval}, {s.n_dev}, "
                                  f"{s.n_boot})")
        if _recomputed_key(rec) != rec.get("key"):
            raise SubmissionError(f"cell {cid} was run by another version of editbench, of its task "
                                  f"(now {get_task(c['task']).version}) or of the method (its key differs from the one "
                                  "this checkout computes); run the suite again with this version")
        (tuning if (c.get("tune") or 1) > 1 else scored).append(rec)
    ids = {cell_id(r["cell"]): r for r in scored}
    want = set().union(*(expected_cells(s, method, t) for t in tracks))
    missing, extra = sorted(want - set(ids)), sorted(set(ids) - want)
    if missing:
        raise SubmissionError(f"{len(missing)} cell(s) of suite {s.name!r} are missing, e.g. {missing[0]}; run the "
                              "whole suite (the grid skips finished cells)")
    if extra:
        raise SubmissionError(f"cell {extra[0]} is not in suite {s.name!r}")
    failed = sorted(cid for cid, r in ids.items() if r["status"] != "ok")
    declared = set(failed) if "all" in declare_failed else set(declare_failed)
    undeclared = [cid for cid in failed if cid not in declared]
    if undeclared:
        err = ids[undeclared[0]].get("error") or "failed"
        raise SubmissionError(f"{len(undeclared)} failed cell(s) not declared, e.g. {undeclared[0]} ({err}); declare "
                              "them with --declare-failed ID (or all) so the bundle says they failed")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise SubmissionError(f"--out {str(out)!r} exists and is not empty")

    def fill(tmp: Path) -> None:
        (tmp / "results").mkdir()
        for rec in scored + tuning:
            c = rec["cell"]
            name = f"{c['task'].replace('/', '_')}/n{c['budget']}-s{c['seed']}-{c.get('evaluator', 'proxy')}" + \
                   ("-tuning" if (c.get("tune") or 1) > 1 else "") + ".json"
            path = tmp / "results" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({k: v for k, v in rec.items() if not k.startswith("_")}, indent=1, sort_keys=True))
        if source is not None:
            (tmp / "method").mkdir()
            shutil.copyfile(source, tmp / "method" / source.name)
            info["file"] = f"method/{source.name}"
        manifest = {
            "bundle_version": BUNDLE_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "method": info, "reference": method, "suite": {"name": s.name, "definition": _suite_dict(s)},
            "tasks": {t: get_task(t).version for t in sorted({r["cell"]["task"] for r in recs})},
            "checkpoints": shipped, "environment": environment(), "cells": len(scored), "tuning_cells": len(tuning),
            "headline_budget": 16 if 16 in s.budgets else max(s.budgets),
            "declared_failed": failed,
            "files": {str(p.relative_to(tmp)): sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")

    io.write_dir(out, fill)
    return read_manifest(out)


def _suite_dict(s: Any) -> dict[str, Any]:
    import dataclasses

    return json.loads(json.dumps(dataclasses.asdict(s), default=list))


# ---- reading and checking a bundle ------------------------------------------------------------------------
def read_manifest(bundle: str | Path) -> dict[str, Any]:
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise SubmissionError(f"{str(bundle)!r} is not a submission bundle (no {MANIFEST})")
    try:
        m = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SubmissionError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(m, dict) or m.get("bundle_version") != BUNDLE_VERSION or not isinstance(m.get("files"), dict):
        raise SubmissionError(f"{path}: not a version-{BUNDLE_VERSION} bundle manifest")
    return m


def manifest_problems(bundle: str | Path, m: dict[str, Any]) -> list[str]:
    """Files that differ from the manifest, are missing, or are not in it (the verification record aside)."""
    root = Path(bundle)
    problems = []
    for rel, digest in sorted(m["files"].items()):
        p = root / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif sha256(p) != digest:
            what = _cell_of(p)
            problems.append(f"{rel}: changed since the bundle was made" + (f" (cell {what})" if what else ""))
    listed = set(m["files"]) | {MANIFEST, VERIFICATION}
    problems += [f"{p.relative_to(root)}: not in the manifest" for p in sorted(root.rglob("*"))
                 if p.is_file() and str(p.relative_to(root)) not in listed]
    return problems


def _cell_of(path: Path) -> str | None:
    try:
        return cell_id(json.loads(path.read_text())["cell"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def bundle_records(bundle: str | Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((Path(bundle) / "results").rglob("*.json"))]


def local_method(bundle: str | Path, m: dict[str, Any]) -> str:
    """The reference this machine runs the bundle's method by: its file in the bundle, or the installed package
    (which must be the version the bundle names)."""
    import importlib.metadata as md

    info = m["method"]
    if info["kind"] == "file":
        return f"{(Path(bundle) / info['file']).resolve()}:{info['class']}"
    if info["kind"] == "package":
        dist, version = info.get("distribution"), info.get("distribution_version")
        if dist:
            have = _version(md, dist)
            if have != version:
                raise SubmissionError(f"the bundle's method is {dist} {version}; this environment has "
                                      f"{have or 'none'} (pip install '{dist}=={version}')")
        return f"{info['module']}:{info['class']}"
    return m["reference"]


def sample(records: list[dict[str, Any]], headline: int, seed: int, min_cells: int = MIN_CELLS,
           fraction: float = FRACTION) -> list[dict[str, Any]]:
    """A seeded random sample of the scored records: one of the headline budget per task first (every task
    represented), then others at random up to ``max(min_cells, fraction * N)`` (all, where there are fewer)."""
    rng = random.Random(seed)
    scored = sorted((r for r in records if (r["cell"].get("tune") or 1) <= 1), key=lambda r: cell_id(r["cell"]))
    want = min(len(scored), max(min_cells, math.ceil(fraction * len(scored))))
    chosen: list[dict[str, Any]] = []
    for task in sorted({r["cell"]["task"] for r in scored}):
        pool = [r for r in scored if r["cell"]["task"] == task]
        head = [r for r in pool if r["cell"]["budget"] == headline] or pool
        chosen.append(rng.choice(head))
    rest = [r for r in scored if r not in chosen]
    rng.shuffle(rest)
    return chosen + rest[:max(0, want - len(chosen))]


def compare(submitted: dict[str, Any], rerun: dict[str, Any], exact: bool) -> dict[str, Any]:
    """One re-run cell against its submitted file: exactly (every scored field) or within the gate's tolerance
    (the primary within half the submitted interval, at least 0.01; the same status)."""
    row = {"cell": cell_id(submitted["cell"]), "submitted": (submitted.get("scores") or {}).get("primary"),
           "rerun": (rerun.get("scores") or {}).get("primary"), "status": rerun["status"]}
    if submitted["status"] != rerun["status"]:
        return {**row, "ok": False, "why": f"status {submitted['status']} submitted, {rerun['status']} re-run"}
    if submitted["status"] != "ok":
        return {**row, "ok": True, "why": "failed as submitted"}
    a, b = submitted["scores"], rerun["scores"]
    if exact:
        differ = [f for f in EXACT_FIELDS if not _same(a.get(f), b.get(f))]
        return {**row, "ok": not differ, "why": "identical" if not differ else "differs in " + ", ".join(differ)}
    tol = tolerance("primary", {"ci": a.get("ci")})
    diff = b["primary"] - a["primary"]
    return {**row, "diff": diff, "tolerance": tol, "ok": abs(diff) <= tol,
            "why": "within tolerance" if abs(diff) <= tol else "beyond tolerance"}


def verify(bundle: str | Path, seed: int | None = None, exact: bool = False, min_cells: int = MIN_CELLS,
           fraction: float = FRACTION, executor: Any = "process", workers: int = 2, timeout_s: float | None = 1800,
           record: bool = True, progress: bool = True) -> dict[str, Any]:
    """Check the bundle's manifest, re-run a sample of its cells and compare them; writes ``verification.json``
    into the bundle (``record``). ``verified``: every file as in the manifest and every re-run cell reproduced."""
    import dataclasses

    from editbench import __version__
    from editbench.harness import Cell, run_grid

    root = Path(bundle)
    m = read_manifest(root)
    problems = manifest_problems(root, m)
    rep: dict[str, Any] = {"bundle": str(root), "method": m["method"]["name"], "manifest_sha256": sha256(root / MANIFEST),
                           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "editbench": __version__,
                           "exact": exact, "cells": m["cells"], "problems": problems, "rows": []}
    if problems:
        return _finish(root, {**rep, "verified": False, "seed": seed, "rerun": 0}, record)
    records = bundle_records(root)
    seed = secrets.randbelow(2**31) if seed is None else seed
    chosen = sample(records, m["headline_budget"], seed, min_cells, fraction)
    ref = local_method(root, m)
    fields = {f.name for f in dataclasses.fields(Cell)}
    cells = [Cell(**{**{k: v for k, v in r["cell"].items() if k in fields}, "method": ref}) for r in chosen]
    with tempfile.TemporaryDirectory(prefix="editbench-verify-") as tmp:
        ran = run_grid(cells, tmp, executor, workers, timeout_s, progress=progress)
        by_id = {cell_id(r["cell"]): r for r in read_records(tmp)}
    rows = [compare(r, by_id.get(cell_id(r["cell"])) or {"status": "missing"}, exact) for r in chosen]
    rep.update(seed=seed, rerun=len(rows), rows=rows, wall_s=ran["wall_s"], verified=all(r["ok"] for r in rows))
    return _finish(root, rep, record)


def _finish(root: Path, rep: dict[str, Any], record: bool) -> dict[str, Any]:
    if record:
        io.write_text(root / VERIFICATION, json.dumps(rep, indent=1, default=str) + "\n")
    return rep


def format_verification(rep: dict[str, Any]) -> str:
    lines = [f"  {p}" for p in rep["problems"]]
    if lines:
        lines.insert(0, f"{len(rep['problems'])} file(s) do not match the manifest:")
    if rep["rows"]:
        lines.append(f"  {'cell':<36}{'submitted':>10}{'re-run':>10}{'diff':>10}{'tolerance':>11}  verdict")
        for r in rep["rows"]:
            sub = "-" if r["submitted"] is None else f"{r['submitted']:.4f}"
            now = "-" if r["rerun"] is None else f"{r['rerun']:.4f}"
            diff = f"{r['diff']:+.4f}" if "diff" in r else ""
            tol = f"{r['tolerance']:.4f}" if "tolerance" in r else ("exact" if rep["exact"] else "")
            lines.append(f"  {r['cell']:<36}{sub:>10}{now:>10}{diff:>10}{tol:>11}  {r['why']}")
    bad = [r["cell"] for r in rep["rows"] if not r["ok"]]
    verdict = "VERIFIED" if rep["verified"] else "NOT VERIFIED"
    lines.append(f"{verdict}: {rep['method']}, {rep['rerun']} of {rep['cells']} cells re-run (seed {rep['seed']})"
                 + (f"; did not reproduce: {', '.join(bad)}" if bad else "")
                 + ("; the bundle's files do not match its manifest" if rep["problems"] else ""))
    return "\n".join(lines)


# ---- merging ----------------------------------------------------------------------------------------------
def verified_sources(folder: str | Path) -> list[tuple[Path, str]]:
    """Every bundle under ``folder`` (``<method>/``) as (its results folder, its mark). A bundle must be intact
    (every file as in its manifest) and carry a verification record of this very manifest that verified it;
    anything else is a SubmissionError naming it."""
    root = Path(folder)
    if not root.is_dir():
        raise SubmissionError(f"--submissions {str(folder)!r} is not a folder")
    out = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        m = read_manifest(sub)
        problems = manifest_problems(sub, m)
        if problems:
            raise SubmissionError(f"submission {sub.name}: {problems[0]}")
        try:
            v = json.loads((sub / VERIFICATION).read_text())
        except (OSError, ValueError):
            raise SubmissionError(f"submission {sub.name}: no verification record (run editbench verify {sub})") from None
        if not v.get("verified") or v.get("manifest_sha256") != sha256(sub / MANIFEST):
            raise SubmissionError(f"submission {sub.name}: its verification record does not verify this bundle "
                                  f"(run editbench verify {sub})")
        out.append((sub / "results", f"verified: {v['rerun']} of {v['cells']} cells re-run"))
    if not out:
        raise SubmissionError(f"no submission bundle under {str(folder)!r}")
    return out
