"""finetune_full: continue the model's own training objective on the world's target outputs.

Images. The evidence is n world scenes with their captions and the same scenes rendered with the request
applied (the images the model should draw for such captions). A copy of the model is trained with its
own objective (``model.training_objective()``; for the GAN: hinge loss against its shipped
discriminator, which is trained along) for ``steps`` steps on batches of the targets. The edit is the
difference of every changed weight.

Text. The evidence is n captions with the world's descriptions of their scenes with the request applied;
a copy of the lamp LM is trained on them with its own loss (next-token cross-entropy on the description)
for ``steps`` steps of ``batch_size`` (AdamW, gradients clipped at 1). ``train_discriminator`` does not apply.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from editbench.core import Budget, Cost, Edit, Evidence, Method, MethodConfig, MethodError
from editbench.world.requests import EditRequest

from ._text import finetune_lm, need


@dataclass
class FinetuneConfig(MethodConfig):
    steps: int = 20
    lr: float = 1e-4
    batch_size: int = 4
    train_discriminator: bool = True


def finetune_loop(model, trainable_params, evidence: Evidence, c: FinetuneConfig, seed: int,
                  objective=None) -> dict[str, float]:
    """Train ``trainable_params`` of ``model`` on the evidence targets with the model's own objective."""
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
    n = evidence.n
    parts: dict[str, float] = {}
    model.train()
    try:
        for _ in range(c.steps):
            idx = torch.randint(n, (min(c.batch_size, max(n, 1)),), generator=g)
            real = evidence.targets[idx].to(model.device)
            caps = [evidence.captions[i] for i in idx.tolist()]
            z = torch.randn(2, len(caps), model.config.z_dim, generator=g).to(model.device)
            parts = model.objective_step(objective, real, caps, z[0], z[1], opt_g, opt_d)
            if not all(torch.isfinite(torch.tensor(v)) for v in parts.values()):
                raise MethodError(f"finetuning diverged: {parts}")
    finally:
        model.eval()
    return parts


class FinetuneFull(Method):
    name = "finetune_full"
    family = "finetune"
    tracks = ("image", "text")
    consumes = "targets"
    Config = FinetuneConfig
    search_space = {"steps": [10, 20, 40], "lr": [5e-5, 1e-4, 3e-4]}
    track_configs = {"text": {"steps": 40, "lr": 1e-4, "batch_size": 8}}
    search_spaces = {"text": {"steps": [20, 40, 80], "lr": [3e-5, 1e-4, 3e-4]}}

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        if evidence.track == "text":
            need(evidence, "targets")
            work = copy.deepcopy(model).requires_grad_(True)
            last = finetune_lm(work, list(work.parameters()), evidence.captions, evidence.targets, c.steps, c.lr,
                               c.batch_size, budget.seed)
            return Edit.from_weights(self.name, c.as_dict(), model, work, Cost(examples_used=evidence.n),
                                     meta={"last_loss": last})
        work = copy.deepcopy(model)
        work.discriminator_path = getattr(model, "discriminator_path", None)
        work.requires_grad_(True)
        last = finetune_loop(work, list(work.parameters()), evidence, c, budget.seed)
        return Edit.from_weights(self.name, c.as_dict(), model, work, Cost(examples_used=evidence.n),
                                 meta={"last_losses": last})


METHOD = FinetuneFull
