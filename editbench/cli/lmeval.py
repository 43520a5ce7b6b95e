"""``editbench lm-eval``: the lamp tasks for lm-evaluation-harness, edited lamp LMs scored by it, and edits
exported as plain Hugging Face model folders."""

from __future__ import annotations

import argparse
import time

from .common import UsageError, csv, method_instance, positive_int, seed


def tasks(args: argparse.Namespace) -> int:
    from editbench.tracks.text.lm_tasks import TASKS, write_tasks

    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        raise UsageError(f"unknown lamp task(s) {unknown}; choose from {list(TASKS)}")
    written = write_tasks(args.out, tuple(args.tasks))
    print(f"wrote {len(written)} lm-eval task(s) to {args.out}: {', '.join(args.tasks)}")
    print(f"run them: lm_eval --model hf --model_args pretrained=<lm folder>,dtype=float32 --include_path {args.out} "
          f"--tasks {','.join(args.tasks)}")
    return 0


def run(args: argparse.Namespace) -> int:
    import json

    from editbench.benchmarks import EVIDENCE_SEED, evidence_world, get_task
    from editbench.core import Budget, Edit, io
    from editbench.harness import Session, fit
    from editbench.methods import failures_reported
    from editbench.results.provenance import provenance
    from editbench.tracks import get_track
    from editbench.tracks.text.lm_tasks import default_folder, evaluate, task_manager

    folder = args.task_dir or default_folder()
    manager = task_manager(folder)  # a missing folder is refused before anything loads
    unknown = [t for t in args.tasks if t not in manager.all_tasks]
    if unknown:
        raise UsageError(f"unknown lm-eval task(s) {unknown} in {str(folder)!r}; it holds {sorted(manager.all_tasks)}")
    task = get_task(args.task)
    if task.track != "text":
        raise UsageError(f"--task must be a text task (lm-eval scores the lamp LM), got {task.name!r}")
    ckpt = {"lm": args.lm} if args.lm else {}
    session = Session("text", ckpt)
    lm = session.models["lm"]
    t0 = time.perf_counter()
    if args.edit:
        edit, name = Edit.load(args.edit), f"edit {args.edit}"
    elif args.method:
        method = method_instance(args.method, args.config)
        with failures_reported(args.method, shown=method.name):
            edit = fit(method, session, session.track.request(task.request),
                       Budget(args.n, args.evaluator_calls, seed=EVIDENCE_SEED + args.seed), evidence_world(task))
        name = f"{method.name} fitted on {task.name} (n={args.n}, seed {args.seed})"
    else:
        edit, name = Edit("none"), "the unedited LM"
    if not edit.uses_model:
        raise UsageError(f"{name} does not change the LM (it answers with the world's outputs); lm-eval scores models")
    with failures_reported(args.method or "none", " during lm-eval"):
        results = evaluate(lm, args.tasks, folder, edit, limit=args.limit, batch_size=args.batch_size)
    seconds = time.perf_counter() - t0
    print(f"lm-eval on {name}, {seconds:.1f} s")
    for t, r in results.items():
        shown = ", ".join(f"{k} {v:.4f}" + (f" ± {r[k + '_stderr']:.4f}" if isinstance(r.get(k + "_stderr"), float) else "")
                          for k, v in r.items() if not k.endswith("_stderr"))
        print(f"  {t}: {shown}")
    if args.out:
        record = {"edit": name, "method": args.method, "config": json.loads(json.dumps(edit.config)),
                  "results": results, "seconds": seconds, "task_dir": str(folder),
                  "provenance": provenance(get_track("text"), ckpt)}
        io.write_json(args.out, record)  # atomic: no partial file if anything above failed
        print(f"wrote {args.out}")
    return 0


def export(args: argparse.Namespace) -> int:
    from editbench.core import Edit, MethodError, io
    from editbench.tracks.text import load_lm

    edit = Edit.load(args.edit)
    lm = load_lm(args.lm)
    try:
        edit.merge_into(lm)
    except MethodError as e:
        raise UsageError(f"the edit in {args.edit!r} does not export as a model folder: {e}") from None

    def fill(tmp) -> None:
        lm.save_pretrained(tmp, safe_serialization=True)
        lm.tokenizer.save_pretrained(tmp)
    io.write_dir(args.out, fill)
    print(f"wrote the edited LM ({edit.method}, {len(edit.deltas)} weight(s) changed) to {args.out}; it loads in "
          "GPT2LMHeadModel.from_pretrained and lm_eval --model hf")
    return 0


def register(sub) -> None:
    p = sub.add_parser("lm-eval", help="lm-evaluation-harness: the lamp tasks, edited LMs, exported edits")
    s = p.add_subparsers(dest="lm_eval_command", required=True, parser_class=type(p))
    from editbench.tracks.text.lm_tasks import COLLATERAL_TASKS, TASKS

    t = s.add_parser("tasks", help="write the lamp tasks (YAML + JSONL data) for lm_eval --include_path")
    t.add_argument("--out", required=True, help="folder to write the tasks into")
    t.add_argument("--tasks", type=csv(str), default=list(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    t.set_defaults(func=tasks)

    r = s.add_parser("run", help="score the lamp LM, fitted with a method or a saved edit, through lm-eval's HFLM")
    r.add_argument("--tasks", type=csv(str), default=list(COLLATERAL_TASKS), help="lm-eval task names")
    r.add_argument("--task-dir", default=None, help="folder of lm-eval tasks (default: the lamp tasks, cached)")
    r.add_argument("--method", default=None, help="fit this method first (a registered name or reference)")
    r.add_argument("--edit", default=None, help="or apply an edit saved with 'editbench edit --save-edit'")
    r.add_argument("--config", default=None, help="method config: JSON text or a JSON file")
    r.add_argument("--task", default="text/unlit_lamps", help="the editbench task whose evidence the method is fitted on")
    r.add_argument("--n", type=positive_int, default=16, help="evidence examples")
    r.add_argument("--evaluator-calls", type=int, default=512)
    r.add_argument("--seed", type=seed, default=0)
    r.add_argument("--limit", type=positive_int, default=None, help="documents per task (lm-eval's --limit)")
    r.add_argument("--batch-size", type=positive_int, default=32)
    r.add_argument("--lm", default=None, help="lamp LM folder (default: the shipped one)")
    r.add_argument("--out", default=None, help="write the results as JSON here")
    r.set_defaults(func=run)

    e = s.add_parser("export", help="a saved weight edit applied to the LM, written as a plain HF model folder")
    e.add_argument("--edit", required=True, help="a folder written by 'editbench edit --save-edit'")
    e.add_argument("--out", required=True, help="the model folder to write")
    e.add_argument("--lm", default=None, help="the LM the edit was fitted on (default: the shipped one)")
    e.set_defaults(func=export)
