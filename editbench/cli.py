"""The ``editbench`` command line.

Every failure the user can cause (unknown option, bad value, malformed config, unreadable file)
ends with one line ``editbench: error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_USAGE = 2


class UsageError(Exception):
    """A problem with what the user asked for; shown as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative seed, got {text!r}")
    return value


def _load_world(config_path: str | None):
    from editbench.world import ConfigError, World, WorldConfig

    if config_path is None:
        return World()
    path = Path(config_path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"world config {str(path)!r} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"world config {str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"world config {str(path)!r} must be a JSON object of WorldConfig fields")
    try:
        return World(WorldConfig.from_dict(data))
    except (ConfigError, TypeError) as e:
        raise UsageError(f"world config {str(path)!r}: {e}") from None


# ---- world ---------------------------------------------------------------------------------------
def cmd_world_show(args: argparse.Namespace) -> int:
    from editbench.world.viz import save_grid

    world = _load_world(args.config)
    batch = world.sample(args.n, seed=args.seed)
    out = save_grid(batch.images, batch.captions, args.out, cols=args.cols,
                    title=f"editbench lamp world, seed {args.seed}")
    print(f"wrote {out} ({args.n} scenes, seed {args.seed})")
    return 0


def cmd_world_stats(args: argparse.Namespace) -> int:
    from editbench.world.stats import format_stats, world_stats

    stats = world_stats(_load_world(args.config), args.n, seed=args.seed)
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def cmd_world_write(args: argparse.Namespace) -> int:
    from editbench.world.dataset import write_dataset

    out = write_dataset(_load_world(args.config), args.out, args.n, args.seed, shard_size=args.shard_size)
    print(f"wrote {args.n} examples to {out}")
    return 0


# ---- train -------------------------------------------------------------------------------------
def _bf16(args: argparse.Namespace) -> bool:
    if args.bf16 == "auto":
        import torch

        from editbench.models.train import pick_device

        return pick_device(args.device).type == "cuda" and torch.cuda.is_bf16_supported()
    return args.bf16 == "on"


def cmd_train_generator(args: argparse.Namespace) -> int:
    from editbench.models.train import train_generator

    out = train_generator(
        args.out, steps=args.steps, seed=args.seed, batch_size=args.batch_size, device=args.device,
        bf16=_bf16(args), ckpt_every=args.ckpt_every, sample_every=args.sample_every, resume=args.resume,
        g_lr=args.g_lr, d_lr=args.d_lr, ema_decay=args.ema_decay, marginal_weight=args.marginal_weight,
        init_from=args.init_from,
    )
    print(f"generator saved in {out / 'generator'}")
    return 0


def cmd_train_meter(args: argparse.Namespace) -> int:
    from editbench.models.train import train_meter

    out = train_meter(
        args.out, steps=args.steps, seed=args.seed, batch_size=args.batch_size, device=args.device,
        bf16=_bf16(args), ckpt_every=args.ckpt_every, resume=args.resume,
    )
    print(f"meter saved in {out / 'meter'}")
    return 0


# ---- models --------------------------------------------------------------------------------------
def _load_model(kind: str, path: str | None):
    """The generator, its discriminator or the meter at ``path`` (None: the shipped one); a bad checkpoint is a usage error."""
    from editbench import models

    loader = {"generator": models.load_generator, "discriminator": models.load_discriminator,
              "meter": models.load_meter}[kind]
    try:
        return loader(path)
    except models.CheckpointError as e:
        raise UsageError(str(e)) from None


def cmd_models_ship(args: argparse.Namespace) -> int:
    """Copy a training run's models into an assets folder in half precision (what the package ships)."""
    import shutil

    from editbench import models

    run, assets = Path(args.run), Path(args.assets)
    kinds = {"generator": ("generator", "discriminator"), "meter": ("meter",)}[args.kind]
    loaded = {name: _load_model(name, str(run / name)) for name in kinds}  # check everything before replacing anything
    for name, model in loaded.items():
        tmp = assets / f".{name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        models.save_half(model, tmp)
        card = assets / name / "MODEL_CARD.md"
        if card.exists():
            shutil.copy2(card, tmp / "MODEL_CARD.md")
        if (assets / name / "samples.png").exists():
            shutil.copy2(assets / name / "samples.png", tmp / "samples.png")
        if (assets / name).exists():
            shutil.rmtree(assets / name)
        tmp.rename(assets / name)
        print(f"{name}: {run / name} -> {assets / name} (float16, {models.checkpoint_hash(assets / name, name)})")
    print("now re-run `editbench models report` and update the model card's figures")
    return 0


def cmd_models_report(args: argparse.Namespace) -> int:
    from editbench.models.report import format_report, full_report

    _load_model("generator", args.generator), _load_model("meter", args.meter)  # refuse bad checkpoints first
    rep = full_report(n=args.n, generator_path=args.generator, meter_path=args.meter, seed=args.seed)
    print(json.dumps(rep, indent=2) if args.json else format_report(rep))
    return 0


def cmd_models_layers(args: argparse.Namespace) -> int:

    G = _load_model("generator", args.generator)
    print(f"{'layer':<12}{'units':>7}{'grid':>8}")
    for info in G.editable_layers().values():
        print(f"{info.name:<12}{info.channels:>7}{info.resolution:>5}x{info.resolution}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from editbench.world.viz import save_grid

    G = _load_model("generator", args.generator)
    if args.caption is None:
        from editbench.world import World

        captions = World().sample(args.n, seed=args.seed).captions
        title = f"captions of {args.n} sampled scenes (seed {args.seed})"
    else:
        words = args.caption.lower().replace(",", " , ").split()
        unknown = sorted({w for w in words if w not in G.tokenizer.vocab})
        if unknown:
            raise UsageError(f"caption words not in the vocabulary: {unknown} (see editbench.world.captions.VOCAB)")
        captions = [args.caption] * args.n
        title = f'"{args.caption}" (seed {args.seed})'
    images = G.generate(captions, seed=args.seed)
    out = save_grid(images, None if args.caption else captions, args.out, cols=args.cols, title=title)
    print(f"wrote {out} ({args.n} samples)")
    return 0


def cmd_models_show_meter(args: argparse.Namespace) -> int:
    import torch

    from editbench.world import World
    from editbench.world.viz import save_grid

    M = _load_model("meter", args.meter)
    if args.generator is not None or args.samples:

        captions = World().sample(args.n, seed=args.seed).captions
        images = _load_model("generator", args.generator).generate(captions, seed=args.seed)
    else:
        images = World().sample(args.n, seed=args.seed).images
    r = M.read(images)

    def gray(m):
        return (m / m.amax((1, 2), keepdim=True).clamp_min(1e-6))[:, None].expand(-1, 3, -1, -1)

    rows = [images, gray(r.shade), gray(r.light1), gray(r.light2)]
    labels = []
    for i in range(args.n):
        labels.append(f"{int(r.count[i])} lamps, {int(r.lit[i].sum())} lit, ambient {float(r.ambient[i]):.2f}")
    labels += ["shade"] * args.n + ["first-order light"] * args.n + ["second-order light"] * args.n
    out = save_grid(torch.cat(rows), labels, args.out, cols=args.n, title="what the lamp meter reads")
    print(f"wrote {out}")
    return 0


# ---- methods ---------------------------------------------------------------------------------------
def cmd_methods_list(args: argparse.Namespace) -> int:
    from editbench.registry import RegistryError, available, describe

    rows = []
    for spec in available().values():
        try:
            spec = describe(spec)
        except RegistryError as e:
            rows.append((spec.name, "broken", "-", f"{spec.source}: {e}"))
            continue
        rows.append((spec.name, spec.family, spec.consumes, f"{spec.source} ({spec.target})"))
    print(f"{'method':<18}{'family':<11}{'consumes':<10}source")
    for name, family, consumes, source in rows:
        print(f"{name:<18}{family:<11}{consumes:<10}{source}")
    return 0


def _resolve_method(name: str, config: str | None):
    from editbench.registry import RegistryError, resolve

    try:
        cls = resolve(name)
    except RegistryError as e:
        raise UsageError(str(e)) from None
    cfg = {}
    if config:
        try:
            cfg = json.loads(Path(config).read_text()) if Path(config).is_file() else json.loads(config)
        except json.JSONDecodeError as e:
            raise UsageError(f"method config is not valid JSON: {e}") from None
        if not isinstance(cfg, dict):
            raise UsageError("method config must be a JSON object")
    try:
        return cls(cfg)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None


def cmd_edit(args: argparse.Namespace) -> int:
    import time

    import torch

    from editbench.api import Budget, EditRequest, edited_generate, fit_method
    from editbench.world import World
    from editbench.world.viz import save_grid

    method = _resolve_method(args.method, args.config)
    try:
        request = EditRequest.named(args.request)
    except ValueError as e:
        raise UsageError(str(e)) from None
    G, M = _load_model("generator", args.generator), _load_model("meter", args.meter)
    world = World()
    budget = Budget(n=args.n, evaluator_calls=args.evaluator_calls, seed=args.seed)
    t0 = time.perf_counter()
    try:
        edit = fit_method(method, G, M, world, request, budget)
    except Exception as e:  # noqa: BLE001 - a method's failure is reported, never a traceback
        raise UsageError(f"method {method.name!r} failed: {type(e).__name__}: {e}") from None
    fit_s = time.perf_counter() - t0
    held = world.sample(args.eval_n, seed=2**42 + args.seed)
    if method.renders_world:
        before = held.images
        after, _ = world.render(request.apply(held.scene))
    else:
        z = G.make_latents(args.eval_n, seed=2**42 + args.seed)
        before = G.generate(held.captions, z=z)
        after = edited_generate(edit, G, held.captions, z)
    if not torch.isfinite(after).all():
        raise UsageError(f"method {method.name!r} produced non-finite images")
    lb, la = M.read(before).light1.sum((1, 2)), M.read(after).light1.sum((1, 2))
    reduction = 1 - float(la.mean()) / max(float(lb.mean()), 1e-9)
    k = min(args.show, args.eval_n)
    grid = torch.cat([before[:k], after[:k]])
    labels = [f"before: {c}" for c in held.captions[:k]] + [f"after ({method.name})" for _ in range(k)]
    save_grid(grid, labels, args.out, cols=k, title=f"{method.name}, {request.name}, n={args.n}")
    if args.save_edit:
        edit.save(args.save_edit)
    cost = edit.cost()
    print(f"method {method.name} ({method.family}), request {request.name}, budget n={args.n}")
    print(f"fit {fit_s:.1f} s; parameters changed {cost.params_changed}; examples used {cost.examples_used}; "
          f"evaluator calls {cost.evaluator_calls}")
    print(f"measured first-order lamp light on {args.eval_n} held-out samples: {float(lb.mean()):.2f} -> "
          f"{float(la.mean()):.2f} ({100 * reduction:.1f}% less)")
    print(f"wrote {args.out}")
    return 0


# ---- run -------------------------------------------------------------------------------------------
def _csv(kind: type):
    def parse(text: str) -> list:
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") from None
    return parse


def cmd_run(args: argparse.Namespace) -> int:
    from editbench import runner
    from editbench.benchmarks import TASKS
    from editbench.registry import RegistryError, available, resolve

    suite = runner.SUITES[args.suite]
    tasks = args.tasks or sorted(TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise UsageError(f"unknown task(s) {unknown}; choose from {sorted(TASKS)}")
    methods = args.methods or list(available())
    for m in methods:
        try:
            resolve(m)
        except RegistryError as e:
            raise UsageError(str(e)) from None
    budgets, seeds = args.budgets or suite["budgets"], args.seeds or suite["seeds"]
    if any(b < 1 for b in budgets) or any(s < 0 for s in seeds):
        raise UsageError(f"budgets must be >= 1 and seeds >= 0, got {budgets} and {seeds}")
    n_cells = len(tasks) * len(methods) * len(budgets) * len(seeds)
    print(f"suite {args.suite}: {len(tasks)} tasks x {len(methods)} methods x budgets {budgets} x seeds {seeds}"
          f" = {n_cells} cells -> {args.out}")
    rep = runner.run_suite(tasks, methods, budgets, seeds, args.out, tune=suite["tune"], tune_at=suite.get("tune_at"),
                           executor=args.executor, workers=args.workers, timeout_s=args.timeout,
                           n_eval=suite["n_eval"], n_dev=suite["n_dev"], n_boot=suite["n_boot"],
                           generator=args.generator, meter=args.meter)
    print(f"\n{rep['ran']} cells run, {rep['skipped']} already done; {rep['ok']} ok, {rep['failed']} failed; "
          f"wall {rep['wall_s']:.0f} s")
    print(f"{'task':<14}{'method':<17}{'n':>4}{'seed':>5}{'status':>8}{'primary':>9}{'seconds':>9}")
    for t in rep["timings"]:
        prim = f"{t['primary']:.3f}" if t.get("primary") is not None else "-"
        print(f"{t['task']:<14}{t['method']:<17}{t['budget']:>4}{t['seed']:>5}{t['status']:>8}{prim:>9}"
              f"{t['total_s']:>9.1f}" + (f"  {t['error']}" if t["error"] else ""))
    if args.suite == "quick" and rep["ran"]:
        est = runner.estimate_full(rep)
        print(f"estimated full suite (same tasks and methods): {est / 3600:.1f} h on one worker, "
              f"{est / 3600 / args.workers:.1f} h on {args.workers}")
    if args.leaderboard:
        _build_leaderboard(args.out, args.leaderboard, None)
    return 0


def _build_leaderboard(results: str, out: str, budget: int | None) -> None:
    from editbench import leaderboard as L

    res = L.publish(results, out, budget=budget)
    print("\n" + res["markdown"])
    print(f"leaderboard written to {out}/ (open {Path(out) / 'index.html'})")


def cmd_leaderboard_build(args: argparse.Namespace) -> int:
    _build_leaderboard(args.results, args.out, args.budget)
    return 0


def cmd_leaderboard_export(args: argparse.Namespace) -> int:
    from editbench import leaderboard as L

    if not args.out.endswith(".jsonl.gz"):
        raise UsageError(f"--out must end in .jsonl.gz, got {args.out!r}")
    n = L.export(args.results, args.out)
    print(f"{n} cell records written to {args.out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from editbench import leaderboard as L

    if args.update:
        b = L.write_baseline(args.results, args.baseline)
        print(f"baseline {args.baseline} rewritten from {args.results}: {len(b['cells'])} cells")
        return 0
    rep = L.check(L.read_baseline(args.baseline), args.results)
    print(L.format_check(rep))
    return 0 if rep["ok"] else 1


def build_parser() -> argparse.ArgumentParser:
    from editbench import __version__

    parser = _Parser(
        prog="editbench", description="editbench: when does editing a model beat finetuning or prompting it?"
    )
    parser.add_argument("--version", action="version", version=f"editbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    world = sub.add_parser("world", help="the procedural lamp world")
    wsub = world.add_subparsers(dest="world_command", required=True, parser_class=_Parser)

    def world_common(p: argparse.ArgumentParser, n_default: int) -> None:
        p.add_argument("--n", type=_positive_int, default=n_default, help="number of scenes")
        p.add_argument("--seed", type=_seed, default=0)
        p.add_argument("--config", default=None, help="world config JSON (WorldConfig fields)")

    show = wsub.add_parser("show", help="write a labelled grid of sampled scenes with their captions")
    world_common(show, 16)
    show.add_argument("--out", required=True, help="output .png")
    show.add_argument("--cols", type=_positive_int, default=None)
    show.set_defaults(func=cmd_world_show)

    stats = wsub.add_parser("stats", help="print the measured distribution of the world")
    world_common(stats, 10_000)
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=cmd_world_stats)

    write = wsub.add_parser("write", help="render a dataset to safetensors shards")
    world_common(write, 10_000)
    write.add_argument("--out", required=True, help="output folder")
    write.add_argument("--shard-size", type=_positive_int, default=4096)
    write.set_defaults(func=cmd_world_write)

    sample = sub.add_parser("sample", help="sample the generator for one caption and write a grid")
    sample.add_argument("--caption", default=None, help="one caption for every sample (default: captions of "
                        "sampled world scenes, shown under each image)")
    sample.add_argument("--n", type=_positive_int, default=16)
    sample.add_argument("--seed", type=_seed, default=0)
    sample.add_argument("--out", required=True, help="output .png")
    sample.add_argument("--cols", type=_positive_int, default=None)
    sample.add_argument("--generator", default=None, help="generator folder (default: the shipped one)")
    sample.set_defaults(func=cmd_sample)

    methods = sub.add_parser("methods", help="editing, finetuning and prompting methods")
    mesub = methods.add_subparsers(dest="methods_command", required=True, parser_class=_Parser)
    mlist = mesub.add_parser("list", help="list every method: name, family, evidence, source")
    mlist.set_defaults(func=cmd_methods_list)

    edit = sub.add_parser("edit", help="fit one method on the shipped generator and write a before/after grid")
    edit.add_argument("--method", required=True, help="a registered name, pkg.module:Class or file.py:Class")
    edit.add_argument("--request", default="lamps_off", help="lamps_off, leftmost_off, rightmost_off, lamps_off_second_order")
    edit.add_argument("--n", type=_positive_int, default=16, help="evidence examples")
    edit.add_argument("--evaluator-calls", type=int, default=512, help="meter calls allowed (methods that use them)")
    edit.add_argument("--config", default=None, help="method config: JSON text or a JSON file")
    edit.add_argument("--seed", type=_seed, default=0)
    edit.add_argument("--eval-n", type=_positive_int, default=64, help="held-out samples to measure")
    edit.add_argument("--show", type=_positive_int, default=8, help="pairs in the grid")
    edit.add_argument("--out", required=True, help="output .png")
    edit.add_argument("--save-edit", default=None, help="folder to save the edit in")
    edit.add_argument("--generator", default=None)
    edit.add_argument("--meter", default=None)
    edit.set_defaults(func=cmd_edit)

    run = sub.add_parser("run", help="run a suite: tasks x methods x budgets x seeds, resumable")
    run.add_argument("--suite", choices=("quick", "full"), default="quick")
    run.add_argument("--tasks", type=_csv(str), default=None, help="comma-separated (default: all)")
    run.add_argument("--methods", type=_csv(str), default=None, help="comma-separated (default: all registered)")
    run.add_argument("--budgets", type=_csv(int), default=None)
    run.add_argument("--seeds", type=_csv(int), default=None)
    run.add_argument("--out", required=True, help="results folder (one JSON per cell)")
    run.add_argument("--executor", choices=("process", "inline"), default="process")
    run.add_argument("--workers", type=_positive_int, default=2)
    run.add_argument("--timeout", type=float, default=1800, help="seconds per cell (process executor)")
    run.add_argument("--generator", default=None)
    run.add_argument("--meter", default=None)
    run.add_argument("--leaderboard", default=None, metavar="DIR",
                     help="then build the leaderboard from the results folder into DIR")
    run.set_defaults(func=cmd_run)

    lb = sub.add_parser("leaderboard", help="tables, plots and a static page from stored results")
    lbsub = lb.add_subparsers(dest="leaderboard_command", required=True, parser_class=_Parser)
    build = lbsub.add_parser("build", help="write leaderboard.{md,csv,json,tex}, families.{md,csv}, plots, grids and index.html")
    build.add_argument("--results", required=True, help="results folder written by editbench run, or an export")
    build.add_argument("--out", required=True, help="output folder (e.g. site/)")
    build.add_argument("--budget", type=_positive_int, default=None, help="evidence budget of the tables (default 16)")
    build.set_defaults(func=cmd_leaderboard_build)
    exp = lbsub.add_parser("export", help="write a results folder's records to one .jsonl.gz (to commit)")
    exp.add_argument("--results", required=True)
    exp.add_argument("--out", required=True, help="output .jsonl.gz")
    exp.set_defaults(func=cmd_leaderboard_export)

    check = sub.add_parser("check", help="score gate: compare results with a baseline; exit 1 if a score dropped")
    check.add_argument("--baseline", default="leaderboard/baseline.json")
    check.add_argument("--results", required=True)
    check.add_argument("--update", action="store_true", help="rewrite the baseline from the results (deliberately)")
    check.set_defaults(func=cmd_check)

    models = sub.add_parser("models", help="the reference models")
    msub = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    report = msub.add_parser("report", help="recompute every model-card figure from the weights")
    report.add_argument("--n", type=_positive_int, default=2000, help="held-out renders and samples")
    report.add_argument("--json", action="store_true")
    report.add_argument("--seed", type=int, default=2**41, help="held-out evaluation seed (>= 2**41; the cards use 2**41)")
    report.add_argument("--generator", default=None)
    report.add_argument("--meter", default=None)
    report.set_defaults(func=cmd_models_report)
    ship = msub.add_parser("ship", help="copy a training run's models into the assets folder (float16 safetensors)")
    ship.add_argument("kind", choices=("generator", "meter"))
    ship.add_argument("--run", required=True, help="a run folder of `editbench train generator|meter`")
    ship.add_argument("--assets", default=str(Path(__file__).resolve().parent / "assets"))
    ship.set_defaults(func=cmd_models_ship)
    show_meter = msub.add_parser("show-meter", help="write a grid of images and what the meter reads from them")
    show_meter.add_argument("--n", type=_positive_int, default=8)
    show_meter.add_argument("--seed", type=_seed, default=0)
    show_meter.add_argument("--out", required=True)
    show_meter.add_argument("--samples", action="store_true", help="read generator samples instead of renders")
    show_meter.add_argument("--generator", default=None)
    show_meter.add_argument("--meter", default=None)
    show_meter.set_defaults(func=cmd_models_show_meter)
    layers = msub.add_parser("layers", help="list the generator's editable layers")
    layers.add_argument("--generator", default=None)
    layers.set_defaults(func=cmd_models_layers)

    train = sub.add_parser("train", help="train a reference model")
    tsub = train.add_subparsers(dest="train_command", required=True, parser_class=_Parser)
    for name, func, steps, batch in (("generator", cmd_train_generator, 60_000, 64),
                                     ("meter", cmd_train_meter, 12_000, 128)):
        p = tsub.add_parser(name, help=f"train the {name}")
        p.add_argument("--out", required=True, help="run folder (checkpoints, log, samples)")
        p.add_argument("--steps", type=_positive_int, default=steps)
        p.add_argument("--seed", type=_seed, default=0)
        p.add_argument("--batch-size", type=_positive_int, default=batch)
        p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
        p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                       help="bf16 autocast (auto: on for CUDA only; CPUs without bf16 units are far slower)")
        p.add_argument("--ckpt-every", type=_positive_int, default=1000)
        if name == "generator":
            p.add_argument("--sample-every", type=_positive_int, default=2000)
            p.add_argument("--g-lr", type=float, default=2e-4)
            p.add_argument("--d-lr", type=float, default=4e-4)
            p.add_argument("--ema-decay", type=float, default=0.999)
            p.add_argument("--marginal-weight", type=float, default=0.0,
                           help="weight of the loss that matches the batch's lamp-count and lit-count histograms to the world's")
            p.add_argument("--init-from", default=None,
                           help="continue from this generator folder (its discriminator beside it), e.g. the shipped one")
        p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except UsageError as e:
        print(f"editbench: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError, FloatingPointError) as e:
        print(f"editbench: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("editbench: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
