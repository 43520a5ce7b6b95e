"""``editbench leaderboard build|export|restore|changes``: tables, plots and a static page from stored results; a
committed export written out, or read back into a results folder that a run extends; what a new build changed of
an earlier one's conclusions."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import Parser, UsageError, positive_int


def check_studies(activations: str | None, trust: str | None) -> None:
    """The study folders a page names must hold their tables (checked before anything runs)."""
    for flag, folder, name, command in (("--activations", activations, "activations.json", "activations"),
                                        ("--trust", trust, "trust.json", "trust")):
        if folder and not (Path(folder) / name).exists():
            raise UsageError(f"{flag} {folder}: no {name} there (write it with editbench experiment {command} --out DIR)")


def build_and_print(results: list[str], out: str, budget: int | None, activations: str | None = None,
                    trust: str | None = None, on_conflict: str = "error", submissions: str | None = None) -> None:
    from editbench.leaderboard import publish

    check_studies(activations, trust)
    res = publish(results, out, budget=budget, activations=activations, trust=trust, on_conflict=on_conflict,
                  submissions=submissions)
    print("\n" + res["markdown"])
    print(f"leaderboard written to {out}/ (open {Path(out) / 'index.html'})")


def build(args: argparse.Namespace) -> int:
    build_and_print(args.results, args.out, args.budget, args.activations, args.trust, args.on_conflict,
                    args.submissions)
    return 0


def export(args: argparse.Namespace) -> int:
    from editbench.results import export as export_results
    from editbench.results import read_records

    if not args.out.endswith(".jsonl.gz"):
        raise UsageError(f"--out must end in .jsonl.gz, got {args.out!r}")
    read_records(args.results)  # refuse what cannot be read before writing anything
    dropped: dict[int, str] = {}
    leave_out = None
    if args.suite:
        from editbench.harness import SUITES
        from editbench.harness.grid import not_of_suite

        SUITES.get(args.suite)

        def leave_out(recs: list) -> set[int]:
            dropped.update(not_of_suite(recs, args.suite))
            return set(dropped)
    n = export_results(args.results, args.out, leave_out)
    print(f"{n} cell records written to {args.out}")
    if dropped:
        from collections import Counter

        print(f"{len(dropped)} left out, cells a run of suite {args.suite} would not use: "
              + "; ".join(f"{k} ({v})" for k, v in Counter(dropped.values()).most_common()))
    return 0


def restore(args: argparse.Namespace) -> int:
    from editbench.harness import restore as restore_results

    n = restore_results(args.results, args.out)
    print(f"{n['restored']} cell records restored to {args.out}, {n['kept']} already there"
          + (f"; {n['stale']} skipped: their key differs in this version of editbench (another package, task or schema "
             f"version), so a run recomputes them" if n["stale"] else ""))
    return 0


def changes(args: argparse.Namespace) -> int:
    from editbench.core import io
    from editbench.leaderboard.families import protocol_changes, protocol_changes_markdown, read_families

    c = protocol_changes(read_families(args.before), read_families(args.after))
    md = protocol_changes_markdown(c)
    print(md)
    if args.out:
        io.write_text(Path(args.out), md)
        io.write_text(Path(args.out).with_suffix(".csv"), c.to_csv(index=False))
        print(f"written to {args.out} and {Path(args.out).with_suffix('.csv')}")
    return 0


def register(sub) -> None:
    lb = sub.add_parser("leaderboard", help="tables, plots and a static page from stored results")
    lbsub = lb.add_subparsers(dest="leaderboard_command", required=True, parser_class=Parser)
    p = lbsub.add_parser("build", help="write leaderboard.{md,csv,json,tex}, families.{md,csv}, plots, grids and index.html")
    p.add_argument("--results", required=True, action="append",
                   help="a results folder written by editbench run, or an export (.jsonl.gz); repeat to put several "
                        "side by side (e.g. your method's results with the published export)")
    p.add_argument("--out", required=True, help="output folder (e.g. site/)")
    p.add_argument("--budget", type=positive_int, default=None, help="evidence budget of the tables (default 16)")
    p.add_argument("--activations", default=None, metavar="DIR",
                   help="add the activation-reporting study in DIR to the page (e.g. leaderboard/activations)")
    p.add_argument("--trust", default=None, metavar="DIR",
                   help="add the trust study in DIR to the page (e.g. leaderboard/trust)")
    p.add_argument("--submissions", default=None, metavar="DIR",
                   help="verified submission bundles (e.g. leaderboard/submissions), shown beside the other rows and "
                        "marked 'verified: k of N cells re-run'")
    p.add_argument("--on-conflict", choices=("error", "latest"), default="error",
                   help="a cell two sources give different results for: an error naming it (default), or the "
                        "later-finished result")
    p.set_defaults(func=build)
    p = lbsub.add_parser("export", help="write a results folder's records to one .jsonl.gz (to commit)")
    p.add_argument("--results", required=True)
    p.add_argument("--out", required=True, help="output .jsonl.gz")
    p.add_argument("--suite", default=None, help="leave out the cells a run of this suite would not use (searches "
                                                 "of an earlier protocol, configurations no longer handed on)")
    p.set_defaults(func=export)
    p = lbsub.add_parser("restore", help="write an export's records into a results folder, so a run there extends them "
                                         "(e.g. more seeds on the published suite) without recomputing them")
    p.add_argument("--results", required=True, help="an export (.jsonl.gz) or a results folder")
    p.add_argument("--out", required=True, help="the results folder a later editbench run --out extends")
    p.set_defaults(func=restore)
    p = lbsub.add_parser("changes", help="each conclusion of one leaderboard's families table against another's: "
                                         "held, flipped, became a tie, tie resolved")
    p.add_argument("--before", required=True, help="the earlier leaderboard folder (or its families.csv)")
    p.add_argument("--after", required=True, help="the newer leaderboard folder (or its families.csv)")
    p.add_argument("--out", default=None, help="also write the table here (.md, with a .csv beside it)")
    p.set_defaults(func=changes)
