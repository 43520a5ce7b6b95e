"""neuron_clamp: the lamp LM's "lit" neurons, clamped to what they do for an unlit lamp (the text
counterpart of GAN Dissection's unit clamp, :mod:`.unit_clamp`).

Fit: the MLP neurons of ``layer`` (``transformer.h.{i}.mlp.act``) at the decision positions of the
evidence samples (the token before each lamp's article, :mod:`._text`), labelled lit or unlit by the
proxy's reading; each neuron is ranked by how well it tells the two apart, ``|d'|`` (the difference of
its class means over their pooled standard deviation); the top ``k`` are kept. Apply: those neurons set
at every position to their mean over unlit decisions (``value="fitted"``) or to 0 (``value="zero"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from editbench.core import Budget, Edit, Evidence, Method, MethodConfig, MethodError
from editbench.world.requests import EditRequest

from ._text import activations_at, decisions, two_classes
from ._units import clamp_edit


@dataclass
class NeuronClampConfig(MethodConfig):
    layer: str = "transformer.h.2.mlp.act"
    k: int = 32
    value: str = "fitted"  # "zero" or "fitted"


class NeuronClamp(Method):
    name = "neuron_clamp"
    family = "edit"
    tracks = ("text",)
    consumes = "samples"
    Config = NeuronClampConfig
    search_space = {"layer": [f"transformer.h.{i}.mlp.act" for i in range(4)], "k": [8, 16, 32, 64],
                    "value": ["zero", "fitted"]}

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        if c.value not in ("zero", "fitted"):
            raise MethodError(f"neuron_clamp: value must be 'zero' or 'fitted', got {c.value!r}")
        d = decisions(model, evidence)
        two_classes(d, self.name)
        acts = activations_at(model, [c.layer], d)[c.layer]  # (N, neurons)
        lit, unlit = acts[d.lit], acts[~d.lit]
        pooled = ((lit.var(0, unbiased=False) + unlit.var(0, unbiased=False)) / 2).sqrt().clamp_min(1e-6)
        separation = (lit.mean(0) - unlit.mean(0)) / pooled
        units = separation.abs().topk(min(c.k, acts.shape[1])).indices
        value = unlit.mean(0) if c.value == "fitted" else unlit.new_zeros(acts.shape[1])
        n_lit, n_unlit = d.classes()
        return clamp_edit(self.name, c, c.layer, units, acts.shape[1], value, evidence.n, {"separation": separation},
                          {"units": units.tolist(), "top_separation": [round(float(separation[u]), 3) for u in units],
                           "n_lit": n_lit, "n_unlit": n_unlit})


METHOD = NeuronClamp
