"""The text track's shipped model: loading (offline, safetensors only), hashing and shipping the lamp LM."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from editbench.core import io
from editbench.core.checkpoints import CheckpointError, check_safetensors, folder_hash

from .model import LampLM

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "text"
WEIGHTS_NAME = "model.safetensors"


def _folder(path: str | Path | None) -> Path:
    return Path(path) if path is not None else ASSETS / "lm"


def load_lm(path: str | Path | None = None, device: str | torch.device = "cpu") -> LampLM:
    """The lamp LM at ``path`` (None: the shipped one), in float32, on ``device``."""
    folder = _folder(path)
    check_safetensors(folder, WEIGHTS_NAME)
    try:
        model = LampLM.from_pretrained(str(folder), local_files_only=True, use_safetensors=True, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot load the lamp LM from {str(folder)!r}: {first}") from None
    return model.to(device).eval()


def lm_hash(path: str | Path | None = None) -> str:
    return folder_hash(_folder(path), ("config.json", WEIGHTS_NAME))


def ship_lm(run: str | Path, assets: str | Path = ASSETS) -> Path:
    """Copy a training run's LM (``run/lm``) into ``assets/lm`` in float16 with its tokenizer, keeping the
    model card; the run's model is loaded and checked before anything is replaced."""
    import shutil

    model = load_lm(Path(run) / "lm")
    target = Path(assets) / "lm"

    def fill(tmp: Path) -> None:
        half = copy.deepcopy(model).to(torch.float16)
        half.save_pretrained(str(tmp), safe_serialization=True)
        model.tokenizer.save_pretrained(str(tmp))
        for keep in ("MODEL_CARD.md",):
            if (target / keep).exists():
                shutil.copy2(target / keep, tmp / keep)
    return io.write_dir(target, fill)


__all__ = ["ASSETS", "WEIGHTS_NAME", "CheckpointError", "lm_hash", "load_lm", "ship_lm"]
