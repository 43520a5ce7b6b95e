"""The results as one pandas frame: one row per cell, from one or several result folders and exports.

Where the sources hold the same (task, method, budget, seed) more than once (results of other
checkpoints or package versions, or the same cell in two sources), the most recently finished one is
kept. A method shows under its declared ``name``; only where two different methods declare the same
name do their rows keep the reference they were run with (``file.py:Class``), so that nothing is
silently merged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from editbench.core.search import trial_values
from editbench.results import ResultsError, read_sources

CELL_ID = ("task", "method", "budget", "seed", "evaluator", "evaluator_budget", "given_config", "regret")
FAMILY_ORDER = {"reference": 0, "edit": 1, "finetune": 2, "prompt": 3}


class LeaderboardError(ResultsError):
    """Results that cannot be tabled as asked (a one-line message for the CLI)."""


def _display_names(recs: list[dict[str, Any]]) -> dict[str, str]:
    """Method reference -> the name tables show."""
    refs_by_name: dict[str, set[str]] = {}
    for rec in recs:
        ref = rec["cell"]["method"]
        refs_by_name.setdefault(rec.get("method_name") or ref, set()).add(ref)
    shown = {}
    for name, refs in refs_by_name.items():
        for ref in refs:
            shown[ref] = name if len(refs) == 1 else ref
    return shown


def _differ(a: dict[str, Any], b: dict[str, Any]) -> bool:
    same = a["primary"] == b["primary"] or (math.isnan(a["primary"]) and math.isnan(b["primary"]))
    return a["status"] != b["status"] or not same


def _result(row: dict[str, Any]) -> str:
    return f"{row['primary']:.4f}" if row["status"] == "ok" else row["status"]


def _evidence_kind(method: str) -> str:
    """The evidence a method learns from, for records that predate the field ("?" where it cannot be loaded)."""
    from editbench.methods import resolve

    try:
        return resolve(method).consumes
    except Exception:  # noqa: BLE001 - a method that is gone is tabled as it was recorded
        return "?"


def _row(rec: dict[str, Any], shown: dict[str, str]) -> dict[str, Any]:
    c, sc, prov = rec["cell"], rec.get("scores") or {}, rec.get("provenance") or {}
    cost, timing = rec.get("cost") or {}, rec.get("timing") or {}
    slices = sc.get("slices") or {}
    ci = sc.get("ci") or [math.nan, math.nan]
    proxy, gap = sc.get("proxy") or {}, sc.get("gap") or {}
    gap_ci = gap.get("ci") or [math.nan, math.nan]
    row = {
        "task": c["task"], "method": shown[c["method"]], "method_ref": c["method"], "track": rec.get("track") or "?",
        "family": rec.get("family") or "?", "budget": c["budget"], "seed": c["seed"], "status": rec["status"],
        "error": rec.get("error"), "primary": sc.get("primary", math.nan), "ci_lo": ci[0], "ci_hi": ci[1],
        "transfer_ratio": sc.get("transfer_ratio", math.nan),
        "evaluator": c.get("evaluator", "proxy"), "evaluator_budget": c.get("evaluator_calls", 0),
        "reader_floor": sc.get("reader_floor") or 0.0, "proxy_primary": proxy.get("primary", math.nan),
        "gap": gap.get("point", math.nan), "gap_lo": gap_ci[0],
        "gap_hi": gap_ci[1],
        "proxy_per_image": {p: np.asarray([np.nan if x is None else x for x in v], dtype=np.float64)
                            for p, v in (proxy.get("per_image") or {}).items()} or None,
        "evidence_primary": (slices.get("evidence_slice") or {}).get("primary", math.nan),
        "fidelity": float(np.mean([s.get("fidelity", math.nan) for s in slices.values()])) if slices else math.nan,
        "fit_s": cost.get("fit_seconds", math.nan), "evaluator_calls": cost.get("evaluator_calls", 0),
        "params_changed": cost.get("params_changed", 0), "examples_used": cost.get("examples_used", 0),
        "evidence": rec.get("evidence") or _evidence_kind(c["method"]),
        "steps": cost.get("steps", math.nan), "examples_seen": cost.get("examples_seen", math.nan),
        "forward": cost.get("forward", math.nan), "backward": cost.get("backward", math.nan),
        "flops": cost.get("flops") if cost.get("flops") is not None else math.nan,
        "epochs": cost["examples_seen"] / max(cost.get("examples_used") or 1, 1) if "examples_seen" in cost else math.nan,
        "role": "tuning" if (c.get("tune") or 1) > 1 else "scored",
        "edges": ",".join((rec.get("search") or {}).get("edges") or []),
        "search": rec.get("search"),
        "trial_devs": trial_values(rec.get("tuning") or []),  # a search's path
        "total_s": timing.get("total_s", math.nan), "finished_at": timing.get("finished_at", 0.0),
        "n_eval": c.get("n_eval"), "tune": c.get("tune"), "tuned_on": c.get("tuned_on"),
        "regret": c.get("regret") or 1,  # a tuning cell's larger search: a regret probe beside the matched one
        "grow": c.get("grow") or 0,  # a search grown (it was still climbing): 2**grow times its trials
        "config": json.dumps(rec.get("config") or c.get("config") or {}, sort_keys=True),
        "given_config": json.dumps(c.get("config") or {}, sort_keys=True),  # the cell's own (e.g. a lifted step limit)
        "version": prov.get("editbench"), "commit": (prov.get("git") or {}).get("commit"),
        "dirty": (prov.get("git") or {}).get("dirty"),
        **{f"ckpt_{kind}": h for kind, h in (prov.get("checkpoints") or {}).items()},
        "source": rec.get("_source"),
        "image": str(Path(rec["_path"]).with_suffix(".png")) if "#" not in rec["_path"] else "",
        "examples": rec.get("examples"),
    }
    for p, v in (sc.get("parts") or {}).items():
        row[f"part_{p}"] = v
    col = rec.get("collateral") or {}
    edited, base = col.get("edited") or {}, col.get("unedited") or {}
    row.update({
        "facts_acc": (edited.get("lamp_facts") or {}).get("acc", math.nan),
        "facts_acc_base": (base.get("lamp_facts") or {}).get("acc", math.nan),
        "facts_stderr": (edited.get("lamp_facts") or {}).get("acc_stderr", math.nan),
        "word_ppl": (edited.get("lamp_perplexity") or {}).get("word_perplexity", math.nan),
        "word_ppl_base": (base.get("lamp_perplexity") or {}).get("word_perplexity", math.nan),
    })
    return row


ON_CONFLICT = ("error", "latest")  # what a cell two sources give different results for does


def load_frame(results: str | Path | Sequence[str | Path], on_conflict: str = "error"
               ) -> tuple[pd.DataFrame, dict[int, dict[str, np.ndarray]]]:
    """One row per cell of one or several result folders and exports, and per row its per-output part
    scores (ok cells only; keyed by the frame's index). A cell that two sources hold with different results
    (status or primary) is a conflict, never resolved silently: a LeaderboardError names it, or with
    ``on_conflict="latest"`` the later-finished result is kept (the same result twice is no conflict)."""
    if on_conflict not in ON_CONFLICT:
        raise LeaderboardError(f"on_conflict must be one of {list(ON_CONFLICT)}, got {on_conflict!r}")
    sources = [results] if isinstance(results, str | Path) else list(results)
    try:
        recs = read_sources(sources)
    except ResultsError as e:
        raise LeaderboardError(str(e)) from None
    shown = _display_names(recs)
    rows = sorted(((_row(rec, shown), (rec.get("scores") or {}).get("per_image")) for rec in recs),
                  key=lambda r: r[0]["finished_at"])
    latest: dict[tuple, tuple] = {}
    conflicts = []
    for row, pi in rows:
        cid = tuple(row[k] for k in CELL_ID)
        old = latest.get(cid)
        if old is not None and old[0]["source"] != row["source"] and _differ(old[0], row):
            conflicts.append((cid, old[0], row))
        latest[cid] = (row, pi)
    if conflicts and on_conflict == "error":
        cid, a, b = conflicts[0]
        raise LeaderboardError(
            f"{len(conflicts)} cell(s) differ between sources, e.g. {'/'.join(str(x) for x in cid[:4])}: "
            f"{_result(a)} in {a['source']}, {_result(b)} in {b['source']}; drop one source, or pass "
            "--on-conflict latest to show the later-finished result")
    df = pd.DataFrame([r for r, _ in latest.values()])
    per_image = {}
    for i, (_, pi) in enumerate(latest.values()):
        if pi:
            per_image[i] = {p: np.asarray([np.nan if x is None else x for x in v], dtype=np.float64) for p, v in pi.items()}
    df["family_order"] = df["family"].map(FAMILY_ORDER).fillna(9)
    # the index is kept: it is the key of per_image
    return df.sort_values(["task", "budget", "family_order", "method", "seed"]), per_image
