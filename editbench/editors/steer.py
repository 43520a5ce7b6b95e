"""steer: add the mean difference of a layer's activations, lamps unlit minus lamps lit (ActAdd / ITI).

Images. Fit: split the evidence samples by what the meter reads: rooms with a lit lamp, and rooms whose lamps
are all unlit. The mean difference ``mean(acts | all unlit) - mean(acts | lit)``, per position
(``spatial=True``, shape (C, h, w)) or per channel (C,), normalised to a unit ``direction``; ``sigma`` is
the standard deviation of the evidence activations along it (per sample for a spatial direction, per
position for a channel one). When the evidence holds no room of one of the two groups (tiny budgets), the
mean difference is the per-channel contrast between cells outside and inside lamp light. Apply:
``out + strength * sigma * direction`` everywhere: ``strength`` is in standard deviations, as in text.

Text. Fit: the residual stream (``transformer.h.{i}``) at the stated positions of the evidence samples
(the lamp's kind word after its state word, each lamp sentence read as sampled and with its state flipped:
:func:`editbench.tracks.text.positions.stated`), labelled by the state the text states, as contrastive activation addition reads
paired examples. ``direction`` is the unit mass-mean shift (unlit minus lit, normalised) and ``sigma`` the
standard deviation of the activations along it. Apply: ``out + strength * sigma * direction`` at every
position, while the LM reads the caption and at every generation step: ``strength`` is a push in standard
deviations, the same push at every budget (the raw mean difference's norm falls with n as the noise in
the class means averages out, so an unnormalised strength pushes less the more evidence there is).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from editbench.core import Budget, Choice, Cost, Edit, Evidence, LogFloat, Method, MethodConfig
from editbench.tracks.text.positions import activations_at, stated, unit_direction
from editbench.world.requests import EditRequest

from ._unit_ranking import activations, lamp_light_mask, layer_mask


@dataclass
class SteerConfig(MethodConfig):
    layer: str = "blocks.0"
    strength: float = 1.0
    spatial: bool = True


def steer_edit(name: str, config: MethodConfig, layer: str, direction: Tensor, strength: float, n: int,
               meta: dict, forward: int | None = None) -> Edit:
    """The edit that adds ``strength * direction`` to ``layer``'s output (fitted on ``n`` examples read in
    ``forward`` passes, by default one each)."""
    return Edit(name, config.as_dict(), tensors={f"direction.{layer}": direction.contiguous()},
                hooks={layer: {"op": "add", "direction": f"direction.{layer}", "strength": strength}},
                cost=Cost(params_changed=0, examples_used=n, forward=n if forward is None else forward), meta=meta)


class Steer(Method):
    name = "steer"
    family = "edit"
    tracks = ("image", "text")
    consumes = "samples"
    Config = SteerConfig
    search_space = {"layer": Choice(("stem", "blocks.0", "blocks.1")), "strength": LogFloat(0.05, 16.0),
                    "spatial": Choice((True, False))}
    track_configs = {"text": {"layer": "transformer.h.1", "strength": 2.0, "spatial": False}}
    search_spaces = {"text": {"layer": Choice(tuple(f"transformer.h.{i}" for i in range(4))),
                              "strength": LogFloat(0.05, 32.0)}}  # standard deviations

    def fit_image(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
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
        if direction.dim() == 3:  # one (C, h, w) pattern: its spread over the samples
            unit, sigma, norm = unit_direction(acts.flatten(1), torch.ones(0, dtype=torch.bool), diff=direction.flatten())
            unit = unit.view_as(direction)
        else:  # one channel direction at every position: its spread over positions
            unit, sigma, norm = unit_direction(acts.permute(0, 2, 3, 1).reshape(-1, acts.shape[1]),
                                               torch.ones(0, dtype=torch.bool), diff=direction)
        return steer_edit(self.name, c, c.layer, sigma * unit, c.strength, evidence.n,
                          {"direction_from": how, "n_lit": int(lit.sum()), "n_unlit": int(unlit.sum()),
                           "sigma": round(float(sigma), 4), "mean_difference_norm": round(float(norm), 4)})

    def fit_text(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        d = stated(model, evidence)
        acts = activations_at(model, [c.layer], d)[c.layer]
        unit, sigma, norm = unit_direction(acts, d.lit)
        n_lit, n_unlit = d.classes()
        return steer_edit(self.name, c, c.layer, sigma * unit, c.strength, evidence.n,
                          {"direction_from": "stated positions", "n_lit": n_lit, "n_unlit": n_unlit,
                           "sigma": round(float(sigma), 4), "mean_difference_norm": round(float(norm), 4)},
                          forward=len(d.ids))


METHOD = Steer
