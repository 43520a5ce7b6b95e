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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except UsageError as e:
        print(f"editbench: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError) as e:
        print(f"editbench: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("editbench: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
