"""``editbench submit`` (bundle one method's results) and ``editbench verify`` (re-run a sample of a bundle)."""

from __future__ import annotations

import argparse

from .common import add_executor_args, csv, executor_from, positive_int


def submit(args: argparse.Namespace) -> int:
    from editbench.leaderboard.submissions import submit as make_bundle

    m = make_bundle(args.method, args.results, args.out, suite=args.suite, declare_failed=tuple(args.declare_failed or ()),
                    wheel=args.wheel)
    failed = f", {len(m['declared_failed'])} declared failed" if m["declared_failed"] else ""
    print(f"bundle of {m['method']['name']} ({m['method']['kind']}): {m['cells']} cells of suite {m['suite']['name']}"
          f"{failed}, {len(m['files'])} files hashed -> {args.out}\nnext: editbench verify {args.out}")
    return 0


def verify(args: argparse.Namespace) -> int:
    from editbench.leaderboard.submissions import format_verification
    from editbench.leaderboard.submissions import verify as run_verify

    rep = run_verify(args.bundle, seed=args.seed, exact=args.exact, min_cells=args.min_cells, fraction=args.fraction,
                     executor=executor_from(args), workers=args.workers, timeout_s=args.timeout)
    print(format_verification(rep))
    return 0 if rep["verified"] else 1


def _fraction(text: str) -> float:
    x = float(text)
    if not 0 < x <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return x


def register(sub) -> None:
    from editbench.harness import SUITES

    p = sub.add_parser("submit", help="bundle one method's results for the leaderboard (verified with editbench verify)")
    p.add_argument("--method", required=True, help="the method, as the run named it (name, module:Class or file.py:Class)")
    p.add_argument("--results", required=True, help="the results folder editbench run wrote")
    p.add_argument("--out", required=True, help="the bundle folder to write")
    p.add_argument("--suite", choices=SUITES.names(), default="quick", help="the suite the results are of")
    p.add_argument("--declare-failed", type=csv(str), default=None, metavar="ID,...",
                   help="failed cells the bundle declares as such (task/n<budget>/s<seed>), or all")
    p.add_argument("--wheel", default=None, help="an installed method's wheel, whose hash the bundle records")
    p.set_defaults(func=submit)
    p = sub.add_parser("verify", help="check a bundle's manifest and re-run a seeded random sample of its cells")
    p.add_argument("bundle")
    p.add_argument("--seed", type=int, default=None, help="the sample's seed (default: drawn afresh, and recorded)")
    p.add_argument("--exact", action="store_true", help="compare exactly (the same machine), not within the gate's tolerance")
    p.add_argument("--min-cells", type=positive_int, default=8, help="re-run at least this many cells (default 8)")
    p.add_argument("--fraction", type=_fraction, default=0.05, help="or this share of them, if more (default 0.05)")
    add_executor_args(p)
    p.set_defaults(func=verify)
