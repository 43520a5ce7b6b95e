"""Writing and reading rendered datasets as safetensors shards.

A dataset folder holds ``dataset.json`` (world config, seed, size, caption rates, vocabulary
version, shard list) and ``shard-00000.safetensors``, ... with, per example: ``images`` (uint8,
3 x H x W), ``tokens`` (caption ids), ``mentioned`` (which lamps the caption mentions) and the scene
fields (``scene.*``). Captions as text go to ``captions.txt``, one per line. Ground-truth maps are
not stored: they are re-rendered exactly from the scene fields with :func:`editbench.world.render`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from editbench.core import io

from . import World
from .captions import VOCAB_VERSION, CaptionTokenizer
from .config import WorldConfig
from .scene import Scene
from .viz import to_uint8

FORMAT_VERSION = 1


def write_dataset(world: World, out: str | Path, n: int, seed: int, shard_size: int = 4096,
                  progress: bool = True) -> Path:
    """Render ``n`` examples with ``seed`` into ``out``; shard ``k`` uses seed ``(seed, k)``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = CaptionTokenizer()
    shards = []
    with io.atomic_open(out / "captions.txt") as captions_file:
        for k, start in enumerate(tqdm(range(0, n, shard_size), desc="shards", disable=not progress)):
            m = min(shard_size, n - start)
            batch = world.sample(m, seed=shard_seed(seed, k))
            ids, _ = tok.encode(batch.captions)
            tensors = {
                "images": to_uint8(batch.images).contiguous(),
                "tokens": ids.to(torch.int16).contiguous(),
                "mentioned": torch.from_numpy(batch.mentioned).to(torch.uint8).contiguous(),
                **batch.scene.to_tensors(),
            }
            name = f"shard-{k:05d}.safetensors"
            io.write_with(out / name, lambda tmp, tensors=tensors: save_file(tensors, str(tmp)))
            shards.append({"file": name, "n": m, "seed": shard_seed(seed, k)})
            captions_file.writelines(c + "\n" for c in batch.captions)
    meta = {
        "format_version": FORMAT_VERSION, "n": n, "seed": seed, "world_config": world.config.to_dict(),
        "vocab_version": VOCAB_VERSION, "shards": shards,
    }
    io.write_text(out / "dataset.json", json.dumps(meta, indent=2, sort_keys=True))
    return out


def shard_seed(seed: int, k: int) -> int:
    return int(seed) * 100_003 + k


def read_dataset(path: str | Path) -> Iterator[dict[str, torch.Tensor | Scene]]:
    """Yield shards as dicts: ``images`` (float, [0, 1]), ``tokens``, ``mentioned``, ``scene``."""
    path = Path(path)
    meta = json.loads((path / "dataset.json").read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: dataset format {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    for shard in meta["shards"]:
        t = load_file(str(path / shard["file"]))
        yield {
            "images": t["images"].float() / 255,
            "tokens": t["tokens"].long(),
            "mentioned": t["mentioned"].bool(),
            "scene": Scene.from_tensors(t),
        }


def dataset_config(path: str | Path) -> WorldConfig:
    meta = json.loads((Path(path) / "dataset.json").read_text())
    return WorldConfig.from_dict(meta["world_config"])
