"""What every command shares: argument types, the usage error, and loading what the user names."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from editbench.core import UserError


class UsageError(UserError):
    """A problem with what the user asked for; shown as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")


OUTPUT_ARGS = ("out", "json", "save_edit")  # the arguments that name where a command writes


def check_outputs(args: argparse.Namespace) -> None:
    """Every output path the command names can be written: its nearest existing ancestor is a folder that can be
    written into (the command creates what is missing). One line otherwise, before anything runs."""
    import os

    for name in OUTPUT_ARGS:
        value = getattr(args, name, None)
        if not isinstance(value, str) or not value:
            continue
        path = Path(value).absolute()
        if path.is_dir() and not os.access(path, os.W_OK):
            raise UsageError(f"--{name.replace('_', '-')} {value!r}: the folder cannot be written into")
        ancestor = path.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise UsageError(f"--{name.replace('_', '-')} {value!r}: cannot create it ({str(ancestor)!r} is not a "
                             "folder that can be written into)")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative seed, got {text!r}")
    return value


def csv(kind: type):
    def parse(text: str) -> list:
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") from None
    return parse


def caption(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the caption is empty; give a caption such as 'a bedroom with a lit lamp'")
    return text


def json_object(text: str | None, what: str) -> dict[str, Any]:
    """A JSON object given as text or as the path of a JSON file."""
    if not text:
        return {}
    try:
        value = json.loads(Path(text).read_text()) if Path(text).is_file() else json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{what} is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object")
    return value


def load_world(config_path: str | None):
    from editbench.world import World, WorldConfig

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
    except (UserError, TypeError) as e:
        raise UsageError(f"world config {str(path)!r}: {e}") from None


def load_image_model(kind: str, path: str | None):
    """The image track's generator, discriminator or meter at ``path`` (None: the shipped one)."""
    from editbench.tracks import image

    return {"generator": image.load_generator, "discriminator": image.load_discriminator,
            "meter": image.load_meter, "judge": lambda p: image.load_meter(p or image.ASSETS / "judge")}[kind](path)


def method_instance(name: str, config: str | None):
    """A method by name or reference, with its config (JSON text or file)."""
    from editbench.methods import resolve

    return resolve(name)(json_object(config, "method config"))


def checkpoints(args: argparse.Namespace) -> dict[str, str | None]:
    """Checkpoint folders named on the command line (``--generator``, ``--meter``, ``--judge``, ``--lm``), by kind."""
    return {k: getattr(args, k) for k in ("generator", "meter", "judge", "lm") if getattr(args, k, None) is not None}


def add_executor_args(p: argparse.ArgumentParser, unit: str = "cell") -> None:
    """``--executor`` and its options, shared by every command that runs a grid."""
    from editbench.harness import EXECUTORS

    g = p.add_argument_group("where the grid runs")
    g.add_argument("--executor", choices=EXECUTORS.names(), default="process",
                   help="inline (this process), process (local worker processes), ray (the ray extra), "
                        "slurm (the slurm extra: submitit job arrays)")
    g.add_argument("--workers", type=positive_int, default=2,
                   help="worker processes / Ray actors / SLURM array tasks running at once")
    g.add_argument("--timeout", type=float, default=1800,
                   help=f"seconds a {unit} may run per fit it makes (a tuning cell: per trial) before it is recorded as failed")
    g.add_argument("--device", default=None, help=f"where each {unit} computes: cpu (default), cuda, cuda:N or auto")
    g.add_argument("--address", default=None, help="ray: the cluster to join (auto, ray://host:10001); "
                   "default: a local cluster of --workers CPUs for this run")
    g.add_argument("--cluster", choices=("slurm", "local"), default=None,
                   help="slurm: submit to SLURM, or run the same job arrays as local processes (default: SLURM "
                        "where sbatch is found)")
    g.add_argument("--chunk", type=positive_int, default=None, help=f"slurm: {unit}s per array task (default 8)")
    g.add_argument("--slurm-folder", default=None, help="slurm: submitit's logs (default submitit-logs)")
    g.add_argument("--slurm", default=None, metavar="JSON",
                   help='slurm: submitit parameters, e.g. \'{"slurm_partition": "gpu", "gpus_per_node": 1}\'')


def executor_from(args: argparse.Namespace) -> Any:
    """The :class:`~editbench.harness.ExecutorSpec` the executor arguments name (options it does not take are
    a usage error)."""
    from editbench.harness import ExecutorSpec

    options: dict[str, Any] = {}
    if args.device is not None:
        import torch

        if args.device == "auto":
            options["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        elif args.device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"--device {args.device}: no CUDA device is available here")
        elif args.device != "cpu" and not args.device.startswith("cuda"):
            raise UsageError(f"--device must be cpu, cuda, cuda:N or auto, got {args.device!r}")
        else:
            options["device"] = args.device
    from editbench.harness.executors import options_of

    for flag, key, value in (("--address", "address", args.address), ("--cluster", "cluster", args.cluster),
                             ("--chunk", "chunk", args.chunk), ("--slurm-folder", "folder", args.slurm_folder),
                             ("--slurm", "slurm", json_object(args.slurm, "--slurm") if args.slurm else None)):
        if value is None:
            continue
        if key not in options_of(args.executor):
            raise UsageError(f"{flag} is an option of another executor, not of --executor {args.executor}")
        options[key] = value
    return ExecutorSpec(args.executor, options)
