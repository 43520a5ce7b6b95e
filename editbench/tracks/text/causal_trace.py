"""Causal tracing (Meng et al. 2022) on the lamp LM: the caption (which states which lamps are lit) corrupted
with Gaussian noise on its embeddings, then each block's MLP output or residual stream restored from the clean
run at one kind of position; the probability of the lit lamps' article recovered is the indirect effect. Once
per model (:func:`causal_trace`, ``editbench models trace``), the layers ROME and MEMIT edit are chosen from it;
:func:`trace_layer` is the per-fit variant (an option of theirs, not a default)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from editbench.core import Evidence, MethodError, capture, intervene, one_thread, seeds
from editbench.core.stats import mean_interval
from editbench.world import World, WorldConfig
from editbench.world.descriptions import describe, scene_facts

from .positions import Decisions, decisions, subject_mask


def log_probs(lm: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    return lm(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)


#: the model-level causal trace: a fixed corpus of the world (never a split or evidence seed), several noise draws
TRACE_SEED = seeds.TRACE
TRACE_SIZE = 256
TRACE_DRAWS = 10  # noise samples per fact, as Meng et al. (2022) average over
TRACE_POINTS = {"mlp": "transformer.h.{}.mlp", "residual": "transformer.h.{}"}


def _trace(lm: nn.Module, d: Decisions, positions: dict[str, Tensor], points: list[str], noise: float, draws: int,
           seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Causal tracing (Meng et al. 2022) of the lit lamps at ``d``'s decision positions: the caption's
    embeddings corrupted with Gaussian noise (``noise`` times the embeddings' standard deviation), then each
    hook point of ``points`` restored from the clean run at each of ``positions`` ((B, T) bool masks).
    Returns the clean and corrupted probabilities of the lit lamps' article (F,) and the restored ones
    (draws, positions, points, F), F the lit decisions."""
    rows, cols = d.rows[d.lit], d.cols[d.lit]
    article = lm.tokenizer.get_vocab()["a"]
    with capture(lm, ["transformer.drop", *points]) as clean:
        p_clean = log_probs(lm, d.ids, d.mask)[rows, cols, article].exp()
    emb = clean["transformer.drop"]
    g = torch.Generator().manual_seed(seed)
    caption = ((d.labels == -100) & d.mask.bool())[..., None].to(emb.dtype)
    scale = noise * emb[d.mask.bool()].std()

    def prob(eps: Tensor, restore: str | None = None, at: Tensor | None = None) -> Tensor:
        fns = {"transformer.drop": lambda out: out + eps}
        if restore is not None:
            m = at[..., None].to(emb.dtype)
            fns[restore] = lambda out: out * (1 - m) + clean[restore] * m
        with intervene(lm, fns):
            return log_probs(lm, d.ids, d.mask)[rows, cols, article].exp()

    low, restored = [], []
    for _ in range(draws):
        eps = torch.randn(emb.shape, generator=g) * scale * caption
        low.append(prob(eps))
        restored.append(torch.stack([torch.stack([prob(eps, p, at) for p in points]) for at in positions.values()]))
    return p_clean, torch.stack(low).mean(0), torch.stack(restored)


@torch.no_grad()
def trace_layer(lm: nn.Module, evidence: Evidence, noise: float, seed: int) -> tuple[int, list[float]]:
    """The per-fit trace (an option, not a default): on the evidence samples, one noise draw, the layer
    whose MLP output at the lamps' introduction restores most of the lit lamps' article, and every layer's
    indirect effect (mean probability recovered)."""
    d = decisions(lm, evidence)
    if not d.lit.any():
        raise MethodError("causal tracing needs a lamp the evidence describes lit")
    at = torch.zeros_like(d.ids, dtype=torch.bool)
    at[d.rows, d.cols] = True
    mlps = [TRACE_POINTS["mlp"].format(i) for i in range(lm.config.n_layer)]
    _, low, restored = _trace(lm, d, {"decision": at}, mlps, noise, 1, seed)
    effects = (restored[0, 0] - low).mean(1).tolist()
    return int(torch.tensor(effects).argmax()), effects


@torch.no_grad()
def causal_trace(lm: nn.Module, n: int = TRACE_SIZE, draws: int = TRACE_DRAWS, noise: float = 3.0,
                 seed: int = TRACE_SEED) -> dict[str, Any]:
    """The model-level causal trace ROME's and MEMIT's layers are chosen from, once per model: ``n`` rooms of
    the default world (their captions and the world's own descriptions, teacher-forced), each room's first
    lit lamp that the LM states lit (its article ``a`` is the LM's likeliest word: a known fact, as Meng et
    al. trace only facts the model knows), ``draws`` noise draws per fact. For every hook point (the MLP
    output and the residual stream of each block) restored at every position kind (the caption's lamp words,
    the caption's last token, the description up to the lamp, the decision token), the indirect effect: the
    probability of the article recovered, mean over facts with a 95% bootstrap interval. ``layer`` is the
    block whose MLP restores most at the decision token (ROME's edit layer); ``layers`` the contiguous
    blocks ending there whose MLP effect is at least half of it (MEMIT's range)."""
    with one_thread():
        world = World(WorldConfig())
        scene = world.scenes(n, seed)
        captions, _ = world.captions(scene, seed)
        d = decisions(lm, Evidence("samples", captions=captions, outputs=describe(scene),
                                   readings=scene_facts(scene)))
        # each room's first lit lamp, where the LM knows it (its article is the likeliest next word)
        lp = log_probs(lm, d.ids, d.mask)[d.rows, d.cols]
        known = d.lit & (lp.argmax(-1) == lm.tokenizer.get_vocab()["a"])
        first = torch.zeros_like(known)
        seen: set[int] = set()
        for i in known.nonzero().flatten().tolist():
            if int(d.rows[i]) not in seen:
                seen.add(int(d.rows[i]))
                first[i] = True
        # one row per fact, cut after its decision token (nothing later can change the article's probability)
        rows, cols = d.rows[first], d.cols[first]
        T = int(cols.max()) + 1
        d = Decisions(d.ids[rows, :T], d.mask[rows, :T], d.labels[rows, :T], torch.arange(len(rows)), cols,
                      torch.ones(len(rows), dtype=torch.bool))
        start = (d.labels != -100).float().argmax(1)  # first description token
        t = torch.arange(T)[None]
        col = d.cols[:, None]  # row i's decision token
        positions = {
            "caption lamp words": subject_mask(lm, d.ids, d.labels),
            "caption end": t == (start - 1)[:, None],
            "description so far": (t >= start[:, None]) & (t < col),
            "decision": t == col,
        }
        n_layer = lm.config.n_layer
        points = [TRACE_POINTS[k].format(i) for k in TRACE_POINTS for i in range(n_layer)]
        p_clean, low, restored = _trace(lm, d, positions, points, noise, draws, seed)
        effect = restored.mean(0) - low  # (positions, points, F)
        out: dict[str, Any] = {"n_rooms": n, "n_facts": int(d.rows.numel()), "draws": draws, "noise": noise,
                               "seed": seed, "p_clean": round(float(p_clean.mean()), 4),
                               "p_corrupted": round(float(low.mean()), 4), "effects": {}}
        for i, pos in enumerate(positions):
            for k, kind in enumerate(TRACE_POINTS):
                cells = []
                for layer in range(n_layer):
                    m, lo, hi = mean_interval(effect[i, k * n_layer + layer], seed=layer)
                    cells.append({"mean": round(m, 4), "ci": [round(lo, 4), round(hi, 4)]})
                out["effects"].setdefault(kind, {})[pos] = cells
    mlp = [c["mean"] for c in out["effects"]["mlp"]["decision"]]
    layer = int(torch.tensor(mlp).argmax())
    layers = [layer]
    while layers[0] > 0 and mlp[layers[0] - 1] >= mlp[layer] / 2:
        layers.insert(0, layers[0] - 1)
    out["layer"], out["layers"] = layer, layers
    return out


