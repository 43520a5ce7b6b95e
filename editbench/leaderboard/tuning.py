"""The search every method got, and how much a larger one would still gain (``tuning.md``).

Each tuning cell (``tune`` > 1, on a seed no table scores) holds its search: the trials, the best
configuration on dev, the dev noise of the best (bootstrap standard error) beside its margin over the
runner-up, the fields tuned to the edge of their space, and the best's test score; where the suite asks for
it (``regret``), the same search run several times longer, whose best the scored cells then use. The *regret*
of a method on a task is what the larger search gains over the matched one: on dev (never negative: the larger
search starts with the same trials) and on test (where the dev gain may not carry over). A search's *late gain*
is what its last third of trials added to the best of its first two thirds: where it exceeds twice the best's dev
noise the search was still climbing when it stopped, and more trials would likely find more.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from editbench.core.search import CLIMBING_SE, late_gain, scored_search, still_climbing

from .tables import fmt


def _short(config: dict[str, Any]) -> str:
    def v(x: Any) -> str:
        return f"{x:.3g}" if isinstance(x, float) else str(x)
    return ", ".join(f"{k} {v(x)}" for k, x in sorted(config.items()))


def tuning_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per tuning cell (ok ones), with its search and, where measured, the regret."""
    rows = []
    for _, r in df[(df.role == "tuning") & (df.status == "ok")].iterrows():
        s = r.search if isinstance(r.search, dict) else {}
        if "best" not in s:
            continue
        row = {"track": r.track, "task": r.task, "method": r.method, "family": r.family, "budget": int(r.budget),
               "trials": s.get("trials"), "distinct": s.get("distinct"), "best": json.dumps(s["best"], sort_keys=True),
               "dev": s.get("dev_primary"), "dev_se": s.get("dev_se"), "margin": s.get("margin"),
               "edges": ",".join(s.get("edges") or []), "test": s.get("test_primary"),
               "trials_large": math.nan, "dev_large": math.nan, "test_large": math.nan, "regret_dev": math.nan,
               "regret_test": math.nan, "regret_of": int(r.get("regret", 1) or 1), "grow": int(r.get("grow", 0) or 0),
               "trials_grown": math.nan, "dev_grown": math.nan, "test_grown": math.nan}
        devs = r.get("trial_devs")
        big, grown = s.get("larger"), s.get("grown")
        top = scored_search(s)  # the search whose best the scored cells use: all the cell's trials
        devs = list(devs) if isinstance(devs, list) else []
        row["late_gain"] = late_gain(devs)
        row["scored_se"] = top.get("dev_se") or 0.0  # the dev noise of that best
        row["climbing"] = still_climbing(devs, row["scored_se"])
        row["scored"] = json.dumps(top["best"], sort_keys=True)  # what the scored cells use
        if grown:
            row.update(trials_grown=grown.get("trials"), dev_grown=grown.get("dev_primary"),
                       test_grown=grown.get("test_primary"), edges_grown=",".join(grown.get("edges") or []))
        if big:
            row.update(trials_large=big.get("trials"), dev_large=big.get("dev_primary"), test_large=big.get("test_primary"),
                       regret_dev=big["dev_primary"] - s["dev_primary"],
                       regret_test=(big.get("test_primary") or math.nan) - (s.get("test_primary") or math.nan),
                       edges_large=",".join(big.get("edges") or []))
        rows.append(row)
    cols = ["track", "task", "method", "family", "budget"]
    return pd.DataFrame(_with_probes(rows)).sort_values(cols).reset_index(drop=True) if rows else pd.DataFrame(columns=cols)


def _with_probes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A regret probe (a tuning cell run with a larger search at a budget whose scored cells use the matched one,
    ``editbench run --regret 256:3 --tuning-only``) is folded into the matched search's row: the row stays the
    matched search's (its best is what the scored cells use), the probe gives it the larger search's columns."""
    longest: dict[tuple, dict[str, Any]] = {}  # a search that grew: its longest cell holds all the shorter's trials
    for row in rows:
        k = (row["track"], row["task"], row["method"], row["budget"], row["regret_of"])
        if k not in longest or row["grow"] > longest[k]["grow"]:
            longest[k] = row
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in longest.values():
        groups.setdefault((row["track"], row["task"], row["method"], row["budget"]), []).append(row)
    out = []
    for g in groups.values():
        matched = [r for r in g if not math.isfinite(r["trials_large"])]
        larger = [r for r in g if math.isfinite(r["trials_large"])]
        if not (matched and larger):
            out += g
            continue
        base, probe = matched[0], larger[0]
        base.update({k: probe[k] for k in ("trials_large", "dev_large", "test_large")},  # its edges are not the scored
                    regret_dev=probe["dev_large"] - base["dev"],
                    regret_test=(probe["test_large"] or math.nan) - (base["test"] or math.nan), probe=True)
        out.append(base)
    return out


def regret_of(tuning: pd.DataFrame) -> dict[tuple[str, str, int], float]:
    """(task, method, budget) -> what a larger search would still gain: the larger of its dev and test gains where
    the regret was measured, and at least the late gain of a search still climbing when it stopped (what its last
    third of trials added: more trials would likely add more); none below zero. A search with neither is absent."""
    out = {}
    for _, r in tuning.iterrows():
        gains = []
        if math.isfinite(r.get("regret_dev", math.nan)):
            gains += [r.regret_dev, r.regret_test if math.isfinite(r.regret_test) else 0.0]
        if bool(r.get("climbing", False)):
            gains.append(r.late_gain)
        if gains:
            out[(r.task, r.method, int(r.budget))] = max(*gains, 0.0)
    return out


def regret_at(regret: dict[tuple[str, str, int], float], task: str, method: str, budget: int) -> float:
    """A method's regret on a task at the measured budget nearest ``budget`` (NaN where none was measured)."""
    measured = [b for (t, m, b) in regret if t == task and m == method]
    if not measured:
        return math.nan
    near = min(measured, key=lambda b: (abs(math.log(b) - math.log(max(budget, 1))), -b))
    return regret[(task, method, near)]


def _typical(values: list[Any], dim: Any) -> Any:
    """The value a set of tuned values agrees on: the most frequent option (ties to the earliest in the
    space), the median of a range (on a log scale where the range is logarithmic) at two significant digits,
    an integer range's rounded."""
    from editbench.core.search import Choice, LogFloat, LogInt

    if isinstance(dim, Choice):
        return max(dim.values, key=lambda v: (values.count(v), -dim.values.index(v)))
    log = type(dim) in (LogFloat, LogInt)
    xs = sorted(math.log(v) if log else float(v) for v in values)
    mid = (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2
    v = math.exp(mid) if log else mid
    if isinstance(dim, LogInt) or all(isinstance(x, int) and not isinstance(x, bool) for x in values):
        return int(round(v))
    return float(f"{v:.2g}")


def tuned_defaults(t: pd.DataFrame, budget: int = 16) -> pd.DataFrame:
    """Per (track, method): what the searches at ``budget`` agree on over the tasks (:func:`_typical` of each
    searched field) beside the method's default now, and whether they match: a method's default is what its
    tuning picks at the headline budget, so the quick suite and CI run tuned methods."""
    from editbench.core.search import dimension
    from editbench.methods import resolve

    rows = []
    for (track, method), g in t[t.budget == budget].groupby(["track", "method"]):
        try:
            cls = resolve(method)
        except Exception:  # noqa: BLE001 - a method this version cannot load has no default to compare with
            continue
        space, now = cls.space(track), cls(track=track).config.as_dict()
        bests = [json.loads(b) for b in (g.scored if "scored" in g else g.best)]  # the configs the scored cells use
        for name, spec in sorted(space.items()):
            vals = [b[name] for b in bests if name in b]
            if not vals:
                continue
            picked = _typical(vals, dimension(spec))
            rows.append({"track": track, "method": method, "field": name, "tasks": len(vals), "tuned": picked,
                         "default": now.get(name), "matches": picked == now.get(name)})
    return pd.DataFrame(rows, columns=["track", "method", "field", "tasks", "tuned", "default", "matches"])


def _scored(r: Any, what: str) -> Any:
    """A row's ``what`` (trials, dev, test) of the search whose best the scored cells use: grown, larger, matched."""
    for col in (f"{what}_grown", f"{what}_large", what):
        v = r.get(col, math.nan)
        if not (isinstance(v, float) and math.isnan(v)) and v is not None:
            return int(v) if what == "trials" else v
    return math.nan


def _late(r: Any) -> str:
    g = r.get("late_gain", math.nan)
    if not isinstance(g, float) or math.isnan(g):
        return "-"
    return f"{g:+.3f}" + (" climbing" if r.get("climbing") else "")


def _convergence(t: pd.DataFrame) -> str:
    """The searches still climbing in their last third of trials (``late gain``), per method and one by one."""
    if "late_gain" not in t or not t.late_gain.notna().any():
        return ""
    seen = t[t.late_gain.notna()]
    up = seen[seen.climbing.astype(bool)]
    grew = int((seen.grow > 0).sum()) if "grow" in seen else 0
    text = (f"## Did the searches converge?\n\nA search's late gain is what its last third of trials added to the best "
            f"of the first two thirds, over all its trials (the search whose best the scored cells use: the larger "
            f"one where the suite ran one, grown where it grew). A search whose late gain exceeds {CLIMBING_SE:g} "
            f"standard errors of its best's dev score was still climbing; the suite grows such a search to twice its "
            f"trials (`Suite.grow` times) before its best is handed on. {grew} of {len(seen)} searches grew; "
            f"{len(up)} {'was' if len(up) == 1 else 'were'} still climbing when they stopped: more trials would likely "
            f"find a better configuration for them, so their cells are the method's score under this search, a lower "
            f"bound on its best.\n\n")
    if up.empty:
        return text
    view = pd.DataFrame([{"track": r.track, "task": r.task, "method": r.method, "n": str(r.budget),
                          "trials": str(_scored(r, "trials")), "late gain": f"{r.late_gain:+.3f}",
                          "best on dev ± se": f"{fmt(_scored(r, 'dev'))} ± {fmt(r.scored_se)}"}
                         for _, r in up.iterrows()])
    return text + view.to_markdown(index=False, disable_numparse=True) + "\n\n"


def tuning_markdown(t: pd.DataFrame, meta_line: str) -> str:
    """``tuning.md``: every search, its noise and edges, and the regret table per method."""
    if t.empty:
        return "No tuning cells in these results.\n"
    view = pd.DataFrame([{
        "task": r.task, "method": r.method, "n": str(r.budget), "trials (distinct)": f"{r.trials} ({r.distinct})",
        "best on dev": _short(json.loads(r.best)), "dev ± se": f"{fmt(r.dev)} ± {fmt(r.dev_se)}",
        "margin": fmt(r.margin), "at edge": r.edges or "-", "test": fmt(r.test),
        "larger search: trials, dev, test": "-" if not math.isfinite(r.dev_large) else
        f"{int(r.trials_large)}, {fmt(r.dev_large)}, {fmt(r.test_large)}",
        "regret dev / test": "-" if not math.isfinite(r.regret_dev) else f"{r.regret_dev:+.3f} / {r.regret_test:+.3f}",
        "grown: trials, dev, test": "-" if not math.isfinite(r.get("dev_grown", math.nan)) else
        f"{int(r.trials_grown)}, {fmt(r.dev_grown)}, {fmt(r.test_grown)}",
        "late gain": _late(r),
    } for _, r in t.iterrows()])
    reg = t[t.regret_dev.notna()]
    summary = ""
    if not reg.empty:
        per = reg.groupby(["track", "method"]).agg(tasks=("task", "nunique"), dev_mean=("regret_dev", "mean"),
                                                   dev_max=("regret_dev", "max"), test_mean=("regret_test", "mean"),
                                                   test_max=("regret_test", "max")).reset_index()
        per_view = pd.DataFrame([{"track": r.track, "method": r.method, "tasks": str(r.tasks),
                                  "regret on dev: mean, max": f"{r.dev_mean:+.3f}, {r.dev_max:+.3f}",
                                  "regret on test: mean, max": f"{r.test_mean:+.3f}, {r.test_max:+.3f}"}
                                 for _, r in per.iterrows()])
        summary = ("## Regret per method\n\nWhat the larger search gains over the matched one, over the tasks where "
                   "both ran. Where a larger search ran, the scored cells use its best (every method searched alike), "
                   "so the regret says what the matched trials at the other tuned budgets may still leave.\n\n"
                   + per_view.to_markdown(index=False, disable_numparse=True) + "\n\n")
    summary += _convergence(t)
    scored_edges = t.edges
    for col in ("edges_large", "edges_grown"):  # the edges of the search whose best the scored cells use
        if col in t:
            scored_edges = t[col].where(t[col].notna(), scored_edges)
    edges = int((scored_edges.fillna("") != "").sum())
    d = tuned_defaults(t)
    if not d.empty:
        dv = d.assign(tuned=d.tuned.map(str), default=d.default.map(str), matches=d.matches.map({True: "yes", False: "no"}))
        summary += ("## Defaults: what the search picks at n = 16\n\nEach method's default configuration (the quick "
                    "suite's and CI's) is what its searches at n = 16 agree on over the tasks: the most frequent option, "
                    "the median of a range (log scale for rates and counts).\n\n"
                    + dv.to_markdown(index=False, disable_numparse=True) + "\n\n")
    return (f"Every method's search, per task and tuned budget, on the tuning seed (never scored); {meta_line}.\n\n"
            f"{len(t)} searches; {edges} whose configuration for the scored cells has a value at the edge of its "
            "space.\n\n" + summary
            + "## Every search\n\n" + view.to_markdown(index=False, disable_numparse=True) + "\n")
