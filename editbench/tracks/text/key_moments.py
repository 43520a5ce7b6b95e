"""The second moment of the lamp LM's MLP keys over a fixed corpus of the world, the statistic ROME and MEMIT
solve with (cached by the model's hash)."""

from __future__ import annotations

import hashlib

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from editbench.core import capture, io, one_thread, seeds
from editbench.world import World, WorldConfig
from editbench.world.descriptions import describe

from .train import encode_pairs

CORPUS_SEED = seeds.KEY_CORPUS  # the lamp corpus the MLP keys' second moment is estimated on
CORPUS_SIZE = 512


def model_hash(lm: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(lm.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


_MOMENTS: dict[tuple[str, int], Tensor] = {}


def key_second_moment(lm: nn.Module, layer: int) -> Tensor:
    """E[k k^T] (float64) of the MLP keys (the inputs of ``h.{layer}.mlp.c_proj``) over every token of
    ``CORPUS_SIZE`` world captions and descriptions. Computed with one thread (the same floats wherever it
    runs) and cached by the model's hash, in memory and under ``$EDITBENCH_CACHE`` (``~/.cache/editbench``)."""
    key = (model_hash(lm), layer)
    if key in _MOMENTS:
        return _MOMENTS[key]
    path = io.cache_dir() / "key_moments" / f"{key[0]}-layer{layer}-n{CORPUS_SIZE}.safetensors"
    if path.exists():
        try:
            _MOMENTS[key] = load_file(str(path))["moment"]
            return _MOMENTS[key]
        except Exception:  # noqa: BLE001 - a corrupt cache file is recomputed
            pass
    with one_thread():
        world = World(WorldConfig())
        scene = world.scenes(CORPUS_SIZE, CORPUS_SEED)
        captions, _ = world.captions(scene, CORPUS_SEED)
        ids, mask, _ = encode_pairs(lm.tokenizer, captions, describe(scene))
        point = f"transformer.h.{layer}.mlp.act"
        total, count = None, 0
        with torch.no_grad():
            for i in range(0, len(ids), 64):
                with capture(lm, [point]) as acts:
                    lm(input_ids=ids[i:i + 64], attention_mask=mask[i:i + 64])
                k = acts[point][mask[i:i + 64].bool()].double()
                total = k.T @ k if total is None else total + k.T @ k
                count += k.shape[0]
        moment = total / count
    try:
        io.write_with(path, lambda p: save_file({"moment": moment.contiguous()}, str(p)))
    except OSError:
        pass  # an unwritable cache only costs the recomputation
    _MOMENTS[key] = moment
    return moment


def regularised_moment(lm: nn.Module, layer: int, ridge: float) -> Tensor:
    """The keys' second moment (:func:`key_second_moment`) plus ``ridge`` times its mean diagonal on the
    diagonal, as ROME and MEMIT here both solve with it. The ridge is needed whatever the corpus size: the
    keys of a 52-word language span few directions, and the moment's condition number is about 3e6 at layer 3
    from 512 texts and still 3e6 from 4,096 (0.1 brings it to about 1.4e3)."""
    C = key_second_moment(lm, layer)
    return C + ridge * C.diagonal().mean() * torch.eye(C.shape[0], dtype=C.dtype)


