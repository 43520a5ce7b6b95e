"""dim_lamps: scale down the units of one layer that fire most on lamp light (an example plugin)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from editbench.api import Budget, Cost, Edit, EditRequest, Evidence, Method, MethodConfig, MethodError, capture


@dataclass
class DimLampsConfig(MethodConfig):
    layer: str = "blocks.2"
    k: int = 16
    factor: float = 0.0  # multiply the chosen units by this


class DimLamps(Method):
    name = "dim_lamps"
    family = "edit"
    tracks = ("image",)
    consumes = "samples"
    Config = DimLampsConfig
    search_space = {"k": [8, 16, 32], "factor": [0.0, 0.5]}

    @torch.no_grad()
    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        with capture(model, [c.layer]) as acts:
            model.generate(evidence.captions, z=evidence.noise)
        units = acts[c.layer]  # (n, C, h, w)
        light = evidence.readings.light1[:, None]  # (n, 1, H, W)
        light = torch.nn.functional.adaptive_avg_pool2d(light, units.shape[-2:])
        if light.sum() == 0:
            raise MethodError("no lamp light in the evidence")
        score = (units * light).sum((0, 2, 3)) / units.sum((0, 2, 3)).clamp_min(1e-6)
        chosen = torch.zeros(units.shape[1])
        chosen[score.topk(min(c.k, units.shape[1])).indices] = 1.0
        value = torch.zeros(units.shape[1])  # clamp = out * (1 - mask) + value * mask
        mask = chosen * (1 - c.factor)
        return Edit(self.name, c.as_dict(), tensors={"mask": mask, "value": value},
                    hooks={c.layer: {"op": "clamp", "mask": "mask", "value": "value"}},
                    cost=Cost(examples_used=evidence.n))
