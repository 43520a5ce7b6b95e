"""How finetuning reaches the lamp LM: the LM loss on (caption, description) pairs for a number of epochs of
seeded mini-batches, and the targets a method learns from when its evidence is the model's own samples (each as
the proxy reads it, with the request applied)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from editbench.core import Cost, Evidence, MethodError
from editbench.core.schedule import epoch_batches, schedule
from editbench.world.descriptions import Facts, render_facts
from editbench.world.requests import EditRequest

from .train import encode_pairs, lm_loss


def proxy_targets(evidence: Evidence, request: EditRequest) -> tuple[list[str], list[str]]:
    """(captions, descriptions): each evidence sample as the proxy reads it, with the request applied (the
    description the edited model should give for that caption); samples the proxy cannot read are left out."""
    evidence.need("samples")
    caps, texts = [], []
    for c, facts in zip(evidence.captions, evidence.readings, strict=True):
        if isinstance(facts, Facts):
            caps.append(c)
            texts.append(render_facts(request.apply_facts(facts)))
    if not caps:
        raise MethodError("no evidence sample could be read to build a target description from")
    return caps, texts


def finetune_lm(lm: nn.Module, params: list[Tensor], captions: list[str], texts: list[str], epochs: float, lr: float,
                batch_size: int, seed: int, cost: Cost, min_steps: int = 1, max_steps: int = 10**6) -> dict[str, Any]:
    """Train ``params`` of ``lm`` on (caption, description) pairs with the LM loss (AdamW, gradients clipped at
    1) for ``epochs`` epochs of seeded mini-batches (:mod:`editbench.core.schedule`), adding the compute to ``cost``; returns the
    schedule and the last loss."""
    if not captions:
        raise MethodError("finetuning needs at least one (caption, description) pair")
    ids, mask, labels = encode_pairs(lm.tokenizer, captions, texts)
    plan = schedule(len(captions), batch_size, epochs, min_steps, max_steps)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    last = float("nan")
    lm.train()
    try:
        for idx in epoch_batches(len(captions), plan.batch, plan.steps, g):
            loss, _ = lm_loss(lm, ids[idx], mask[idx], labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            cost.spend(forward=len(idx), backward=len(idx), steps=1, seen=len(idx))
            last = float(loss.detach())
            if not torch.isfinite(loss):
                raise MethodError(f"finetuning diverged (loss {last})")
    finally:
        lm.eval()
    return {**plan.as_dict(), "last_loss": last}
