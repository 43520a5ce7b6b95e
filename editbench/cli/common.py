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
