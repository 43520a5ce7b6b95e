"""The score gate: fresh results against a committed baseline, cell by cell.

:func:`check` fails a cell when a gated metric moves the wrong way by more than its noise band (the
direction of each metric comes from the metric registry), or when a cell that was ok now fails.
:func:`check_exact` compares two sets of results with zero tolerance: every cell's primary, interval,
parts, slices and per-output scores identical bit for bit (the proof that a change moved no score).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from editbench.core import io
from editbench.metrics import direction
from editbench.results import read_sources

from .frame import LeaderboardError, load_frame
from .tables import meta

GATED = ("primary", "fidelity")
TOLERANCE_FLOOR = {"primary": 0.01, "fidelity": 0.01}


def cell_id(row) -> str:
    """``task/method/n<budget>/s<seed>``, then ``/e<evaluator>`` and ``/c<calls>`` where a cell has another
    evaluator than the proxy or another evaluator budget than the default (the trust axes)."""
    from editbench.harness.cell import Cell

    cid = f"{row['task']}/{row['method']}/n{int(row['budget'])}/s{int(row['seed'])}"
    if row.get("evaluator", "proxy") != "proxy":
        cid += f"/e{row['evaluator']}"
    calls = row.get("evaluator_budget", Cell.evaluator_calls)
    return cid + (f"/c{int(calls)}" if calls == calls and int(calls) != Cell.evaluator_calls else "")


def baseline_from(results: str | Path) -> dict[str, Any]:
    df, _ = load_frame(results)
    cells = {}
    for _, r in df.iterrows():
        cells[cell_id(r)] = {"status": r.status, "primary": _num(r.primary), "ci": [_num(r.ci_lo), _num(r.ci_hi)],
                             "fidelity": _num(r.fidelity)}
    return {"schema_version": 1, "meta": meta(df), "cells": dict(sorted(cells.items()))}


def _num(x: float) -> float | None:
    return round(float(x), 6) if x is not None and math.isfinite(x) else None


def write_baseline(results: str | Path, path: str | Path, new_only: bool = False) -> dict[str, Any]:
    """Write the baseline from ``results``; with ``new_only``, keep every cell the baseline already has and add
    only the results' new cells (a new track or method, without re-basing the rest)."""
    b = baseline_from(results)
    if new_only and Path(path).is_file():
        old = read_baseline(path)
        added = sorted(set(b["cells"]) - set(old["cells"]))
        b = {**old, "cells": dict(sorted({**old["cells"], **{k: b["cells"][k] for k in added}}.items())),
             "additions": [*old.get("additions", []), {"cells": added, "meta": b["meta"]}]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_text(path, json.dumps(b, indent=1) + "\n")
    return b


def read_baseline(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise LeaderboardError(f"baseline {str(path)!r} does not exist (write one with editbench check --update)")
    try:
        b = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LeaderboardError(f"baseline {str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(b, dict) or not isinstance(b.get("cells"), dict):
        raise LeaderboardError(f"baseline {str(path)!r} has no 'cells' mapping")
    if "cells" in b and any(not isinstance(v, dict) for v in b["cells"].values()):
        raise LeaderboardError(f"baseline {str(path)!r}: every cell must be a JSON object")
    return b


def tolerance(metric: str, base: dict[str, Any]) -> float:
    """Half the baseline's 95% interval for the primary (its noise band), never below a floor."""
    if metric == "primary" and base.get("ci") and None not in base["ci"]:
        return max(TOLERANCE_FLOOR[metric], (base["ci"][1] - base["ci"][0]) / 2)
    if metric == "fidelity" and base.get("fidelity") is not None:
        return max(TOLERANCE_FLOOR[metric], 0.25 * abs(base["fidelity"]))
    return TOLERANCE_FLOOR.get(metric, 0.01)


def check(baseline: dict[str, Any], results: str | Path, fixed: float | None = None) -> dict[str, Any]:
    """Compare results with a baseline. A cell fails when a gated metric moves the wrong way by more
    than its tolerance (the noise band of :func:`tolerance`, or ``fixed`` for every metric: a regression test of
    one method, where any move beyond float noise is the method's doing), or when it was ok in the baseline
    and failed now. Missing and new cells are reported; a missing cell fails the gate, a new one does not."""
    df, _ = load_frame(results)
    now = {cell_id(r): r for _, r in df.iterrows()}
    base = baseline["cells"]
    drops, rows = [], []
    for cid, b in sorted(base.items()):
        if cid not in now:
            continue
        r = now[cid]
        if b.get("status") == "ok" and r.status != "ok":
            drops.append({"cell": cid, "metric": "status", "baseline": "ok", "now": f"failed: {r.error}",
                          "change": None, "tolerance": None})
            continue
        for metric in GATED:
            sign = direction(metric)
            bv, nv = b.get(metric), _num(r[metric])
            if bv is None or nv is None:
                continue
            tol = tolerance(metric, b) if fixed is None else fixed
            change = nv - bv
            row = {"cell": cid, "metric": metric, "baseline": bv, "now": nv, "change": change, "tolerance": tol}
            rows.append(row)
            if sign * change < -tol:
                drops.append(row)
    missing = sorted(set(base) - set(now))
    new = sorted(set(now) - set(base))
    return {"drops": drops, "missing": missing, "new": new, "compared": rows, "ok": not drops and not missing}


def format_check(rep: dict[str, Any]) -> str:
    lines = []
    n_cells = len({r["cell"] for r in rep["compared"]})
    if rep["drops"]:
        lines.append(f"{len(rep['drops'])} score(s) got worse beyond their tolerance:")
        lines.append(f"  {'cell':<44}{'metric':<10}{'baseline':>10}{'now':>10}{'change':>10}{'tolerance':>11}")
        for d in rep["drops"]:
            if d["metric"] == "status":
                lines.append(f"  {d['cell']:<44}{'status':<10}{'ok':>10}  {d['now']}")
                continue
            lines.append(f"  {d['cell']:<44}{d['metric']:<10}{d['baseline']:>10.4f}{d['now']:>10.4f}"
                         f"{d['change']:>+10.4f}{d['tolerance']:>11.4f}")
    for cid in rep["missing"]:
        lines.append(f"missing cell (in the baseline, not in the results): {cid}")
    for cid in rep["new"]:
        lines.append(f"new cell (not in the baseline; not gated): {cid}")
    lines.append(("PASS" if rep["ok"] else "FAIL") + f": {n_cells} cells compared, {len(rep['drops'])} worse, "
                 f"{len(rep['missing'])} missing, {len(rep['new'])} new")
    return "\n".join(lines)



EXACT_FIELDS = ("primary", "ci", "parts", "slices", "per_image", "transfer_ratio", "proxy", "gap")


def _same(a: Any, b: Any) -> bool:
    """Equal as stored, NaN equal to NaN (floats compared exactly)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


def check_exact(baseline: str | Path | Sequence[str | Path], results: str | Path | Sequence[str | Path]
                ) -> dict[str, Any]:
    """Compare two sets of results (folders or exports) with zero tolerance, cell by cell (cells are
    matched by task, method, budget and seed; their keys may differ)."""
    def cells(src: Any) -> dict[str, dict[str, Any]]:
        recs = read_sources([src] if isinstance(src, str | Path) else list(src))
        return {f"{r['cell']['task']}/{r['cell']['method']}/n{r['cell']['budget']}/s{r['cell']['seed']}": r
                for r in sorted(recs, key=lambda r: (r.get("timing") or {}).get("finished_at", 0.0))}

    base, now = cells(baseline), cells(results)
    differ = []
    for cid in sorted(set(base) & set(now)):
        b, n = base[cid], now[cid]
        if b["status"] != n["status"]:
            differ.append({"cell": cid, "field": "status", "baseline": b["status"], "now": n["status"]})
            continue
        bs, ns = b.get("scores") or {}, n.get("scores") or {}
        for f in EXACT_FIELDS:
            if not _same(bs.get(f), ns.get(f)):
                differ.append({"cell": cid, "field": f, "baseline": bs.get(f), "now": ns.get(f)})
    missing, new = sorted(set(base) - set(now)), sorted(set(now) - set(base))
    compared = len(set(base) & set(now))
    return {"compared": compared, "differ": differ, "missing": missing, "new": new,
            "ok": not differ and not missing and compared > 0}


def format_exact(rep: dict[str, Any]) -> str:
    lines = []
    for d in rep["differ"]:
        lines.append(f"  {d['cell']:<44}{d['field']:<16}{_short(d['baseline'])} -> {_short(d['now'])}")
    if lines:
        lines.insert(0, f"{len(rep['differ'])} field(s) differ:")
    lines += [f"missing cell (in the baseline, not in the results): {c}" for c in rep["missing"]]
    lines += [f"new cell (not in the baseline): {c}" for c in rep["new"]]
    lines.append(("IDENTICAL" if rep["ok"] else "DIFFERENT") + f": {rep['compared']} cells compared exactly "
                 f"(primary, interval, parts, slices, per-output scores, transfer ratio), {len(rep['differ'])} fields "
                 f"differ, {len(rep['missing'])} missing, {len(rep['new'])} new")
    return "\n".join(lines)


def _short(x: Any) -> str:
    text = json.dumps(x, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
