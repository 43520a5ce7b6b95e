"""Ablations of the text editors on the dev split: every setting where an editor here differs from its
reference algorithm (or where the world forced a choice), measured before it is kept.

A *row* is a named configuration of one method; each row is fitted on the evidence of seeds that no suite
scores (``SEEDS``: 10-14; the suites score seeds 0-9) at the headline budget and scored on the task's dev
split (never its test split), so the defaults chosen from these tables are not chosen on anything a
leaderboard cell reports. A row's score is the mean dev primary over the seeds with a 95% bootstrap
interval over them; ``dev noise`` is the seeds' standard error, the margin below which two rows are not
told apart. Rows are written as they finish (``rows.jsonl``) and skipped when run again, so a study
resumes; ``<method>.md`` is the table.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from editbench.benchmarks import EVIDENCE_SEED, evidence_world, get_task
from editbench.benchmarks.scoring import score
from editbench.core import Budget, one_thread
from editbench.core.seeds import ABLATION_SEEDS
from editbench.core.stats import mean_interval
from editbench.harness.cell import fit
from editbench.harness.session import Session
from editbench.methods import resolve

SEEDS = ABLATION_SEEDS  # evidence seeds no suite scores (the full suite's are 0-9)

# the settings Meng et al. use (kmeng01/rome hparams for GPT-2; kmeng01/memit for GPT-2 XL), as editbench names them
ROME_REFERENCE = {"v_steps": 20, "weight_decay": 0.5, "decay": "reference", "clamp_norm": 4.0, "stop_loss": 0.05,
                  "anchor": "first", "locality": "subject"}
MEMIT_REFERENCE = {"v_steps": 20, "weight_decay": 0.5, "decay": "reference", "clamp_norm": 0.75, "stop_loss": 0.05,
                   "clamp_to": "residual", "locality": "subject"}
# what editbench ran before these ablations (the published 0.2 defaults, layer fixed where it was traced)
ROME_BEFORE = {"layer": 3, "v_steps": 40, "weight_decay": 0.05, "decay": "squared", "clamp_norm": 8.0, "stop_loss": 0.0,
               "anchor": "mean", "locality": "subject", "ridge": 0.1}
MEMIT_BEFORE = {"layers": "2,3", "v_steps": 40, "weight_decay": 0.05, "decay": "squared", "clamp_norm": 8.0,
                "stop_loss": 0.0, "clamp_to": "mlp", "locality": "subject", "ridge": 0.0}


def _one_change(reference: dict[str, Any], base: dict[str, Any], changes: dict[str, Any]) -> list[tuple[str, dict]]:
    rows = [("reference settings", {**base, **reference})]
    for key, value in changes.items():
        rows.append((f"reference, {key} = {value}", {**base, **reference, key: value}))
    return rows


ROWS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "rome": [
        *[(f"layer {i} (defaults otherwise)", {"layer": i}) for i in range(4)],
        ("layer traced per fit (one noise draw)", {"layer": -1}),
        ("editbench 0.2 settings", ROME_BEFORE),
        *_one_change(ROME_REFERENCE, {"layer": 3}, {"decay": "squared", "anchor": "mean", "stop_loss": 0.0,
                                                    "locality": "spread", "v_steps": 40}),
        ("reference, ridge = 0.001", {"layer": 3, **ROME_REFERENCE, "ridge": 0.001}),
        ("defaults", {}),
    ],
    "memit": [
        *[(f"layers {s} (defaults otherwise)", {"layers": s}) for s in ("3", "2,3", "1,2,3", "0,1,2,3")],
        ("layers traced per fit (span 2)", {"layers": ""}),
        ("editbench 0.2 settings", MEMIT_BEFORE),
        *_one_change(MEMIT_REFERENCE, {"layers": "2,3"}, {"decay": "squared", "stop_loss": 0.0, "locality": "spread",
                                                          "clamp_to": "mlp"}),
        ("reference, ridge = 0 (the raw second moment)", {"layers": "2,3", **MEMIT_REFERENCE, "ridge": 0.0}),
        ("defaults", {}),
    ],
    "steer": [(f"layer {i}, {s} sd", {"layer": f"transformer.h.{i}", "strength": s})
              for i in range(4) for s in (0.5, 1.0, 2.0, 4.0)],
    "iti": [(f"k {k}, alpha {a}", {"k": k, "alpha": a}) for k in (1, 2, 4, 8, 16) for a in (0.5, 1.0, 2.0, 4.0)],
    "neuron_clamp": [
        *[(f"layer {i}, {v}", {"layer": f"transformer.h.{i}.mlp.act", "k": 32, **cfg}) for i in range(4)
          for v, cfg in (("mean", {"value": "mean"}), ("q 0.9", {"quantile": 0.9}), ("q 0.99", {"quantile": 0.99}))],
        *[(f"layer 3, q 0.99, k {k}", {"layer": "transformer.h.3.mlp.act", "quantile": 0.99, "k": k})
          for k in (8, 16, 64, 128)],
        ("layer 3, q 1.0 (the unlit class's extreme), k 32", {"layer": "transformer.h.3.mlp.act", "k": 32, "quantile": 1.0}),
        ("layer 3, zero, k 32", {"layer": "transformer.h.3.mlp.act", "k": 32, "value": "zero"}),
    ],
}


@dataclass(frozen=True)
class Ablation:
    method: str
    task: str = "text/unlit_lamps"
    budget: int = 16
    seeds: tuple[int, ...] = SEEDS
    n_dev: int = 32  # dev outputs per slice


def run_row(ab: Ablation, name: str, config: dict[str, Any], session: Session) -> dict[str, Any]:
    """Fit ``config`` on each seed's evidence and score it on the dev split; the row's record."""
    task = get_task(ab.task)
    cls = resolve(ab.method)
    request = session.track.request(task.request)
    world = evidence_world(task)
    per_seed, metas, t0 = [], [], time.perf_counter()
    with one_thread():
        for s in ab.seeds:
            torch.manual_seed(s)
            edit = fit(cls(config, track=task.track), session, request, Budget(ab.budget, 0, seed=EVIDENCE_SEED + s),
                       world)
            dev = score(task, edit, session, split="dev", n=ab.n_dev, n_boot=50)
            per_seed.append(dev["primary"])
            metas.append({k: edit.meta.get(k) for k in ("layer", "layers", "delta_norm", "v0_norm", "sigma",
                                                         "losses") if k in edit.meta})
    x = torch.tensor(per_seed, dtype=torch.float64)
    mean, lo, hi = mean_interval(x, seed=0)
    return {"row": name, "config": config, "resolved": cls(config, track=task.track).config.as_dict(),
            "per_seed": [round(v, 4) for v in per_seed], "mean": round(mean, 4), "ci": [round(lo, 4), round(hi, 4)],
            "dev_noise": round(float(x.std() / len(x) ** 0.5), 4) if len(x) > 1 else None, "meta": metas,
            "seconds": round(time.perf_counter() - t0, 1)}


def run_ablation(ab: Ablation, out: str | Path, rows: list[str] | None = None) -> list[dict[str, Any]]:
    """Every row of ``ROWS[ab.method]`` (or those named), resuming from ``out/<method>.jsonl``; writes the table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"{ab.method}.jsonl"
    done = {}
    if log.exists():
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            done[rec["row"]] = rec
    todo = [(n, c) for n, c in ROWS[ab.method] if (rows is None or n in rows)]
    session = Session(get_task(ab.task).track)
    for name, config in tqdm(todo, desc=f"{ab.method} ablation", unit="row"):
        if name in done:
            continue
        done[name] = run_row(ab, name, config, session)
        with open(log, "a") as f:
            f.write(json.dumps(done[name]) + "\n")
    records = [done[n] for n, _ in todo if n in done]
    (out / f"{ab.method}.md").write_text(table(ab, records))
    return records


def table(ab: Ablation, records: list[dict[str, Any]]) -> str:
    head = (f"{ab.method} on {ab.task}, n = {ab.budget}, evidence seeds {list(ab.seeds)} (never scored), dev split, "
            f"{ab.n_dev} outputs per slice; mean dev primary over the seeds with a 95% bootstrap interval, and the "
            "seeds' standard error (dev noise).\n\n")
    lines = ["| row | config | dev primary [95% CI] | dev noise | per seed |", "| --- | --- | --- | --- | --- |"]
    for r in records:
        cfg = ", ".join(f"{k}={v}" for k, v in r["config"].items()) or "(defaults)"
        noise = "-" if r["dev_noise"] is None else f"{r['dev_noise']:.3f}"
        lines.append(f"| {r['row']} | {cfg} | {r['mean']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] | {noise} "
                     f"| {', '.join(f'{v:.2f}' for v in r['per_seed'])} |")
    return head + "\n".join(lines) + "\n"
