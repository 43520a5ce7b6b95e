"""finetune_reward: optimise the generator against the lamp meter, with a penalty for change elsewhere.

For captions from the evidence and fresh latents, a copy of the model is trained to minimise::

    loss = mean lamp light the meter reads (first order; plus second order if the request asks)
         + penalty * mean |G'(z, c) - G(z, c)| outside the original sample's lamp light

Every image the meter reads costs one evaluator call; training stops when the call budget is spent
(at most ``steps`` steps). The edit is the difference of every changed weight.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from editbench.core import Budget, Cost, Edit, Evidence, Method, MethodConfig, MethodError
from editbench.tracks.image.meter import LIGHT_PIXEL
from editbench.world.requests import EditRequest


@dataclass
class RewardConfig(MethodConfig):
    steps: int = 30
    lr: float = 1e-4
    batch_size: int = 4
    penalty: float = 5.0


class FinetuneReward(Method):
    name = "finetune_reward"
    family = "finetune"
    tracks = ("image",)
    consumes = "captions"
    uses_evaluator = True
    Config = RewardConfig
    search_space = {"lr": [5e-5, 1e-4, 3e-4], "penalty": [1.0, 5.0, 20.0]}

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        ev = evidence.evaluator
        if ev is None:
            raise MethodError("finetune_reward needs evaluator calls in its budget")
        if not evidence.captions:
            raise MethodError("finetune_reward needs at least one caption")
        work = copy.deepcopy(model).train().requires_grad_(True)
        opt = torch.optim.Adam(work.parameters(), lr=c.lr, betas=(0.0, 0.99))
        g = torch.Generator().manual_seed(budget.seed)
        steps = 0
        try:
            while steps < c.steps and ev.remaining >= 2 * c.batch_size:
                idx = torch.randint(evidence.n, (c.batch_size,), generator=g).tolist()
                caps = [evidence.captions[i] for i in idx]
                z = torch.randn(c.batch_size, model.config.z_dim, generator=g).to(model.device)
                ids, mask = model.encode_captions(caps)
                with torch.no_grad():
                    before = model(z, ids, mask)
                    region = ev(before).lamp_light() > LIGHT_PIXEL  # (B, H, W): where lamp light was
                after = work(z, ids, mask)
                out = ev.differentiable(after)
                light = F.relu(out["light1"]) + (F.relu(out["light2"]) if request.second_order else 0)
                keep = (~region)[:, None].float()
                loss = light.mean() + c.penalty * ((after - before).abs() * keep).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
                if not torch.isfinite(loss):
                    raise MethodError(f"finetune_reward diverged at step {steps}")
        finally:
            work.eval()
        return Edit.from_weights(self.name, c.as_dict(), model, work, Cost(examples_used=evidence.n),
                                 meta={"steps": steps})


METHOD = FinetuneReward
