"""``editbench experiment``: studies beside the suites: activation reporting (seed 004), trust (the judge
against the proxy: over-optimisation and evaluator quality) and the text editors' ablations."""

from __future__ import annotations

import argparse
from pathlib import Path

from editbench.core import UserError

from .common import add_executor_args, csv, executor_from


def _models(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, folder = pair.partition("=")
        if not sep or not name or not folder:
            raise UserError(f"--model takes NAME=FOLDER (e.g. large=runs/lm-large/lm), got {pair!r}")
        out[name] = folder
    return out


def activations(args: argparse.Namespace) -> int:
    from editbench.experiments.activations import GRIDS, MODELS, run_grid, summary_rows

    models = _models(args.model)
    for name in models:
        if name not in MODELS:
            raise UserError(f"unknown model {name!r} in --model; known: {', '.join(MODELS)}")
    if args.lm:
        models["base"] = args.lm
    grid = GRIDS["quick" if args.quick else args.grid]
    if args.only:
        bad = [m for m in args.only if m not in MODELS]
        if bad:
            raise UserError(f"unknown model {bad[0]!r} in --only; known: {', '.join(MODELS)}")
        grid = grid.only(args.only)
    rep = run_grid(args.out, grid, models, executor=executor_from(args), workers=args.workers, timeout_s=args.timeout)
    for r in summary_rows(rep["records"]):
        extra = (f" drift {r['drift']:.3f} causal {r['causal_shift']:+.2f}" if r["reporter"] == "self"
                 else " (another model reports)")
        print(f"{r['size']:<6} {r['layer']:<24} neuron {r['neuron']:<4} {r['mode']:<4} n={r['n_train']:<5} "
              f"accuracy {r['accuracy']:.3f} [{r['accuracy_lo']:.3f}, {r['accuracy_hi']:.3f}] mae {r['mae']:.2f} "
              f"probe {r['probe_ceiling']:.3f}{extra}")
    for f in rep["failed"]:
        print(f"FAILED {f['point']['layer']} neuron {f['point']['neuron']}: {f['error']}")
    print(f"{len(rep['records'])} points ok, {len(rep['failed'])} failed ({rep['ran']} run now in "
          f"{rep['wall_s']:.0f} s wall); tables and plots in {args.out}")
    return 1 if rep["failed"] else 0


def trust(args: argparse.Namespace) -> int:
    from editbench.experiments.trust import GRIDS, run_trust
    from editbench.leaderboard import write_trust
    from editbench.leaderboard.trust import evaluator_view, overoptimisation_view

    grid = GRIDS["quick" if args.quick else args.grid]
    rep = run_trust(args.out, grid, executor=executor_from(args), workers=args.workers, timeout_s=args.timeout)
    res = write_trust(Path(args.out) / "cells", args.out)
    print(overoptimisation_view(res["overoptimisation"]).to_markdown(index=False, disable_numparse=True))
    print()
    print(evaluator_view(res["evaluators"]).to_markdown(index=False, disable_numparse=True))
    for t in rep["timings"]:
        if t["status"] != "ok":
            print(f"FAILED {t['task']} {t['method']} n={t['budget']} seed {t['seed']}: {t['error']}")
    print(f"{rep['cells']} cells ({rep['ran']} run now, {rep['failed']} failed) in {rep['wall_s']:.0f} s wall; "
          f"tables and plots in {args.out}")
    return 1 if rep["failed"] else 0


def ablation(args: argparse.Namespace) -> int:
    from editbench.experiments.ablation import ROWS, Ablation, run_ablation

    if args.method not in ROWS:
        raise UserError(f"no ablation for method {args.method!r}; known: {', '.join(ROWS)}")
    records = run_ablation(Ablation(args.method, args.task, args.n), args.out, rows=args.row or None)
    for r in records:
        noise = "-" if r["dev_noise"] is None else f"{r['dev_noise']:.3f}"
        print(f"{r['row']:<48} {r['mean']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] noise {noise}")
    print(f"{len(records)} rows; table in {Path(args.out) / (args.method + '.md')}")
    return 0


def compute(args: argparse.Namespace) -> int:
    from editbench.experiments.compute import run_more_compute

    t = run_more_compute(args.results, args.out, args.factor, args.budget, args.methods, args.tasks, args.seeds,
                         args.workers, executor_from(args), progress=True)
    for _, r in t.iterrows():
        print(f"{r.task:<22} {r.method:<17} s{r.seed}  tuned {r.tuned:.3f} [{r.ci_lo:.3f}, {r.ci_hi:.3f}]  "
              f"{r.factor:g}x {r.more:.3f}  {r.verdict}")
    print(f"{(t.verdict == 'higher').sum()} of {len(t)} cells above their interval; table in "
          f"{Path(args.out) / 'more_compute.md'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("experiment", help="studies that are not edit tasks")
    s = p.add_subparsers(dest="experiment", required=True, parser_class=type(p))
    a = s.add_parser("activations", help="can the lamp LM be finetuned to report one of its own neurons?")
    a.add_argument("--out", required=True, help="folder for the points (resumable), tables and plots")
    a.add_argument("--grid", choices=("default", "quick"), default="default")
    a.add_argument("--quick", action="store_true", help="the quick grid: two layers of the shipped LM, one training "
                   "size (CI)")
    a.add_argument("--lm", default=None, help="the base lamp LM's folder (default: the shipped one)")
    a.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER",
                   help="replace one of the grid's models (small, base, large, control) by a folder")
    a.add_argument("--only", type=csv(str), default=None, metavar="NAMES",
                   help="run only these models' points (e.g. base or small,base,control)")
    add_executor_args(a, "point")
    a.set_defaults(func=activations)
    t = s.add_parser("trust", help="the judge against the proxy: over-optimisation and evaluator quality")
    t.add_argument("--out", required=True, help="folder for the cells (resumable), tables and plots")
    t.add_argument("--grid", choices=("default", "quick"), default="default")
    t.add_argument("--quick", action="store_true", help="the quick grid: one seed, two evaluator budgets, two "
                   "evaluators (CI)")
    add_executor_args(t)
    t.set_defaults(func=trust)
    b = s.add_parser("ablation", help="a text editor's settings against its reference algorithm, on the dev split")
    b.add_argument("--method", required=True, help="rome, memit, steer, iti or neuron_clamp")
    b.add_argument("--out", required=True, help="folder for the rows (resumable) and the table")
    b.add_argument("--task", default="text/unlit_lamps")
    b.add_argument("--n", type=int, default=16, help="evidence budget")
    b.add_argument("--row", action="append", default=[], help="run only this row (repeatable)")
    b.set_defaults(func=ablation)
    c = s.add_parser("compute", help="would published finetuning cells score higher with k times their tuned compute?")
    c.add_argument("--results", required=True, help="a results folder or export holding the published cells")
    c.add_argument("--out", required=True, help="folder for the cells (resumable) and the table")
    c.add_argument("--factor", type=float, default=4.0)
    c.add_argument("--budget", type=int, default=256)
    c.add_argument("--methods", type=csv(str), default=None)
    c.add_argument("--tasks", type=csv(str), default=None)
    c.add_argument("--seeds", type=csv(int), default=None)
    add_executor_args(c)
    c.set_defaults(func=compute)
