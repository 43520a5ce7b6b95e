"""``editbench models report|ship|show-meter|layers`` and ``editbench sample``: the image track's models."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from editbench.core.seeds import HELD_OUT
from editbench.tracks import TRACKS

from .common import Parser, UsageError, caption, checkpoints, load_image_model, positive_int, seed

BUILT_IN = ("image", "text")  # the tracks whose shipped models these commands report, sample and trace


def built_in(args: argparse.Namespace, command: str) -> None:
    """Refuse a registered track these commands know no models of (one line, exit 2)."""
    if args.track not in BUILT_IN:
        raise UsageError(f"{command} knows the shipped models of the tracks {list(BUILT_IN)}, not {args.track!r}")


def ship(args: argparse.Namespace) -> int:
    """Copy a training run's models into an assets folder in half precision (what the package ships)."""
    from editbench.core import io
    from editbench.tracks.image import ASSETS, checkpoint_hash, save_half

    if args.kind == "lm":
        from editbench.tracks.text.checkpoints import ASSETS as TEXT_ASSETS
        from editbench.tracks.text.checkpoints import lm_hash, ship_lm

        target = ship_lm(args.run, args.assets or TEXT_ASSETS)
        print(f"lm: {Path(args.run) / 'lm'} -> {target} (float16, {lm_hash(target)})")
        print("now re-run `editbench models report --track text` and update the model card's figures")
        return 0
    run, assets = Path(args.run), Path(args.assets or ASSETS)
    # (folder in the run, folder in the assets): a judge or weak evaluator is a meter run shipped under its role
    kinds = {"generator": (("generator", "generator"), ("discriminator", "discriminator")), "meter": (("meter", "meter"),),
             "judge": (("meter", "judge"),), "weak": (("meter", "weak"),)}[args.kind]
    # check everything before replacing anything
    loaded = {name: (src, load_image_model("meter" if src == "meter" else src, str(run / src))) for src, name in kinds}
    for name, (src, model) in loaded.items():
        def fill(tmp: Path, name: str = name, model=model) -> None:
            save_half(model, tmp)
            for keep in ("MODEL_CARD.md", "samples.png"):
                if (assets / name / keep).exists():
                    shutil.copy2(assets / name / keep, tmp / keep)
        io.write_dir(assets / name, fill)
        print(f"{name}: {run / src} -> {assets / name} (float16, {checkpoint_hash(assets / name, name)})")
    print("now re-run `editbench models report` and update the model card's figures")
    return 0


def report(args: argparse.Namespace) -> int:
    built_in(args, "models report")
    if args.track == "text":
        from editbench.tracks.text.checkpoints import load_lm
        from editbench.tracks.text.report import format_report, full_report

        load_lm(args.lm)  # refuse a bad checkpoint first
        rep = full_report(n=args.n, lm_path=args.lm, seed=args.seed)
    else:
        from editbench.tracks.image.report import format_report, full_report

        load_image_model("generator", args.generator), load_image_model("meter", args.meter)  # refuse bad checkpoints first
        load_image_model("judge", args.judge)
        rep = full_report(n=args.n, generator_path=args.generator, meter_path=args.meter, seed=args.seed,
                          judge_path=args.judge)
    print(json.dumps(rep, indent=2) if args.json else format_report(rep))
    return 0


def layers(args: argparse.Namespace) -> int:
    from editbench.tracks import get_track

    track = get_track(args.track)
    points = track.hook_points(track.load(checkpoints(args)))
    w = max(len(p) for p in points) + 2
    print(f"{'hook point':<{w}}{'units':>7}{'unit axis':>11}  positions / what it is")
    for p in points.values():
        where = " x ".join(map(str, p.positions)) or p.description
        print(f"{p.name:<{w}}{p.units:>7}{p.unit_axis:>11}  {where}")
    return 0


def sample(args: argparse.Namespace) -> int:
    from editbench.world import World
    from editbench.world.viz import save_grid

    built_in(args, "sample")
    if args.track == "text":
        return sample_text(args)
    if args.out is None:
        raise UsageError("--out is required for images (a .png)")

    G = load_image_model("generator", args.generator)
    if args.caption is None:
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


def sample_text(args: argparse.Namespace) -> int:
    """Descriptions the lamp LM writes (printed; with --out, also written one per line)."""
    from editbench.core import io
    from editbench.tracks.text.checkpoints import load_lm
    from editbench.tracks.text.tokenizer import unknown_words
    from editbench.world import World

    lm = load_lm(args.lm)
    if args.caption is None:
        captions = World().sample(args.n, seed=args.seed).captions
    else:
        unknown = unknown_words(args.caption)
        if unknown:
            raise UsageError(f"caption words not in the vocabulary: {unknown} (see editbench.world.descriptions.TEXT_VOCAB)")
        captions = [args.caption] * args.n
    texts = lm.generate(captions, lm.make_noise(len(captions), args.seed))
    lines = [f"{c}\n  -> {t}" for c, t in zip(captions, texts, strict=True)]
    print("\n".join(lines))
    if args.out:
        io.write_text(args.out, "\n".join(lines) + "\n")
    return 0


def show_meter(args: argparse.Namespace) -> int:
    import torch

    from editbench.tracks.image import views
    from editbench.world import World
    from editbench.world.viz import save_grid

    pool = args.n * 32 if args.disagree else args.n  # with --disagree: the first n of 32n samples the readers disagree on
    if args.generator is not None or args.samples or args.disagree:
        captions = World().sample(pool, seed=args.seed).captions
        images = load_image_model("generator", args.generator).generate(captions, seed=args.seed)
    else:
        images = World().sample(pool, seed=args.seed).images
    if args.reader != "both":
        grid, labels = views.reading_grid(images, load_image_model(args.reader, args.meter).read(images))
        out = save_grid(grid, labels, args.out, cols=args.n,
                        title="what the judge reads" if args.reader == "judge" else "what the lamp meter reads")
        print(f"wrote {out}")
        return 0
    proxy, judge = load_image_model("meter", args.meter).read(images), load_image_model("judge", None).read(images)
    keep = views.disagreements(proxy, judge)[: args.n] if args.disagree else torch.arange(len(images))[: args.n]
    if len(keep) == 0:
        raise UsageError(f"the readers agree on all {pool} samples; try another --seed")
    grid, labels = views.readers_grid(images, proxy, judge, keep)
    out = save_grid(grid, labels, args.out, cols=len(keep), title="the proxy meter and the judge on the same images")
    print(f"wrote {out} ({len(keep)} images)")
    return 0


def trace(args: argparse.Namespace) -> int:
    """Where the editors' layers come from: the LM's causal trace, or the generator's per-layer dissection."""
    from editbench.core import io
    from editbench.experiments import traces

    built_in(args, "models trace")
    if args.track == "text":
        from editbench.tracks.text.checkpoints import load_lm

        load_lm(args.lm)  # refuse a bad checkpoint first
        rep = traces.text_trace(args.lm, n=args.n, draws=args.draws)
        for kind, rows in rep["effects"].items():
            for pos, cells in rows.items():
                print(f"{kind:<9} {pos:<20} " + "  ".join(f"{c['mean']:+.3f}" for c in cells))
        print(f"{rep['n_facts']} known lit lamps, {rep['draws']} draws: MLP effect at the decision token peaks at "
              f"block {rep['layer']} (range {rep['layers']})")
    else:
        load_image_model("generator", args.generator), load_image_model("meter", args.meter)
        rep = traces.image_dissection(args.generator, args.meter, n=args.n or traces.DISSECT_SIZE)
        for name, r in rep["layers"].items():
            print(f"{name:<10} {r['units']:>4} units  top-{rep['k']} IoU {r['top_k_iou']:.3f} "
                  f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]  best {r['best_iou']:.3f}")
        print(f"best layer: {rep['best_layer']}")
    if args.json:
        io.write_json(args.json, rep)
        print(f"wrote {args.json}")
    if args.out:
        plot = traces.plot_text_trace if args.track == "text" else traces.plot_dissection
        print(f"wrote {plot(rep, args.out)}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("sample", help="sample a track's model for a caption: images (a grid) or descriptions")
    p.add_argument("--track", choices=TRACKS.names(), default="image")
    p.add_argument("--caption", type=caption, default=None, help="one caption for every sample (default: captions of "
                   "sampled world scenes, shown under each image)")
    p.add_argument("--n", type=positive_int, default=16)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--out", default=None, help="output .png (images; required) or text file (descriptions; optional)")
    p.add_argument("--cols", type=positive_int, default=None)
    p.add_argument("--generator", default=None, help="generator folder (default: the shipped one)")
    p.add_argument("--lm", default=None, help="lamp LM folder (default: the shipped one)")
    p.set_defaults(func=sample)

    models = sub.add_parser("models", help="the reference models")
    msub = models.add_subparsers(dest="models_command", required=True, parser_class=Parser)
    p = msub.add_parser("report", help="recompute every model-card figure from the weights")
    p.add_argument("--track", choices=TRACKS.names(), default="image")
    p.add_argument("--n", type=positive_int, default=2000, help="held-out renders and samples")
    p.add_argument("--json", action="store_true")
    p.add_argument("--seed", type=int, default=HELD_OUT, help="held-out evaluation seed (>= 2**41; the cards use 2**41)")
    p.add_argument("--generator", default=None)
    p.add_argument("--meter", default=None)
    p.add_argument("--judge", default=None)
    p.add_argument("--lm", default=None)
    p.set_defaults(func=report)
    p = msub.add_parser("ship", help="copy a training run's models into the assets folder (float16 safetensors)")
    p.add_argument("kind", choices=("generator", "meter", "judge", "weak", "lm"),
                   help="judge, weak: a meter run (editbench train judge|meter) shipped as the judge or the weak evaluator")
    p.add_argument("--run", required=True, help="a run folder of `editbench train generator|meter|lm`")
    p.add_argument("--assets", default=None, help="the track's assets folder (default: the package's)")
    p.set_defaults(func=ship)
    p = msub.add_parser("show-meter", help="write a grid of images and what the meter reads from them")
    p.add_argument("--n", type=positive_int, default=8)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--samples", action="store_true", help="read generator samples instead of renders")
    p.add_argument("--generator", default=None)
    p.add_argument("--reader", choices=("meter", "judge", "both"), default="meter",
                   help="the proxy meter, the judge, or both side by side")
    p.add_argument("--disagree", action="store_true", help="with --reader both: generator samples the readers "
                   "disagree on (lamp count or lit lamps)")
    p.add_argument("--meter", default=None, help="the reader's folder (default: the shipped one)")
    p.set_defaults(func=show_meter)
    p = msub.add_parser("trace", help="where the editors' layers come from: the LM's causal trace (text) or the "
                        "generator's per-layer unit dissection (image)")
    p.add_argument("--track", choices=TRACKS.names(), default="text")
    p.add_argument("--n", type=positive_int, default=None, help="rooms of the fixed corpus (text: 256; image: 256)")
    p.add_argument("--draws", type=positive_int, default=None, help="text: noise draws per fact (default 10)")
    p.add_argument("--json", default=None, help="write the figures as JSON (the model card's: "
                   "editbench/assets/<track>/trace.json)")
    p.add_argument("--out", default=None, help="write the figure (.png)")
    p.add_argument("--generator", default=None)
    p.add_argument("--meter", default=None)
    p.add_argument("--lm", default=None)
    p.set_defaults(func=trace)
    p = msub.add_parser("layers", help="list the edited model's hook points (units, unit axis, positions)")
    p.add_argument("--track", choices=TRACKS.names(), default="image")
    p.add_argument("--generator", default=None)
    p.add_argument("--lm", default=None)
    p.set_defaults(func=layers)
