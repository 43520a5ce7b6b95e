"""steer: add the mean difference of a layer's activations, lamps unlit minus lamps lit (ActAdd / ITI).

Fit: split the evidence samples by what the meter reads: rooms with a lit lamp, and rooms whose lamps
are all unlit. ``direction = mean(acts | all unlit) - mean(acts | lit)``, per position
(``spatial=True``, shape (C, h, w)) or per channel (C,). When the evidence holds no room of one of the
two groups (tiny budgets), the direction is the per-channel contrast between cells outside and inside
lamp light. Apply: ``out + strength * direction`` everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from editbench.core import Budget, Cost, Edit, Evidence, Method, MethodConfig
from editbench.world.requests import EditRequest

from ._units import activations, lamp_light_mask, layer_mask


@dataclass
class SteerConfig(MethodConfig):
    layer: str = "blocks.0"
    strength: float = 1.0
    spatial: bool = True


class Steer(Method):
    name = "steer"
    family = "edit"
    tracks = ("image",)
    consumes = "samples"
    Config = SteerConfig
    search_space = {"layer": ["stem", "blocks.0", "blocks.1"], "strength": [0.5, 1.0, 2.0], "spatial": [True, False]}

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        acts = activations(model, c.layer, evidence)
        r = evidence.readings
        lit = r.lit.any(1)
        unlit = (r.count > 0) & ~lit
        if lit.any() and unlit.any():
            diff = acts[unlit].mean(0) - acts[lit].mean(0)  # (C, h, w)
            how = "group means"
            direction = diff if c.spatial else diff.mean((1, 2))
        else:
            inside = layer_mask(lamp_light_mask(evidence, request), acts.shape[-2:])[:, None]
            mean_in = (acts * inside).sum((0, 2, 3)) / inside.sum().clamp_min(1e-6)
            mean_out = (acts * (1 - inside)).sum((0, 2, 3)) / (1 - inside).sum().clamp_min(1e-6)
            direction = mean_out - mean_in
            how = "pixel contrast"
        return Edit(
            self.name, c.as_dict(), tensors={f"direction.{c.layer}": direction.contiguous()},
            hooks={c.layer: {"op": "add", "direction": f"direction.{c.layer}", "strength": c.strength}},
            cost=Cost(params_changed=0, examples_used=evidence.n),
            meta={"direction_from": how, "n_lit": int(lit.sum()), "n_unlit": int(unlit.sum())},
        )


METHOD = Steer
