"""``editbench edit``: fit one method on a task's evidence, score it through the one scorer, and write a
before/after grid."""

from __future__ import annotations

import argparse
import time

from .common import UsageError, checkpoints, method_instance, positive_int, seed


def edit(args: argparse.Namespace) -> int:
    import torch

    from editbench.benchmarks import EVIDENCE_SEED, evidence_world, get_task
    from editbench.benchmarks.scoring import score
    from editbench.core import Budget
    from editbench.harness import Session, fit
    from editbench.methods import failures_reported
    from editbench.world.viz import save_grid

    method = method_instance(args.method, args.config)
    task = get_task(args.task)
    if task.track == "image" and not args.out.lower().endswith(".png"):
        raise UsageError(f"--out must be a .png file for an image task, got {args.out!r}")
    session = Session(task.track, checkpoints(args))
    session.models  # noqa: B018 - a bad checkpoint is refused before the method runs
    request = session.track.request(task.request)
    budget = Budget(n=args.n, evaluator_calls=args.evaluator_calls, seed=EVIDENCE_SEED + args.seed)
    t0 = time.perf_counter()
    with failures_reported(args.method, shown=method.name):
        e = fit(method, session, request, budget, evidence_world(task), args.evaluator)
        s = score(task, e, session, split=args.split, n=args.eval_n, n_boot=300, keep=args.show)
    seconds = time.perf_counter() - t0
    pics = s["pictures"]
    k = len(pics["before"])
    if isinstance(pics["before"], torch.Tensor):
        labels = [f"before: {c}" for c in pics["captions"]] + [f"after ({method.name})"] * k
        save_grid(torch.cat([pics["before"], pics["after"]]), labels, args.out, cols=k,
                  title=f"{method.name} on {task.name}, n={args.n}")
    else:  # descriptions: before and after, one caption at a time
        from editbench.core import io

        pairs = [f"caption: {c}\n  before: {b}\n  after:  {a}"
                 for c, b, a in zip(pics["captions"], pics["before"], pics["after"], strict=True)]
        io.write_text(args.out, "\n".join(pairs) + "\n")
        print("\n".join(pairs[:2]))
    if args.save_edit:
        e.save(args.save_edit)
    cost = e.cost()
    parts = ", ".join(f"{p} {v:.3f}" for p, v in s["parts"].items())
    print(f"method {method.name} ({method.family}) on {task.name} ({task.request}), budget n={args.n}, seed {args.seed}")
    print(f"fit {cost.fit_seconds:.1f} s; parameters changed {cost.params_changed}; examples used {cost.examples_used}; "
          f"evaluator calls {cost.evaluator_calls}; fit and scoring {seconds:.1f} s")
    print(f"{args.split} split, {args.eval_n} outputs per slice: primary {s['primary']:.3f} "
          f"[{s['ci'][0]:.3f}, {s['ci'][1]:.3f}] (the judge's); {parts}")
    g = s["gap"]
    print(f"the proxy reads {s['proxy']['primary']:.3f}: proxy-judge gap {g['point']:+.3f} "
          f"[{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}] (evaluator: {args.evaluator})")
    print(f"wrote {args.out}" + (f" and the edit to {args.save_edit}" if args.save_edit else ""))
    return 0


def register(sub) -> None:
    p = sub.add_parser("edit", help="fit one method on a task's evidence, score it, and write a before/after grid")
    p.add_argument("--method", required=True, help="a registered name, pkg.module:Class or file.py:Class")
    p.add_argument("--task", default="unlit_lamps", help="the task whose request, evidence and split are used")
    p.add_argument("--n", type=positive_int, default=16, help="evidence examples")
    p.add_argument("--evaluator-calls", type=int, default=512, help="evaluator calls allowed (methods that use them)")
    p.add_argument("--evaluator", default="proxy", help="who labels the evidence and answers evaluator calls: proxy, "
                   "weak or noisy (scores always come from the judge)")
    p.add_argument("--config", default=None, help="method config: JSON text or a JSON file")
    p.add_argument("--seed", type=seed, default=0, help="evidence seed")
    p.add_argument("--split", choices=("dev", "test"), default="test")
    p.add_argument("--eval-n", type=positive_int, default=64, help="outputs scored per slice")
    p.add_argument("--show", type=positive_int, default=8, help="pairs in the grid")
    p.add_argument("--out", required=True, help="output: a .png grid (image tasks) or a text file (text tasks)")
    p.add_argument("--save-edit", default=None, help="folder to save the edit in")
    p.add_argument("--generator", default=None)
    p.add_argument("--meter", default=None)
    p.add_argument("--judge", default=None)
    p.add_argument("--lm", default=None)
    p.set_defaults(func=edit)
