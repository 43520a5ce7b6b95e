"""``editbench world show|stats|write``: the procedural lamp world."""

from __future__ import annotations

import argparse
import json

from .common import Parser, load_world, positive_int, seed


def show(args: argparse.Namespace) -> int:
    from editbench.world.viz import save_grid

    world = load_world(args.config)
    batch = world.sample(args.n, seed=args.seed)
    out = save_grid(batch.images, batch.captions, args.out, cols=args.cols, title=f"editbench lamp world, seed {args.seed}")
    print(f"wrote {out} ({args.n} scenes, seed {args.seed})")
    return 0


def stats(args: argparse.Namespace) -> int:
    from editbench.world.stats import format_stats, world_stats

    s = world_stats(load_world(args.config), args.n, seed=args.seed)
    print(json.dumps(s, indent=2) if args.json else format_stats(s))
    return 0


def write(args: argparse.Namespace) -> int:
    from editbench.world.dataset import write_dataset

    out = write_dataset(load_world(args.config), args.out, args.n, args.seed, shard_size=args.shard_size)
    print(f"wrote {args.n} examples to {out}")
    return 0


def register(sub) -> None:
    world = sub.add_parser("world", help="the procedural lamp world")
    wsub = world.add_subparsers(dest="world_command", required=True, parser_class=Parser)

    def common(p: argparse.ArgumentParser, n_default: int) -> None:
        p.add_argument("--n", type=positive_int, default=n_default, help="number of scenes")
        p.add_argument("--seed", type=seed, default=0)
        p.add_argument("--config", default=None, help="world config JSON (WorldConfig fields)")

    p = wsub.add_parser("show", help="write a labelled grid of sampled scenes with their captions")
    common(p, 16)
    p.add_argument("--out", required=True, help="output .png")
    p.add_argument("--cols", type=positive_int, default=None)
    p.set_defaults(func=show)

    p = wsub.add_parser("stats", help="print the measured distribution of the world")
    common(p, 10_000)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=stats)

    p = wsub.add_parser("write", help="render a dataset to safetensors shards")
    common(p, 10_000)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--shard-size", type=positive_int, default=4096)
    p.set_defaults(func=write)
