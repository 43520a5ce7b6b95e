"""finetune_reward: optimise the model against its evaluator.

Images: against the lamp meter, with a penalty for change elsewhere. For captions from the evidence and
fresh latents, a copy of the model is trained to minimise::

    loss = mean lamp light the meter reads (first order; plus second order if the request asks)
         + penalty * mean |G'(z, c) - G(z, c)| outside the original sample's lamp light

Every image the meter reads costs one evaluator call; training stops when the call budget is spent
(at most ``steps`` steps). The edit is the difference of every changed weight.

Text: rejection sampling then supervised finetuning (expert iteration), in ``rounds`` rounds. Each round
spends its share of the evaluator calls on fresh descriptions of the evidence captions sampled from the
current copy of the LM, read by the evaluator (the text track's proxy); the descriptions it reads as
granting the request (at least one targeted lamp, none of them lit) are kept, and the copy is trained
on every description kept so far for ``steps`` steps with the LM loss. ``penalty`` does not apply.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from editbench.core import Budget, Cost, Edit, Evidence, Method, MethodConfig, MethodError
from editbench.tracks.image.meter import LIGHT_PIXEL
from editbench.world.requests import EditRequest

from ._text import finetune_lm


@dataclass
class RewardConfig(MethodConfig):
    steps: int = 30
    lr: float = 1e-4
    batch_size: int = 4
    penalty: float = 5.0
    rounds: int = 2


class FinetuneReward(Method):
    name = "finetune_reward"
    family = "finetune"
    tracks = ("image", "text")
    consumes = "captions"
    uses_evaluator = True
    Config = RewardConfig
    search_space = {"lr": [5e-5, 1e-4, 3e-4], "penalty": [1.0, 5.0, 20.0]}
    track_configs = {"text": {"steps": 20, "lr": 1e-4, "batch_size": 8}}
    search_spaces = {"text": {"lr": [3e-5, 1e-4, 3e-4], "steps": [10, 20, 40], "rounds": [1, 2, 4]}}

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        ev = evidence.evaluator
        if ev is None:
            raise MethodError("finetune_reward needs evaluator calls in its budget")
        if not evidence.captions:
            raise MethodError("finetune_reward needs at least one caption")
        if evidence.track == "text":
            return self.fit_text(model, request, evidence, budget)
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


    def fit_text(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        ev = evidence.evaluator
        work = copy.deepcopy(model).requires_grad_(True)
        kept_caps: list[str] = []
        kept: list[str] = []
        log = []
        for r in range(max(1, c.rounds)):
            m = ev.remaining // (max(1, c.rounds) - r)
            if m < 1:
                break
            caps = [evidence.captions[i % evidence.n] for i in range(m)]
            with torch.no_grad():
                texts = work.generate(caps, work.make_noise(m, budget.seed * 1000 + r))
            for cap, text, facts in zip(caps, texts, ev(texts), strict=True):
                places = request.target_places(facts) if facts is not None else set()
                if places and not any(lamp.lit for lamp in facts.lamps if lamp.place in places):
                    kept_caps.append(cap)
                    kept.append(text)
            log.append({"sampled": m, "kept": len(kept)})
            if kept:
                finetune_lm(work, list(work.parameters()), kept_caps, kept, c.steps, c.lr, c.batch_size,
                            budget.seed + r)
        return Edit.from_weights(self.name, c.as_dict(), model, work.eval(), Cost(examples_used=evidence.n),
                                 meta={"rounds": log})


METHOD = FinetuneReward
