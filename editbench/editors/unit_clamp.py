"""unit_clamp: GAN Dissection's lamp units, set to a value everywhere.

Fit: capture the layer's units on the evidence samples; threshold each unit's upsampled activation at
its own ``quantile`` and rank units by IoU with the meter's lamp-light mask; keep the top ``k``.
Apply: ``out[:, units] = value`` at every position, where ``value`` is 0 or (``value="fitted"``) each
unit's mean activation outside lamp light (what the unit does where no lamp shines).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from editbench.core import Budget, Choice, Edit, Evidence, Float, LogInt, Method, MethodConfig, MethodError
from editbench.world.requests import EditRequest

from ._unit_ranking import activations, clamp_edit, lamp_light_mask, layer_mask, rank_units


@dataclass
class UnitClampConfig(MethodConfig):
    layer: str = "blocks.2"
    k: int = 32
    quantile: float = 0.99
    value: str = "fitted"  # "zero" or "fitted"


class UnitClamp(Method):
    name = "unit_clamp"
    family = "edit"
    tracks = ("image",)
    consumes = "samples"
    Config = UnitClampConfig
    # k to 128: second_order at n = 1 (24 trials) chose 58 of 2..64; quantile from 0.5: single_lamp and unlit_lamps
    # chose 0.903 of 0.9..1 (a quantile of 1 is a limit: only the peak activation counts)
    search_space = {"layer": Choice(("blocks.1", "blocks.2")), "k": LogInt(2, 128), "value": Choice(("zero", "fitted")),
                    "quantile": Float(0.5, 1.0, hard="hi")}

    def select_units(self, model, request: EditRequest, evidence: Evidence) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(acts, lamp mask, IoU per unit) on the evidence."""
        c = self.config
        acts = activations(model, c.layer, evidence)
        mask = lamp_light_mask(evidence, request)
        if not mask.any():
            raise MethodError("the evidence samples show no lamp light to find lamp units with")
        return acts, mask, rank_units(acts, mask, c.quantile)

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        if c.value not in ("zero", "fitted"):
            raise MethodError(f"unit_clamp: value must be 'zero' or 'fitted', got {c.value!r}")
        acts, mask, iou = self.select_units(model, request, evidence)
        C = acts.shape[1]
        units = iou.topk(min(c.k, C)).indices
        value = torch.zeros(C)
        if c.value == "fitted":
            outside = 1 - layer_mask(mask, acts.shape[-2:])  # (n, h, w)
            value = (acts * outside[:, None]).sum((0, 2, 3)) / outside.sum().clamp_min(1)
        return clamp_edit(self.name, c, c.layer, units, C, value, evidence.n, {"iou": iou},
                          {"units": units.tolist(), "top_iou": [round(float(iou[u]), 4) for u in units]})


METHOD = UnitClamp
