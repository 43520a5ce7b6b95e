"""``editbench run``: a suite's grid of tasks x methods x budgets x seeds, resumable, with the timing
report (and the leaderboard, with ``--leaderboard``)."""

from __future__ import annotations

import argparse
import dataclasses

from editbench.tracks import TRACKS

from .common import UsageError, add_executor_args, checkpoints, csv, executor_from


def run(args: argparse.Namespace) -> int:
    from editbench.benchmarks import TASKS, get_task
    from editbench.harness import SUITES, estimate_full, make_grid, run_named_suite
    from editbench.methods import METHODS, resolve
    from editbench.tracks import get_track

    suite = SUITES.get(args.suite)
    if args.regret is not None:
        if suite.tune <= 1:
            raise UsageError(f"--regret extends a search; suite {suite.name!r} searches nothing")
        suite = dataclasses.replace(suite, regret={**suite.regret, **args.regret})
    if args.tune_budgets is not None:
        if suite.tune <= 1:
            raise UsageError(f"--tune-budgets says where to search; suite {suite.name!r} searches nothing")
        if any(b < 1 for b in args.tune_budgets):
            raise UsageError(f"tuned budgets must be >= 1, got {args.tune_budgets}")
        suite = dataclasses.replace(suite, tune_budgets=tuple(args.tune_budgets))
    tasks = args.tasks or sorted(TASKS)
    for t in tasks:
        get_task(t)
    if args.track:
        get_track(args.track)
        tasks = [t for t in tasks if get_task(t).track == args.track]
        if not tasks:
            raise UsageError(f"no task of track {args.track!r} among {args.tasks}")
    methods = args.methods or list(METHODS)
    for m in methods:
        resolve(m)
    budgets, seeds = args.budgets or list(suite.budgets), args.seeds or list(suite.seeds)
    if any(b < 1 for b in budgets) or any(s < 0 for s in seeds):
        raise UsageError(f"budgets must be >= 1 and seeds >= 0, got {budgets} and {seeds}")
    if (args.activations or args.trust) and not args.leaderboard:
        raise UsageError("--activations and --trust add studies to the page: they need --leaderboard")
    from .leaderboard import check_studies

    check_studies(args.activations, args.trust)
    from editbench.harness.grid import searches, uses_evaluator

    more_seeds = suite.more_seeds_for(args.seeds)
    grid = make_grid(tasks, methods, budgets, seeds, more_seeds=more_seeds)
    n_cells = len(grid) + sum(uses_evaluator(c.method) and (not suite.evaluator_budgets or c.budget in suite.evaluator_budgets)
                              for c in grid) * sum(e != "proxy" for e in suite.evaluators)
    tuned = [b for b in (suite.tune_budgets or budgets) if b in budgets] or budgets
    n_tuning = (sum(searches(c.method, c.task) for c in make_grid(tasks, methods, [tuned[0]], [seeds[0]])) * len(tuned)
                if suite.tune > 1 else 0)
    print(f"suite {suite.name}: {len(tasks)} tasks x {len(methods)} methods (where a method supports the task's track) x "
          f"budgets {budgets} x seeds {seeds}"
          + "".join(f" (at n = {b} also {list(x)})" for b, x in more_seeds.items() if b in budgets)
          + f" = {n_cells} cells"
          + (f", after {n_tuning} tuning cells ({suite.tune} trials each on seed {suite.tune_seed}, at n = {tuned}"
             + "".join(f"; {r}x at n = {b}" for b, r in suite.regret.items() if b in tuned)
             + "".join(f"; n = {b} starting from n = {w}'s best" for b, w in suite.warm.items() if b in tuned)
             + ("; a search still climbing in its last third goes on to twice its trials ("
                + ("once" if suite.grow == 1 else f"{suite.grow} times") + " at most)"
                if suite.grow and not args.tuning_only else "")
             + ")" if n_tuning else "")
          + f" -> {args.out}")
    if args.tuning_only and suite.tune <= 1:
        raise UsageError(f"--tuning-only runs the tuning cells; suite {suite.name!r} searches nothing")
    if args.status:
        from editbench.harness import plan_named_suite, status_table, suite_status

        # the whole suite's plan (its finished cells price the rest), shown at the budgets asked for
        plan = plan_named_suite(suite, tasks, methods, seeds=args.seeds, checkpoints=checkpoints(args))
        rows = [r for r in suite_status(plan, args.out)
                if r["budget"] in budgets and not (args.tuning_only and r["kind"] != "tuning")]
        print(status_table(rows, args.workers))
        return 0
    rep = run_named_suite(suite, tasks, methods, args.out, budgets=budgets, seeds=args.seeds, executor=executor_from(args),
                          workers=args.workers, timeout_s=args.timeout, checkpoints=checkpoints(args),
                          scored=not args.tuning_only)
    print(f"\n{rep['ran']} cells run, {rep['skipped']} already done; {rep['ok']} ok, {rep['failed']} failed; "
          f"wall {rep['wall_s']:.0f} s")
    w = max([len(t["task"]) for t in rep["timings"]] + [12]) + 2
    print(f"{'task':<{w}}{'method':<17}{'n':>4}{'seed':>5}{'status':>8}{'primary':>9}{'seconds':>9}")
    for t in rep["timings"]:
        prim = f"{t['primary']:.3f}" if t.get("primary") is not None else "-"
        print(f"{t['task']:<{w}}{t['method']:<17}{t['budget']:>4}{t['seed']:>5}{t['status']:>8}{prim:>9}"
              f"{t['total_s']:>9.1f}" + (f"  {t['error']}" if t["error"] else ""))
    if suite.name == "quick" and rep["ran"]:
        parts: dict[str, float] = {}
        est = estimate_full(rep, breakdown=parts)
        print(f"estimated full suite (same tasks and methods): {est / 3600:.1f} h on one worker, "
              f"{est / 3600 / args.workers:.1f} h on {args.workers}; the most: "
              + ", ".join(f"{k} {v / 3600:.1f} h" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])[:4] if v > 0))
    if args.leaderboard:
        from .leaderboard import build_and_print

        build_and_print([args.out], args.leaderboard, None, args.activations, args.trust)
    return 0


def regret_spec(text: str) -> dict[int, int]:
    """``16:3,256:3`` -> {16: 3, 256: 3}."""
    out = {}
    for part in (p for p in text.split(",") if p.strip()):
        try:
            b, r = (int(x) for x in part.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected budget:factor pairs such as 16:3,256:3, got {text!r}") from None
        if b < 1 or r < 1:
            raise argparse.ArgumentTypeError(f"budgets and factors must be >= 1, got {part!r}")
        out[b] = r
    return out


def register(sub) -> None:
    from editbench.harness import SUITES

    p = sub.add_parser("run", help="run a suite: tasks x methods x budgets x seeds, resumable")
    p.add_argument("--suite", choices=SUITES.names(), default="quick")
    p.add_argument("--track", default=None, choices=TRACKS.names(), help="only this track's tasks")
    p.add_argument("--tasks", type=csv(str), default=None, help="comma-separated (default: all)")
    p.add_argument("--methods", type=csv(str), default=None, help="comma-separated (default: all registered)")
    p.add_argument("--budgets", type=csv(int), default=None)
    p.add_argument("--seeds", type=csv(int), default=None)
    p.add_argument("--out", required=True, help="results folder (one JSON per cell)")
    p.add_argument("--regret", type=regret_spec, default=None, metavar="N:R,...",
                   help="where a tuning cell's search goes on to R times its trials, by budget (added to the suite's; "
                        "for example 256:3; 16:1 turns the suite's off at 16)")
    p.add_argument("--tuning-only", action="store_true",
                   help="run the tuning cells and stop: a regret probe (with --regret) beside the results whose scored "
                        "cells use the matched search")
    p.add_argument("--tune-budgets", type=csv(int), default=None, metavar="N,...",
                   help="the budgets tuning cells search at, the others taking the nearest (replaces the suite's; "
                        "for example 1,4,16,64,256 to tune every budget directly)")
    p.add_argument("--status", action="store_true",
                   help="run nothing: how far --out has got through the suite (cells done, in flight, to do, waiting "
                        "on a search) and roughly the cell time left, priced from the cells it has finished")
    add_executor_args(p)
    p.add_argument("--generator", default=None)
    p.add_argument("--meter", default=None, help="the proxy meter's folder (evidence labeller and evaluator)")
    p.add_argument("--judge", default=None, help="the judge meter's folder (every image score)")
    p.add_argument("--lm", default=None)
    p.add_argument("--leaderboard", default=None, metavar="DIR",
                   help="then build the leaderboard from the results folder into DIR")
    p.add_argument("--activations", default=None, metavar="DIR",
                   help="with --leaderboard: add the activation-reporting study in DIR to the page "
                        "(the published one: leaderboard/activations)")
    p.add_argument("--trust", default=None, metavar="DIR",
                   help="with --leaderboard: add the trust study in DIR to the page (the published one: leaderboard/trust)")
    p.set_defaults(func=run)
