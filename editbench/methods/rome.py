"""rome: Rank-One Model Editing (Meng et al. 2022) of the lamp LM: "the lamp being introduced is unlit".

* **Layer**: ``layer`` or, at -1, the layer causal tracing finds on the evidence (:mod:`._memory`).
* **Key** ``k*``: the input of that layer's MLP output projection (``h.{l}.mlp.c_proj``, the MLP neurons
  after the activation) at the subject, the token where the LM introduces a lamp (:mod:`._memory` says
  why), averaged over the evidence's contexts (the context templates).
* **Second moment** ``C = E[k k^T]`` of the keys over every token of a fixed lamp corpus of world captions
  and descriptions (no external corpus), cached by the model's hash; ``ridge`` times its mean diagonal
  is added.
* **Value** ``v* = v0 + delta``: the mean MLP output at the subject plus a vector optimised so the LM
  gives the target descriptions (each evidence sample as the proxy reads it, with the request applied),
  with a KL term on the room sentences of the evidence's own descriptions (:mod:`._memory`).
* **Update** of the projection ``W`` (GPT-2's ``Conv1D``: ``y = k W + b``), rank one::

      delta_W = C^-1 k* (v* - (k* W + b))^T / (k*^T C^-1 k*)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from editbench.core import Budget, Cost, Edit, Evidence, Method, MethodError
from editbench.world.requests import EditRequest

from ._memory import ValueConfig, edit_data, mean_at, optimise_values, trace_layer
from ._text import key_second_moment, need
from ._units import rank_one_delta


@dataclass
class RomeConfig(ValueConfig):
    layer: int = -1  # -1: found by causal tracing on the evidence
    ridge: float = 0.1


class Rome(Method):
    name = "rome"
    family = "edit"
    tracks = ("text",)
    consumes = "samples"
    Config = RomeConfig
    search_space = {"layer": [-1, 0, 1, 2, 3], "weight_decay": [0.05, 0.5], "clamp_norm": [4.0, 8.0, 16.0],
                    "ridge": [0.01, 0.1, 1.0]}

    @torch.no_grad()
    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        need(evidence)
        n_layer = model.config.n_layer
        effects = None
        layer = c.layer
        if layer < 0:
            layer, effects = trace_layer(model, evidence, c.noise, budget.seed)
        if not 0 <= layer < n_layer:
            raise MethodError(f"rome: layer {layer} is not a block of this {n_layer}-layer model")
        data = edit_data(model, evidence, request)
        (delta,), (v0,), losses = optimise_values(model, data, layer, [data.subjects["lamp introduced"]],
                                                  [data.n_subjects["lamp introduced"]], c.v_steps,
                                                  c.v_lr, c.kl_weight, c.weight_decay, c.clamp_norm, budget.seed)
        (k_star,) = mean_at(model, f"transformer.h.{layer}.mlp.act", data.ids, data.mask,
                            [data.subjects["lamp introduced"]])
        proj = model.transformer.h[layer].mlp.c_proj
        W, b = proj.weight.detach().double(), proj.bias.detach().double()
        v_star = v0.double() + delta.double()
        C = key_second_moment(model, layer)
        C = C + c.ridge * C.diagonal().mean() * torch.eye(C.shape[0], dtype=C.dtype)
        update = rank_one_delta(C, k_star, v_star - (k_star @ W + b), keys_first=True)
        name = f"transformer.h.{layer}.mlp.c_proj.weight"
        return Edit(self.name, c.as_dict(), tensors={f"delta.{name}": update.to(proj.weight.dtype).contiguous()},
                    deltas=[name], cost=Cost(params_changed=update.numel(), examples_used=evidence.n),
                    meta={"layer": layer, "traced": effects is not None,
                          "indirect_effects": [round(e, 4) for e in effects] if effects else None,
                          "contexts": int(data.ids.shape[0]), "delta_norm": round(float(delta.norm()), 4),
                          "v0_norm": round(float(v0.norm()), 4), "losses": losses})


METHOD = Rome
