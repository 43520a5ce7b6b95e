"""The activation-reporting study's data: the report points and depths of a lamp LM, the sentences (cut at a full
stop), the activations at the stop, the calibration corpus, the neurons chosen and their bins; the model family."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from editbench.core import capture, seeds
from editbench.tracks.text.train import encode_pairs
from editbench.world import World, WorldConfig
from editbench.world.descriptions import describe
from editbench.world.descriptions import sentences as split_sentences

if TYPE_CHECKING:
    pass


CALIBRATION_SEED, TRAIN_SEED, TEST_SEED = (seeds.ACTIVATIONS[k] for k in ("calibration", "train", "test"))


N_CALIBRATION, N_TEST = 2000, 400


BINS = 10


CHANCE_ACC, CHANCE_MAE = 1 / BINS, 3.3  # uniform guess; mean |i - j| for i, j uniform on 1..10 is 3.3


def report_points(lm: nn.Module) -> list[str]:
    """The layers whose neurons can be reported, from the bottom: embeddings, then per block its MLP neurons
    and its residual stream."""
    out = ["transformer.drop"]
    for i in range(lm.config.n_layer):
        out += [f"transformer.h.{i}.mlp.act", f"transformer.h.{i}"]
    return out


def depth(layer: str) -> float:
    """A layer's depth in blocks: embeddings 0, block i's MLP neurons i + 0.5, its residual stream i + 1."""
    if layer == "transformer.drop":
        return 0.0
    i = int(layer.split(".")[2])
    return i + (0.5 if layer.endswith("mlp.act") else 1.0)


# ---- the sentences ------------------------------------------------------------------------------------------
@dataclass
class Sentences:
    """Teacher-forced sentences cut at a full stop: ids (B, T) right-padded, mask, and ``stop`` (B,) the
    index of each final full stop."""

    ids: Tensor
    mask: Tensor
    stop: Tensor


def sentences(lm: nn.Module, n: int, seed: int) -> Sentences:
    world = World(WorldConfig())
    scene = world.scenes(n, seed)
    captions, _ = world.captions(scene, seed)
    rng = random.Random(seed)
    cut = []
    for d in describe(scene):
        parts = split_sentences(d)
        cut.append(" ".join(parts[:rng.randint(1, len(parts))]))
    ids, mask, labels = encode_pairs(lm.tokenizer, captions, cut)
    # encode_pairs appends <eos>: drop it, so each sequence ends at its full stop
    lengths = mask.sum(1) - 1
    ids[torch.arange(n), lengths] = lm.tokenizer.pad_token_id
    mask[torch.arange(n), lengths] = 0
    return Sentences(ids, mask, lengths - 1)


@torch.no_grad()
def stop_activations(lm: nn.Module, layers: list[str] | tuple[str, ...], s: Sentences, batch_size: int = 128
                     ) -> dict[str, Tensor]:
    """{layer: (B, units)}: each layer's output at each sentence's final full stop, from one forward pass per
    batch (each batch cut to its longest sentence)."""
    outs: dict[str, list[Tensor]] = {layer: [] for layer in layers}
    for i in range(0, len(s.ids), batch_size):
        stop = s.stop[i:i + batch_size]
        width = int(stop.max()) + 1
        with capture(lm, list(layers)) as acts:
            lm(input_ids=s.ids[i:i + batch_size, :width], attention_mask=s.mask[i:i + batch_size, :width])
        for layer in layers:
            a = acts[layer].float()
            outs[layer].append(a[torch.arange(len(a)), stop])
    return {layer: torch.cat(v) for layer, v in outs.items()}


def activations_at_stop(lm: nn.Module, layer: str, s: Sentences) -> Tensor:
    """(B, units) the layer's output at each sentence's final full stop."""
    return stop_activations(lm, [layer], s)[layer]


def _all_layers(lm: nn.Module, layer: str | None = None) -> tuple[str, ...]:
    """Every report point and the final layer norm (and ``layer``, if it is another hook point)."""
    points = (*report_points(lm), "transformer.ln_f")
    return points if layer is None or layer in points else (*points, layer)


def _memo() -> Any:
    """A memo like a session's (``memo(key, compute)``) for calls outside the harness."""
    cache: dict[Any, Any] = {}

    def memo(key: Any, compute: Any) -> Any:
        if key not in cache:
            cache[key] = compute()
        return cache[key]
    return memo


def calibration(lm: nn.Module, layer: str, memo: Any = None) -> Tensor:
    """(N_CALIBRATION, units): the layer at the full stops of the calibration corpus."""
    from editbench.tracks.text.key_moments import model_hash

    memo = memo or _memo()
    s = memo(("sentences", N_CALIBRATION, CALIBRATION_SEED), lambda: sentences(lm, N_CALIBRATION, CALIBRATION_SEED))
    layers = _all_layers(lm, layer)
    return memo(("calibration", model_hash(lm), layers), lambda: stop_activations(lm, layers, s))[layer]


def choose_neurons(lm: nn.Module, layer: str, k_variance: int, k_random: int, seed: int, memo: Any = None
                   ) -> list[tuple[int, str]]:
    """The documented rule: the ``k_variance`` highest-variance neurons at full stops over the calibration
    corpus, then ``k_random`` others drawn at random from ``seed``."""
    acts = calibration(lm, layer, memo)
    order = acts.var(0).argsort(descending=True).tolist()
    chosen = [(u, f"variance {i + 1}") for i, u in enumerate(order[:k_variance])]
    rest = order[k_variance:]
    g = random.Random(seed)
    chosen += [(u, f"random {i + 1}") for i, u in enumerate(g.sample(rest, min(k_random, len(rest))))]
    return chosen


def edges(values: Tensor) -> Tensor:
    """The 9 inner decile edges of a neuron's calibration values."""
    return torch.quantile(values.double(), torch.linspace(0, 1, BINS + 1, dtype=torch.float64)[1:-1]).float()


def to_bins(values: Tensor, e: Tensor) -> Tensor:
    """Bins 0..9 (reported as 1..10)."""
    return torch.bucketize(values.contiguous(), e, right=True)


# ---- the grid ------------------------------------------------------------------------------------------------
EXPERIMENT_ASSETS = Path(__file__).resolve().parents[2] / "assets" / "text" / "experiments"


SIZES = ("small", "base", "large")  # the lamp LM family, smallest first ("base" is the shipped LM)


MODELS: dict[str, str | None] = {"small": str(EXPERIMENT_ASSETS / "small" / "lm"), "base": None,
                                 "large": str(EXPERIMENT_ASSETS / "large" / "lm"),
                                 "control": str(EXPERIMENT_ASSETS / "control" / "lm")}

DEPTH_N = 4096  # the training size of the depth sweep
