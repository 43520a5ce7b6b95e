"""memit: Mass-Editing Memory in a Transformer (Meng et al. 2023) on the lamp LM: several associations
written at once, spread over a range of layers.

* **Subjects** (:mod:`._memory`): the lamps introduced as table lamps, as floor lamps, and the lamps the
  caption names; each present in the evidence is one memory to write.
* **Layers**: ``layers`` (comma-separated block indices) or, empty, the ``span`` blocks ending at the
  layer causal tracing finds on the evidence; ``L`` is the last of them.
* **Targets**: for each subject ``i``, ``z_i = h_i + delta_i``, with ``h_i`` the mean residual stream after
  block ``L`` at its positions and ``delta_i`` optimised as ROME's value is (all subjects together).
* **Update**, layer by layer from the first: with ``K`` the mean keys (inputs of ``h.{l}.mlp.c_proj``) of
  the subjects under the weights edited so far, ``R`` the part of ``z - h`` not yet reached at ``L``
  divided by the number of layers left, and ``C = mom2_weight * E[k k^T]`` the keys' second moment on the
  lamp corpus (the unedited model's, cached)::

      delta_W_l = (C + K^T K)^-1 K^T R        (GPT-2's Conv1D: y = k W + b)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from editbench.core import Budget, Cost, Edit, Evidence, Method, MethodError
from editbench.world.requests import EditRequest

from ._memory import ValueConfig, edit_data, mean_at, optimise_values, trace_layer
from ._text import key_second_moment, need

MEMORIES = ("table lamp", "floor lamp", "lamp named")


@dataclass
class MemitConfig(ValueConfig):
    layers: str = ""  # e.g. "1,2,3"; empty: the `span` layers ending at the traced one
    span: int = 2
    mom2_weight: float = 10.0


class Memit(Method):
    name = "memit"
    family = "edit"
    tracks = ("text",)
    consumes = "samples"
    Config = MemitConfig
    search_space = {"span": [1, 2, 3, 4], "mom2_weight": [1.0, 10.0, 100.0], "clamp_norm": [4.0, 8.0, 16.0]}

    def layer_range(self, model, evidence: Evidence, seed: int) -> tuple[list[int], list[float] | None]:
        c, n_layer = self.config, model.config.n_layer
        if c.layers.strip():
            try:
                layers = sorted({int(x) for x in c.layers.split(",")})
            except ValueError:
                raise MethodError(f"memit: layers must be comma-separated block indices, got {c.layers!r}") from None
            if not all(0 <= x < n_layer for x in layers):
                raise MethodError(f"memit: layers {layers} are not all blocks of this {n_layer}-layer model")
            return layers, None
        top, effects = trace_layer(model, evidence, c.noise, seed)
        return list(range(max(0, top - c.span + 1), top + 1)), effects

    @torch.no_grad()
    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        need(evidence)
        layers, effects = self.layer_range(model, evidence, budget.seed)
        last = layers[-1]
        data = edit_data(model, evidence, request)
        names = [k for k in MEMORIES if data.subjects[k].any()]
        masks = [data.subjects[k] for k in names]
        deltas, _, losses = optimise_values(model, data, last, masks, [data.n_subjects[k] for k in names], c.v_steps,
                                            c.v_lr, c.kl_weight, c.weight_decay, c.clamp_norm, budget.seed)
        resid = f"transformer.h.{last}"
        h0 = torch.stack(mean_at(model, resid, data.ids, data.mask, masks))
        z = h0 + torch.stack(deltas).double()
        work = copy.deepcopy(model)
        for i, layer in enumerate(layers):
            K = torch.stack(mean_at(work, f"transformer.h.{layer}.mlp.act", data.ids, data.mask, masks))  # (m, keys)
            R = (z - torch.stack(mean_at(work, resid, data.ids, data.mask, masks))) / (len(layers) - i)  # (m, d)
            C = c.mom2_weight * key_second_moment(model, layer)
            update = torch.linalg.solve(C + K.T @ K, K.T @ R)  # (keys, d)
            proj = work.transformer.h[layer].mlp.c_proj
            proj.weight.add_(update.to(proj.weight.dtype))
        reached = torch.stack(mean_at(work, resid, data.ids, data.mask, masks))
        residual = float((z - reached).norm() / (z - h0).norm().clamp_min(1e-12))
        return Edit.from_weights(self.name, c.as_dict(), model, work, Cost(examples_used=evidence.n),
                                 meta={"layers": layers, "memories": names, "losses": losses,
                                       "indirect_effects": [round(e, 4) for e in effects] if effects else None,
                                       "unreached_share": round(residual, 4)})


METHOD = Memit
