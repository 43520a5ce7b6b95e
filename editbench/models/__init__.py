"""The reference models every method works on: the generator, the lamp meter, and the hook API.

``load_generator()``, ``load_discriminator()`` and ``load_meter()`` load the shipped models from
``editbench/assets/`` (or any folder written by ``save_pretrained``), offline, from safetensors only.
Weights are stored in half precision and computed in float32.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .generator import LampDiscriminator, LampGenerator
    from .meter import LampMeter

ASSETS = Path(__file__).resolve().parent.parent / "assets"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
_UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely; the message says which file and why."""


def _check_safetensors(folder: Path) -> Path:
    """Refuse anything that is not a complete safetensors file (pickles, truncated files)."""
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {str(folder)!r} does not exist")
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{str(folder)!r} has no config.json; expected a folder written by save_pretrained")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        others = [p.name for p in folder.iterdir() if p.suffix in _UNSAFE_SUFFIXES]
        hint = f" (found {others}: pickled weights are refused, convert them to safetensors)" if others else ""
        raise CheckpointError(f"{str(folder)!r} has no {WEIGHTS_NAME}{hint}")
    size = weights.stat().st_size
    with open(weights, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{str(weights)!r} is not a safetensors file (only {size} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n <= 0 or n > min(size - 8, 100_000_000):
            raise CheckpointError(f"{str(weights)!r} is not a safetensors file (bad header; a pickle or another format?)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{str(weights)!r} is not a safetensors file (unreadable header)") from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        raise CheckpointError(f"{str(weights)!r} is truncated or corrupt: header describes {8 + n + end} bytes, file has {size}")
    return weights


def _load(cls: type, folder: str | Path | None, default: str, device: str | torch.device):
    folder = Path(folder) if folder is not None else ASSETS / default
    _check_safetensors(folder)
    try:
        model = cls.from_pretrained(str(folder), torch_dtype=torch.float32, use_safetensors=True,
                                    local_files_only=True, low_cpu_mem_usage=False)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot load {cls.__name__} from {str(folder)!r}: {first}") from None
    return model.to(device).eval()


def load_generator(path: str | Path | None = None, device: str | torch.device = "cpu") -> LampGenerator:
    """The generator; its training companion (a sibling ``discriminator`` folder) is remembered, so
    ``training_objective()`` can continue its training."""
    from .generator import LampGenerator

    model = _load(LampGenerator, path, "generator", device)
    folder = Path(path) if path is not None else ASSETS / "generator"
    sibling = folder.resolve().parent / "discriminator"
    model.discriminator_path = sibling if sibling.is_dir() else None
    return model


def load_discriminator(path: str | Path | None = None, device: str | torch.device = "cpu") -> LampDiscriminator:
    from .generator import LampDiscriminator

    return _load(LampDiscriminator, path, "discriminator", device)


def load_meter(path: str | Path | None = None, device: str | torch.device = "cpu") -> LampMeter:
    from .meter import LampMeter

    return _load(LampMeter, path, "meter", device)


def checkpoint_hash(path: str | Path | None = None, default: str = "generator") -> str:
    """sha256 (first 16 hex digits) of a checkpoint's weights and config, for provenance."""
    folder = Path(path) if path is not None else ASSETS / default
    h = hashlib.sha256()
    for name in ("config.json", WEIGHTS_NAME):
        h.update((folder / name).read_bytes())
    return h.hexdigest()[:16]


def save_half(model: torch.nn.Module, folder: str | Path) -> Path:
    """``save_pretrained`` with float16 storage (what ships in ``editbench/assets``)."""
    import copy

    folder = Path(folder)
    copy.deepcopy(model).to(torch.float16).save_pretrained(str(folder), safe_serialization=True)
    config = json.loads((folder / "config.json").read_text())
    config.pop("_name_or_path", None)  # where it was loaded from is not part of the model
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder
