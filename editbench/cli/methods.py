"""``editbench methods list|check``: the registered methods, and the checks every method gets."""

from __future__ import annotations

import argparse

from .common import Parser, UsageError, checkpoints, json_object, positive_int


def list_(args: argparse.Namespace) -> int:
    from editbench.core import RegistryError
    from editbench.methods import METHODS

    rows = []
    for name, entry in METHODS.entries().items():
        source = f"{entry.source} ({entry.target})"
        try:
            cls = METHODS.get(name)
        except RegistryError as e:
            rows.append((name, "broken", "-", "-", f"{entry.source}: {e}"))
            continue
        rows.append((name, cls.family, cls.consumes, ",".join(cls.tracks), source))
    order = {"reference": 0, "edit": 1, "finetune": 2, "prompt": 3}
    rows.sort(key=lambda r: (order.get(r[1], 9), r[0]))
    w = max([len(r[3]) for r in rows] + [10]) + 2
    print(f"{'method':<18}{'family':<11}{'consumes':<10}{'tracks':<{w}}source")
    for name, family, consumes, tracks, source in rows:
        print(f"{name:<18}{family:<11}{consumes:<10}{tracks:<{w}}{source}")
    return 0


def check(args: argparse.Namespace) -> int:
    from editbench.benchmarks import get_task
    from editbench.harness import Session
    from editbench.harness.checks import check_method, format_checks
    from editbench.methods import resolve

    cls = resolve(args.method)  # an unknown or broken method is a usage error before anything loads
    task = get_task(args.task)
    if task.track not in cls.tracks:
        raise UsageError(f"method {args.method!r} supports tracks {list(cls.tracks)}; task {task.name!r} is on the "
                         f"{task.track!r} track (choose --task of a track it supports)")
    session = Session(task.track, checkpoints(args))
    checks = check_method(args.method, json_object(args.config, "method config"), session=session, task=args.task,
                          n=args.n, evaluator_calls=args.evaluator_calls)
    print(format_checks(args.method, checks))
    return 1 if any(c.passed is False for c in checks) else 0


def register(sub) -> None:
    methods = sub.add_parser("methods", help="editing, finetuning and prompting methods")
    msub = methods.add_subparsers(dest="methods_command", required=True, parser_class=Parser)
    p = msub.add_parser("list", help="every method: name, family, evidence, tracks, source")
    p.set_defaults(func=list_)
    p = msub.add_parser("check", help="run the checks every method gets (reversible, saves and loads, budget, "
                        "deterministic, direction); exit 1 if one fails")
    p.add_argument("method", help="a registered name, pkg.module:Class or file.py:Class")
    p.add_argument("--config", default=None, help="method config: JSON text or a JSON file")
    p.add_argument("--task", default="unlit_lamps", help="the task whose evidence and request the checks use")
    p.add_argument("--n", type=positive_int, default=16, help="evidence examples")
    p.add_argument("--evaluator-calls", type=int, default=256)
    p.add_argument("--generator", default=None)
    p.add_argument("--meter", default=None)
    p.set_defaults(func=check)
