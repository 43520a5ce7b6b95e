"""``editbench ci init``: CI for a method author's own repository. It writes a shell script that installs
editbench as the README does, runs the quick suite on the author's method and gates it against the author's
committed baseline (``editbench check``), and a GitHub Actions workflow that runs that script (any other CI
system runs the script alone)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from .common import UsageError

SCRIPT = """#!/usr/bin/env bash
# Score {method} on editbench's quick suite and gate it against this repository's committed baseline.
# Written by `editbench ci init` (editbench {version}); run that command again to refresh it.
#   first time, and whenever a score should move: bash {script} --update   (then commit {baseline})
#   in CI: bash {script}   (exit 0: no score got worse beyond its noise band; 1: one did)
# EDITBENCH_PYTHON: use that interpreter's environment as it is (it has editbench and the method) instead of
# making .editbench-venv; EDITBENCH_SPEC: what pip installs editbench from (default editbench=={version}).
set -euo pipefail
cd "$(dirname "$0")/{up}"
METHOD={method_q}
TASKS={tasks_q}
BASELINE={baseline_q}
OUT="${{EDITBENCH_OUT:-results/editbench-ci}}"
if [ -n "${{EDITBENCH_PYTHON:-}}" ]; then
  PY="$EDITBENCH_PYTHON"
else
  python3 -m venv .editbench-venv
  PY=.editbench-venv/bin/python
  "$PY" -m pip install --quiet torch==2.13.0   # the CPU wheel, as editbench's README installs it
  "$PY" -m pip install --quiet "${{EDITBENCH_SPEC:-editbench=={version}}}"
  if [ -f pyproject.toml ] || [ -f setup.py ]; then "$PY" -m pip install --quiet -e .; fi
fi
rm -rf "$OUT"
"$PY" -m editbench.cli run --suite quick --methods "$METHOD" ${{TASKS:+--tasks "$TASKS"}} --out "$OUT"
if [ "${{1:-}}" = "--update" ]; then
  "$PY" -m editbench.cli check --update --baseline "$BASELINE" --results "$OUT"
else
  # the suite is deterministic: on another machine a score moves by float noise only (well under 0.02), so a
  # larger drop is the method's own doing; look at it, and run with --update where it was meant
  "$PY" -m editbench.cli check --baseline "$BASELINE" --results "$OUT" --tolerance "${{EDITBENCH_TOLERANCE:-0.02}}"
fi
"""

WORKFLOW = """# Score {method} on editbench's quick suite on every push and pull request (written by `editbench ci init`).
name: editbench
on: [push, pull_request]
jobs:
  editbench:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: bash {script}
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: editbench-results
          path: results/editbench-ci
"""


def init(args: argparse.Namespace) -> int:
    from editbench import __version__
    from editbench.benchmarks import get_task
    from editbench.methods import resolve

    cls = resolve(args.method)  # the method must load here before CI is written for it
    for t in args.tasks or ():
        if get_task(t).track not in cls.tracks:
            raise UsageError(f"task {t!r} is on the {get_task(t).track} track; {cls.name!r} runs on {list(cls.tracks)}")
    root = Path(args.repo)
    script, workflow = root / "ci" / "editbench.sh", root / ".github" / "workflows" / "editbench.yml"
    if not args.force and (script.exists() or workflow.exists()):
        raise UsageError(f"{script if script.exists() else workflow} exists; pass --force to replace it")
    rel = "ci/editbench.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    workflow.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(SCRIPT.format(method=args.method, version=__version__, script=rel, baseline=args.baseline, up="..",
                                    method_q=shlex.quote(args.method), tasks_q=shlex.quote(",".join(args.tasks or [])),
                                    baseline_q=shlex.quote(args.baseline)))
    script.chmod(0o755)
    workflow.write_text(WORKFLOW.format(method=args.method, script=rel))
    print(f"wrote {script} and {workflow}\nnext: bash {script} --update, then commit {args.baseline}, "
          f"{script.relative_to(root)} and {workflow.relative_to(root)}")
    return 0


def register(sub) -> None:
    from .common import Parser, csv

    ci = sub.add_parser("ci", help="CI for a method author's own repository")
    csub = ci.add_subparsers(dest="ci_command", required=True, parser_class=Parser)
    p = csub.add_parser("init", help="write ci/editbench.sh and a GitHub Actions workflow that runs it")
    p.add_argument("--method", required=True, help="the method as the suite should name it (name, module:Class, "
                   "or file.py:Class relative to the repository)")
    p.add_argument("--repo", default=".", help="the repository to write into (default: here)")
    p.add_argument("--tasks", type=csv(str), default=None, help="the quick suite's tasks to run (default: every task "
                   "of the method's tracks)")
    p.add_argument("--baseline", default="editbench-baseline.json", help="the committed baseline, relative to the "
                   "repository (default editbench-baseline.json)")
    p.add_argument("--force", action="store_true", help="replace files written before")
    p.set_defaults(func=init)
