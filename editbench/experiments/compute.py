"""More compute for finetuning: would a published finetuning cell score higher with k times its tuned compute?

Each chosen cell of a published suite (a finetuning method's scored cell, by default at n = 256) is run
again with its tuned configuration and ``factor`` times its schedule: ``epochs`` and the step cap
``max_steps`` both multiplied (text reward finetuning: its epochs per round and its step cap), everything else
as tuned. The cell is an ordinary grid cell (its configuration given, so its key and file are its own), and
the table compares its test score with the published cell's 95% interval: a cell whose score rises above
the interval was stopped short of its best by the schedule. Image reward finetuning is not rerun: its
compute is its evaluator-call budget, an axis of its own (the trust study's).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from editbench.core import UserError, io
from editbench.harness.cell import Cell
from editbench.harness.grid import run_grid
from editbench.results import read_records


def scaled(config: dict[str, Any], factor: float) -> dict[str, Any] | None:
    """The configuration with ``factor`` times the schedule (None where the method's compute is not a schedule)."""
    if "epochs" not in config or ("max_steps" not in config and "steps" not in config):
        return None
    cap = "max_steps" if "max_steps" in config else "steps"
    if cap == "steps" and config[cap] >= 10**6:  # bounded by evaluator calls, not by a schedule
        return None
    return {**config, "epochs": config["epochs"] * factor, cap: int(math.ceil(config[cap] * factor))}


def chosen_cells(results: str | Path, budget: int = 256, methods: list[str] | None = None, tasks: list[str] | None = None,
                 seeds: list[int] | None = None) -> list[tuple[dict[str, Any], Cell]]:
    """(published record, cell with ``factor``-times compute) for the finetuning cells asked for."""
    out = []
    for rec in read_records(results):
        c = rec.get("cell") or {}
        if rec.get("status") != "ok" or rec.get("family") != "finetune" or c.get("budget") != budget:
            continue
        if (c.get("tune") or 1) > 1 or c.get("evaluator", "proxy") != "proxy":
            continue
        if (methods and c["method"] not in methods) or (tasks and c["task"] not in tasks) or (seeds and c["seed"] not in seeds):
            continue
        out.append((rec, Cell(**{k: v for k, v in c.items() if k != "track"})))
    return out


def run_more_compute(results: str | Path, out: str | Path, factor: float = 4.0, budget: int = 256,
                     methods: list[str] | None = None, tasks: list[str] | None = None, seeds: list[int] | None = None,
                     workers: int = 2, executor: str = "process", progress: bool = True) -> pd.DataFrame:
    """Run the chosen cells with ``factor`` times their compute into ``out`` (resumable) and write
    ``more_compute.md`` / ``.csv`` there; returns the table."""
    pairs = []
    for rec, cell in chosen_cells(results, budget, methods, tasks, seeds):
        cfg = scaled(rec.get("config") or {}, factor)
        if cfg is not None:  # the published configuration in full (every field as it ran), its schedule scaled
            pairs.append((rec, Cell(**{**cell.__dict__, "config": cfg, "tuned_on": None})))
    if not pairs:
        raise UserError(f"no finetuning cell at n = {budget} with a schedule to scale in {results}")
    rep = run_grid([c for _, c in pairs], out, executor, workers, None, progress)
    rows = []
    for (rec, cell), path in zip(pairs, (rep["paths"][id(c)] for _, c in pairs), strict=True):
        new = json.loads((Path(out) / path).read_text())
        sc = rec["scores"]
        lo, hi = sc["ci"]
        p = (new.get("scores") or {}).get("primary", math.nan)
        rows.append({"task": cell.task, "method": cell.method, "budget": cell.budget, "seed": cell.seed,
                     "tuned": sc["primary"], "ci_lo": lo, "ci_hi": hi, "more": p, "factor": factor,
                     "flops_tuned": (rec.get("cost") or {}).get("flops"), "flops_more": (new.get("cost") or {}).get("flops"),
                     "verdict": "failed" if new["status"] != "ok" else
                     ("higher" if p > hi else ("lower" if p < lo else "within"))})
    t = pd.DataFrame(rows).sort_values(["task", "method", "seed"]).reset_index(drop=True)
    view = pd.DataFrame([{"task": r.task, "method": r.method, "n": str(r.budget), "seed": str(r.seed),
                          "tuned [95% CI]": f"{r.tuned:.3f} [{r.ci_lo:.3f}, {r.ci_hi:.3f}]",
                          f"{factor:g}x compute": f"{r.more:.3f}", "verdict": r.verdict} for _, r in t.iterrows()])
    io.write_text(Path(out) / "more_compute.md",
                  f"Finetuning cells at n = {budget} with {factor:g} times their tuned compute (epochs and step cap), "
                  f"against the published cell's interval; from {results}.\n\n"
                  + view.to_markdown(index=False, disable_numparse=True) + "\n")
    io.write_text(Path(out) / "more_compute.csv", t.to_csv(index=False))
    return t
