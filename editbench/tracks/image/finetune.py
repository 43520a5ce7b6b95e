"""How finetuning reaches the generator: its own GAN objective (hinge loss against its shipped
discriminator, trained along or frozen) on target images for a number of epochs of seeded mini-batches, the
objective's FLOPs counted with :mod:`torch.utils.flop_counter` on the first step."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from editbench.core import Cost, Evidence, MethodError
from editbench.core.schedule import epoch_batches, schedule


def finetune_generator(model, trainable_params, evidence: Evidence, c: Any, seed: int, cost: Cost) -> dict[str, float]:
    """Train ``trainable_params`` of the generator ``model`` on the evidence targets with its own objective for
    ``c.epochs`` epochs (the discriminator trained along when ``c.train_discriminator``, at twice the rate); adds
    the compute to ``cost``; returns the schedule and the last losses."""
    evidence.need("targets")
    objective = model.training_objective()
    D = copy.deepcopy(objective.discriminator).train()
    objective.discriminator = D
    opt_g = torch.optim.Adam(trainable_params, lr=c.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=2 * c.lr, betas=(0.0, 0.99)) if c.train_discriminator else None
    if not c.train_discriminator:
        D.requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    plan = schedule(evidence.n, c.batch_size, c.epochs, c.min_steps, c.max_steps)
    parts: dict[str, float] = {}
    model.train()
    try:
        per_step = 0.0
        for step, idx in enumerate(epoch_batches(evidence.n, plan.batch, plan.steps, g)):
            real = evidence.targets[idx].to(model.device)
            caps = [evidence.captions[i] for i in idx.tolist()]
            z = torch.randn(2, len(caps), model.config.z_dim, generator=g).to(model.device)
            if step == 0:
                with FlopCounterMode(display=False) as counter:
                    parts = model.objective_step(objective, real, caps, z[0], z[1], opt_g, opt_d)
                per_step = float(counter.get_total_flops())
            else:
                parts = model.objective_step(objective, real, caps, z[0], z[1], opt_g, opt_d)
            cost.spend(forward=2 * len(idx) if opt_d is not None else len(idx), backward=len(idx), steps=1, seen=len(idx))
            if not all(torch.isfinite(torch.tensor(v)) for v in parts.values()):
                raise MethodError(f"finetuning diverged: {parts}")
    finally:
        model.eval()
    cost.flops = (cost.flops or 0.0) + per_step * plan.steps
    return {**plan.as_dict(), **parts}
