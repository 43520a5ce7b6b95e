"""finetune_full: continue the model's own training objective on the world's target outputs.

Images. The evidence is n world scenes with their captions and the same scenes rendered with the request
applied (the images the model should draw for such captions). A copy of the model is trained with its
own objective (``model.training_objective()``; for the GAN: hinge loss against its shipped
discriminator, trained along or frozen: ``train_discriminator``, searched) for ``epochs`` epochs of
mini-batches of the targets (at least ``min_steps``, at most ``max_steps`` steps: :mod:`editbench.core.schedule`). The edit
is the difference of every changed weight. The generator's passes are counted (twice forward with a
discriminator step, its fakes and its own step; once backward); the cell's FLOPs are the objective's,
the discriminator's included (it costs more than the generator: about 1.5 GFLOP per image forward against
0.9), counted with :mod:`torch.utils.flop_counter` on the first step.

Text. The evidence is n captions with the world's descriptions of their scenes with the request applied;
a copy of the lamp LM is trained on them with its own loss (next-token cross-entropy on the description)
for ``epochs`` epochs of mini-batches of ``batch_size`` (AdamW, gradients clipped at 1).
``train_discriminator`` does not apply.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from editbench.core import Budget, Choice, Cost, Edit, Evidence, LogFloat, Method, MethodConfig, MethodError
from editbench.core.schedule import epoch_batches, schedule
from editbench.tracks.text.finetune import finetune_lm
from editbench.world.requests import EditRequest


@dataclass
class FinetuneConfig(MethodConfig):
    epochs: float = 5.0
    lr: float = 1e-4
    batch_size: int = 4
    min_steps: int = 10
    max_steps: int = 128
    train_discriminator: bool = False  # images: train the shipped discriminator along (searched)


TEXT_SCHEDULE = {"batch_size": 8, "min_steps": 20, "max_steps": 512}  # every text finetuning's batches and cap


def finetune_loop(model, trainable_params, evidence: Evidence, c: FinetuneConfig, seed: int, cost: Cost,
                  objective=None) -> dict[str, float]:
    """Train ``trainable_params`` of ``model`` on the evidence targets with the model's own objective for
    ``c.epochs`` epochs; adds the compute to ``cost``; returns the schedule and the last losses."""
    if evidence.targets is None:
        raise MethodError("finetuning needs evidence of kind 'targets'")
    objective = objective or model.training_objective()
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


class FinetuneFull(Method):
    name = "finetune_full"
    family = "finetune"
    tracks = ("image", "text")
    consumes = "targets"
    Config = FinetuneConfig
    version = "2"  # lr searched up to 1e-2 (tuned at 8.7e-4 of 1e-3 on ood_transfer, n = 1)
    search_space = {"epochs": LogFloat(1.0, 32.0), "lr": LogFloat(1e-5, 1e-2), "train_discriminator": Choice((False, True))}
    track_configs = {"text": {"epochs": 20.0, "lr": 1e-4, **TEXT_SCHEDULE}}
    search_spaces = {"text": {"epochs": LogFloat(2.0, 128.0), "lr": LogFloat(1e-5, 1e-2)}}

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        cost = Cost(examples_used=evidence.n)
        work = copy.deepcopy(model)
        work.discriminator_path = getattr(model, "discriminator_path", None)
        work.requires_grad_(True)
        if evidence.track == "text":
            evidence.need("targets")
            log = finetune_lm(work, list(work.parameters()), evidence.captions, evidence.targets, c.epochs, c.lr,
                              c.batch_size, budget.seed, cost, c.min_steps, c.max_steps)
        else:
            log = finetune_loop(work, list(work.parameters()), evidence, c, budget.seed, cost)
        return Edit.from_weights(self.name, c.as_dict(), model, work, cost, meta={"schedule": log})


METHOD = FinetuneFull
