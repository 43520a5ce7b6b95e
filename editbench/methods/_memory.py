"""What ROME and MEMIT share on the lamp LM: the edit's data, its subjects, causal tracing, and the
optimised values.

* the **data**: the evidence samples, teacher-forced on the description the edited model should give
  (each sample as the proxy reads it, with the request applied); the *object* the loss asks for is each
  lamp's stated state (its article, ``a`` of ``a lit`` or ``an`` of ``an unlit``);
* the **subject**: in the lamp world's grammar a lamp's state is stated before its noun (``a lit table
  lamp on the left``), so no subject token precedes the fact inside a description; the token the LM
  introduces a lamp at (the ``.`` before its article, where "lit" and "unlit" part) stands for it. ROME
  edits that one subject; MEMIT writes three at once: the lamps introduced as table lamps, as floor lamps,
  and the lamps the caption names (the caption's ``lamp``/``lamps`` tokens);
* **causal tracing** (Meng et al. 2022): the caption (which states which lamps are lit) corrupted with
  Gaussian noise on its embeddings, then each layer's MLP output at the subject restored from the clean
  run; the layer whose restoration brings back most of the log-probability the clean run gives the lit
  lamps' article is where the association is written;
* the **values**: for each subject a vector ``delta`` added to a layer's MLP output at its positions,
  optimised (Adam) for the negative log-likelihood of the objects, plus ``kl_weight`` times the KL
  divergence from the unedited model's next-word distributions over the evidence's own descriptions,
  every word but the lamps' articles (the neighbouring facts an edit should leave alone), plus ``weight_decay`` times
  ``|delta|^2 / |v0|^2``; ``|delta|`` is kept within ``clamp_norm`` times ``|v0|``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from editbench.core import Evidence, MethodConfig, MethodError, capture, intervene
from editbench.tracks.text.train import encode_pairs
from editbench.world.requests import EditRequest

from ._text import decisions, proxy_targets, subject_mask


@dataclass
class ValueConfig(MethodConfig):
    """The settings ROME and MEMIT share: value optimisation and causal tracing."""

    v_steps: int = 40
    v_lr: float = 0.5
    kl_weight: float = 0.0625
    weight_decay: float = 0.05
    clamp_norm: float = 8.0
    noise: float = 3.0  # causal tracing: embedding noise, in standard deviations of the embeddings


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """The model with gradients off for its parameters (restored afterwards)."""
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield model
    finally:
        for p, f in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(f)


def subjects(lm: nn.Module, ids: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """(B, T) bool masks of the subjects in sequences encoded with :func:`encode_pairs`: ``lamp
    introduced`` (the token before a lamp sentence's article), split by the kind that follows (``table
    lamp``, ``floor lamp``), and ``lamp named`` (the caption's lamp tokens)."""
    vocab = lm.tokenizer.get_vocab()
    described = labels != -100
    nxt = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], -1)], 1)
    kind = torch.cat([ids[:, 3:], torch.full_like(ids[:, :3], -1)], 1)
    nxt_described = torch.cat([described[:, 1:], torch.zeros_like(described[:, :1])], 1)
    # a "." followed by a lamp's sentence: "a"/"an", then its state, then its kind
    intro = (ids == vocab["."]) & nxt_described & ((nxt == vocab["a"]) | (nxt == vocab["an"])) & \
        ((kind == vocab["table"]) | (kind == vocab["floor"]))
    return {"lamp introduced": intro, "table lamp": intro & (kind == vocab["table"]),
            "floor lamp": intro & (kind == vocab["floor"]), "lamp named": subject_mask(lm, ids, labels)}


@dataclass
class EditData:
    ids: Tensor  # target sequences (caption + target description), right-padded
    mask: Tensor
    labels: Tensor  # -100 except on the objects (each lamp's article)
    subjects: dict[str, Tensor]
    n_ids: Tensor  # neighbour sequences (caption + the sample itself)
    n_mask: Tensor
    n_subjects: dict[str, Tensor]
    n_keep: Tensor  # (B, T) bool: positions whose next-word distribution the edit should keep


def edit_data(lm: nn.Module, evidence: Evidence, request: EditRequest) -> EditData:
    caps, targets = proxy_targets(evidence, request)
    ids, mask, labels = encode_pairs(lm.tokenizer, caps, targets)
    subj = subjects(lm, ids, labels)
    keep = subj["lamp introduced"].any(1)
    if not keep.any():
        raise MethodError("no evidence sample describes a lamp: there is no subject to edit")
    objects = torch.cat([torch.zeros_like(keep[:, None]), subj["lamp introduced"][:, :-1]], 1)
    labels = torch.where(objects, labels, torch.full_like(labels, -100))
    n_ids, n_mask, n_labels = encode_pairs(lm.tokenizer, evidence.captions, evidence.outputs)
    n_subj = subjects(lm, n_ids, n_labels)
    predicts_word = torch.cat([n_labels[:, 1:] != -100, torch.zeros(len(n_ids), 1, dtype=torch.bool)], 1)
    n_keep = predicts_word & ~n_subj["lamp introduced"]
    return EditData(ids[keep], mask[keep], labels[keep], {k: v[keep] for k, v in subj.items()}, n_ids, n_mask,
                    n_subj, n_keep)


def _log_probs(lm: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    return lm(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)


@torch.no_grad()
def trace_layer(lm: nn.Module, evidence: Evidence, noise: float, seed: int) -> tuple[int, list[float]]:
    """The layer whose MLP output at the lamps' introduction restores most of the lit lamps' article under
    a corrupted caption, and every layer's indirect effect (mean log-probability recovered)."""
    d = decisions(lm, evidence)
    if not d.lit.any():
        raise MethodError("causal tracing needs a lamp the evidence describes lit")
    rows, cols = d.rows[d.lit], d.cols[d.lit]
    at = torch.zeros_like(d.ids, dtype=torch.bool)
    at[d.rows, d.cols] = True
    article = lm.tokenizer.get_vocab()["a"]
    mlps = [f"transformer.h.{i}.mlp" for i in range(lm.config.n_layer)]
    with capture(lm, ["transformer.drop", *mlps]) as clean:
        lm(input_ids=d.ids, attention_mask=d.mask)
    emb = clean["transformer.drop"]
    g = torch.Generator().manual_seed(seed)
    caption = ((d.labels == -100) & d.mask.bool())[..., None].to(emb.dtype)
    eps = torch.randn(emb.shape, generator=g) * noise * emb[d.mask.bool()].std() * caption
    m = at[..., None].to(emb.dtype)

    def metric(restore: str | None) -> float:
        fns = {"transformer.drop": lambda out: out + eps}
        if restore is not None:
            fns[restore] = lambda out: out * (1 - m) + clean[restore] * m
        with intervene(lm, fns):
            lp = _log_probs(lm, d.ids, d.mask)
        return float(lp[rows, cols, article].mean())

    low = metric(None)
    effects = [metric(name) - low for name in mlps]
    return int(torch.tensor(effects).argmax()), effects


def optimise_values(lm: nn.Module, data: EditData, layer: int, masks: list[Tensor], n_masks: list[Tensor],
                    steps: int, lr: float, kl_weight: float, weight_decay: float, clamp_norm: float, seed: int
                    ) -> tuple[list[Tensor], list[Tensor], dict[str, float]]:
    """(deltas, v0s, losses): one ``delta`` per subject mask, added to ``h.{layer}.mlp``'s output at its
    positions (``masks`` on the target sequences, ``n_masks`` on the neighbour sequences); ``v0`` is the
    mean unedited MLP output at them."""
    point = f"transformer.h.{layer}.mlp"
    with torch.no_grad():
        with capture(lm, [point]) as acts:
            lm(input_ids=data.ids, attention_mask=data.mask)
        v0s = [acts[point][m].float().mean(0) for m in masks]
        base = _log_probs(lm, data.n_ids, data.n_mask)[data.n_keep]
    torch.manual_seed(seed)
    deltas = [torch.zeros_like(v, requires_grad=True) for v in v0s]
    opt = torch.optim.Adam(deltas, lr=lr)
    target = data.labels[:, 1:]
    parts: dict[str, float] = {}

    def adder(ms: list[Tensor]):
        def add(out: Tensor) -> Tensor:
            for m, dlt in zip(ms, deltas, strict=True):
                out = out + m[..., None].to(out.dtype) * dlt
            return out
        return add

    with frozen(lm), torch.enable_grad():
        for _ in range(steps):
            with intervene(lm, {point: adder(masks)}):
                logits = lm(input_ids=data.ids, attention_mask=data.mask).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                    ignore_index=-100)
            with intervene(lm, {point: adder(n_masks)}):
                edited = _log_probs(lm, data.n_ids, data.n_mask)[data.n_keep]
            kl = torch.nn.functional.kl_div(edited, base, log_target=True, reduction="batchmean")
            decay = sum((dlt.norm() / v.norm().clamp_min(1e-6)) ** 2 for dlt, v in zip(deltas, v0s, strict=True))
            loss = nll + kl_weight * kl + weight_decay * decay
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for dlt, v in zip(deltas, v0s, strict=True):
                    cap = clamp_norm * v.norm()
                    if dlt.norm() > cap:
                        dlt.mul_(cap / dlt.norm())
            parts = {"nll": float(nll.detach()), "kl": float(kl.detach()), "decay": float(decay.detach())}
            if not torch.isfinite(loss):
                raise MethodError(f"value optimisation diverged: {parts}")
    return [dlt.detach() for dlt in deltas], v0s, parts


@torch.no_grad()
def mean_at(lm: nn.Module, point: str, ids: Tensor, mask: Tensor, masks: list[Tensor]) -> list[Tensor]:
    """The mean output of hook point ``point`` over each mask's positions (float64)."""
    with capture(lm, [point]) as acts:
        lm(input_ids=ids, attention_mask=mask)
    return [acts[point][m].double().mean(0) for m in masks]
