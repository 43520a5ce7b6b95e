"""The image track's shipped models: loading, hashing and shipping checkpoints.

``load_generator()``, ``load_discriminator()`` and ``load_meter()`` load the shipped models from
``editbench/assets/image/`` (or any folder written by ``save_pretrained``), offline, from safetensors
only. Weights are stored in half precision and computed in float32.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from editbench.core.checkpoints import CheckpointError, check_safetensors, folder_hash

__all__ = ["ASSETS", "WEIGHTS_NAME", "CheckpointError", "checkpoint_hash", "load_discriminator", "load_generator",
           "load_meter", "save_half"]

if TYPE_CHECKING:
    from .generator import LampDiscriminator, LampGenerator
    from .meter import LampMeter

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "image"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"


def _load(cls: type, folder: str | Path | None, default: str, device: str | torch.device):
    folder = Path(folder) if folder is not None else ASSETS / default
    check_safetensors(folder, WEIGHTS_NAME)
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


@cache
def shipped_report() -> dict:
    """The shipped models' card figures (``report.json`` beside them, written by ``editbench models report
    --json``); empty where there is none. Read once per process."""
    report = ASSETS / "report.json"
    return json.loads(report.read_text()) if report.exists() else {}


def checkpoint_hash(path: str | Path | None = None, default: str = "generator") -> str:
    """sha256 (first 16 hex digits) of a checkpoint's weights and config, for provenance."""
    return folder_hash(Path(path) if path is not None else ASSETS / default, ("config.json", WEIGHTS_NAME))


def save_half(model: torch.nn.Module, folder: str | Path) -> Path:
    """``save_pretrained`` with float16 storage (what ships in ``editbench/assets``)."""
    import copy

    folder = Path(folder)
    copy.deepcopy(model).to(torch.float16).save_pretrained(str(folder), safe_serialization=True)
    config = json.loads((folder / "config.json").read_text())
    config.pop("_name_or_path", None)  # where it was loaded from is not part of the model
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder
