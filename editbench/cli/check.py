"""``editbench check``: the score gate against a committed baseline, or (``--exact``) a zero-tolerance
comparison of two sets of results."""

from __future__ import annotations

import argparse


def check(args: argparse.Namespace) -> int:
    from editbench import leaderboard as L

    if args.exact:
        rep = L.check_exact(args.baseline, args.results)
        print(L.format_exact(rep))
        return 0 if rep["ok"] else 1
    if args.update:
        b = L.write_baseline(args.results, args.baseline, new_only=args.new_only)
        what = "extended with the new cells of" if args.new_only else "rewritten from"
        print(f"baseline {args.baseline} {what} {args.results}: {len(b['cells'])} cells")
        return 0
    rep = L.check(L.read_baseline(args.baseline), args.results, fixed=args.tolerance)
    print(L.format_check(rep))
    return 0 if rep["ok"] else 1


def register(sub) -> None:
    p = sub.add_parser("check", help="score gate: compare results with a baseline; exit 1 if a score dropped")
    p.add_argument("--baseline", default="leaderboard/baseline.json",
                   help="the baseline JSON (with --exact: a results folder or export to compare with)")
    p.add_argument("--results", required=True)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--update", action="store_true", help="rewrite the baseline from the results (deliberately)")
    mode.add_argument("--exact", action="store_true",
                      help="compare two sets of results with zero tolerance: every cell's scores identical bit for bit")
    p.add_argument("--tolerance", type=float, default=None, metavar="T",
                   help="fail a cell whose score drops by more than T (default: its noise band, half its 95%% interval "
                        "and at least 0.01); a method's own regression test on the deterministic suite uses a small T")
    p.add_argument("--new-only", action="store_true",
                   help="with --update: keep the baseline's cells and add only new ones (a new track or method)")
    p.set_defaults(func=check)
