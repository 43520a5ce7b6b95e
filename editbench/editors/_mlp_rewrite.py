"""What ROME and MEMIT share on the lamp LM: the edit's data, its subjects, the values optimised, and where
an update reaches (causal tracing, which picks their layers, is :mod:`editbench.tracks.text.causal_trace`).

* the **data**: the evidence samples, teacher-forced on the description the edited model should give
  (each sample as the proxy reads it, with the request applied); the *object* the loss asks for is each
  lamp's stated state (its article, ``a`` of ``a lit`` or ``an`` of ``an unlit``);
* the **subject**: in the lamp world's grammar a lamp's state is stated before its noun (``a lit table
  lamp on the left``), so no subject token precedes the fact inside a description; the token the LM
  introduces a lamp at (the ``.`` before its article, where "lit" and "unlit" part) stands for it. ROME
  edits that one subject; MEMIT writes three at once: the lamps introduced as table lamps, as floor lamps,
  and the lamps the caption names (the caption's ``lamp``/``lamps`` tokens);
* **causal tracing** (Meng et al. 2022), once per model (:func:`causal_trace`, ``editbench models trace``):
  the caption (which states which lamps are lit) corrupted with Gaussian noise on its embeddings, then
  each block's MLP output or residual stream restored from the clean run at one kind of position; the
  probability of the lit lamps' article recovered is the indirect effect;
* the **values** (:func:`optimise_values`): for each subject a vector ``delta`` added to a layer's MLP
  output, optimised (Adam, ``v_lr``, at most ``v_steps`` steps, stopping once the loss is below
  ``stop_loss``) for the negative log-likelihood of the objects, plus ``kl_weight`` times the KL divergence
  from the unedited model's next-word distributions over the evidence's own descriptions, every word but
  the lamps' articles (the neighbouring facts an edit should leave alone), plus ``weight_decay`` times
  ``|delta| / |v0|^2`` (Meng et al.'s form; ``decay="squared"``: ``(|delta| / |v0|)^2``); ``|delta|`` is
  kept within ``clamp_norm`` times ``|v0|``;
* **where the update reaches** (``locality``): Meng et al. add ``delta`` at the subject's positions only, and
  their KL reads the subject in another context. Here every word of a description but the objects is in
  the KL, so with ``delta`` only at the subjects the KL cannot see an edit of the last block at all (no
  later block carries it to another position). With ``locality="spread"`` ``delta`` is added at every
  position in the proportion the closed-form update will add it there (:func:`reach`: ``k C^-1 k* /
  k*^T C^-1 k*`` for ROME, exactly its effect on the edited layer), so the KL constrains the edit at every
  layer, the last included, and the value optimised is the one the update writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from editbench.core import Cost, Evidence, MethodConfig, MethodError, capture, intervene
from editbench.tracks.text.causal_trace import log_probs
from editbench.tracks.text.finetune import proxy_targets
from editbench.tracks.text.positions import subject_mask
from editbench.tracks.text.train import encode_pairs
from editbench.world.requests import EditRequest


@dataclass
class ValueConfig(MethodConfig):
    """The settings ROME and MEMIT share: the value optimisation, where it reaches, and causal tracing."""

    v_steps: int = 20
    v_lr: float = 0.5
    kl_weight: float = 0.0625
    weight_decay: float = 0.5
    decay: str = "reference"  # "reference": |delta| / |v0|^2 (Meng et al.); "squared": (|delta| / |v0|)^2
    clamp_norm: float = 4.0
    stop_loss: float = 0.05  # stop once the loss falls below this (Meng et al.); 0: every step
    locality: str = "spread"  # "spread": delta where the update reaches (:func:`reach`); "subject": subjects only
    noise: float = 3.0  # causal tracing: embedding noise, in standard deviations of the embeddings

    def check(self, method: str) -> None:
        for name, allowed in (("decay", ("reference", "squared")), ("locality", ("spread", "subject"))):
            if getattr(self, name) not in allowed:
                raise MethodError(f"{method}: {name} must be one of {list(allowed)}, got {getattr(self, name)!r}")


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


def optimise_values(lm: nn.Module, data: EditData, layer: int, masks: list[Tensor], reach_ids: list[Tensor],
                    reach_n: list[Tensor], c: ValueConfig, seed: int, norms: list[Tensor] | None = None,
                    cost: Cost | None = None) -> tuple[list[Tensor], list[Tensor], dict[str, Any]]:
    """(deltas, v0s, log): one ``delta`` per subject mask (``masks`` on the target sequences), added to
    ``h.{layer}.mlp``'s output in proportion ``reach_ids`` (B, T) on the target sequences and ``reach_n`` on
    the neighbour sequences (the masks themselves for ``locality="subject"``); ``v0`` is the mean unedited MLP
    output at the mask. The clamp and the decay are relative to ``norms`` (default ``|v0|``). ``log``: the
    last loss's parts and the steps taken. The passes are added to ``cost``."""
    point = f"transformer.h.{layer}.mlp"
    cost = cost or Cost()
    passes = len(data.ids) + len(data.n_ids)
    cost.spend(forward=passes)
    with torch.no_grad():
        with capture(lm, [point]) as acts:
            lm(input_ids=data.ids, attention_mask=data.mask)
        v0s = [acts[point][m].float().mean(0) for m in masks]
        base = log_probs(lm, data.n_ids, data.n_mask)[data.n_keep]
    refs = [v.norm().clamp_min(1e-6) for v in v0s] if norms is None else [n.float().clamp_min(1e-6) for n in norms]
    torch.manual_seed(seed)
    deltas = [torch.zeros_like(v, requires_grad=True) for v in v0s]
    opt = torch.optim.Adam(deltas, lr=c.v_lr)
    target = data.labels[:, 1:]
    log: dict[str, Any] = {}

    def adder(ws: list[Tensor]):
        def add(out: Tensor) -> Tensor:
            for w, dlt in zip(ws, deltas, strict=True):
                out = out + w[..., None].to(out.dtype) * dlt
            return out
        return add

    steps = 0
    with frozen(lm), torch.enable_grad():
        for steps in range(1, c.v_steps + 1):
            with intervene(lm, {point: adder(reach_ids)}):
                logits = lm(input_ids=data.ids, attention_mask=data.mask).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                    ignore_index=-100)
            with intervene(lm, {point: adder(reach_n)}):
                edited = log_probs(lm, data.n_ids, data.n_mask)[data.n_keep]
            kl = torch.nn.functional.kl_div(edited, base, log_target=True, reduction="batchmean")
            if c.decay == "reference":
                decay = sum(dlt.norm() / r ** 2 for dlt, r in zip(deltas, refs, strict=True))
            else:
                decay = sum((dlt.norm() / r) ** 2 for dlt, r in zip(deltas, refs, strict=True))
            loss = nll + c.kl_weight * kl + c.weight_decay * decay
            log = {"nll": float(nll.detach()), "kl": float(kl.detach()), "decay": float(decay.detach()), "steps": steps}
            cost.spend(forward=passes)
            if not torch.isfinite(loss):
                raise MethodError(f"value optimisation diverged: {log}")
            if float(loss.detach()) < c.stop_loss:
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
            cost.spend(backward=passes, steps=1, seen=len(data.ids))
            with torch.no_grad():
                for dlt, r in zip(deltas, refs, strict=True):
                    cap = c.clamp_norm * r
                    if dlt.norm() > cap:
                        dlt.mul_(cap / dlt.norm())
    return [dlt.detach() for dlt in deltas], v0s, log


@torch.no_grad()
def keys_at(lm: nn.Module, layer: int, ids: Tensor, mask: Tensor) -> Tensor:
    """(B, T, keys) float64: the inputs of ``h.{layer}.mlp.c_proj`` (the MLP neurons) at every position."""
    point = f"transformer.h.{layer}.mlp.act"
    with capture(lm, [point]) as acts:
        lm(input_ids=ids, attention_mask=mask)
    return acts[point].double()


@torch.no_grad()
def reach(lm: nn.Module, layer: int, data: EditData, readout: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """Where a closed-form update of ``h.{layer}.mlp.c_proj`` adds each memory's residual: ``readout``
    (keys, m) maps a key to the share of each of the m residuals the update adds for it (for ROME's rank one,
    ``C^-1 k* / (k_anchor^T C^-1 k*)``). Returns (per memory, (B, T) float) on the target and the neighbour
    sequences, zero at padding."""
    out = []
    for ids, mask in ((data.ids, data.mask), (data.n_ids, data.n_mask)):
        w = (keys_at(lm, layer, ids, mask) @ readout) * mask[..., None]
        out.append([w[..., i].float() for i in range(readout.shape[1])])
    return out[0], out[1]


@torch.no_grad()
def mean_at(lm: nn.Module, point: str, ids: Tensor, mask: Tensor, masks: list[Tensor]) -> list[Tensor]:
    """The mean output of hook point ``point`` over each mask's positions (float64)."""
    with capture(lm, [point]) as acts:
        lm(input_ids=ids, attention_mask=mask)
    return [acts[point][m].double().mean(0) for m in masks]
