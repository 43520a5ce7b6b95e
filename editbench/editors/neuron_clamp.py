"""neuron_clamp: the lamp LM's "lit" neurons, clamped to what they do for an unlit lamp (the text
counterpart of GAN Dissection's unit clamp, :mod:`.unit_clamp`).

Fit: the MLP neurons of ``layer`` (``transformer.h.{i}.mlp.act``) at the stated positions of the evidence
samples (the lamp's kind word after its state word, each lamp sentence read as sampled and with its state
flipped: :func:`editbench.tracks.text.positions.stated`), labelled by the state the text states; each neuron is ranked by how well
it tells the two apart, ``|d'|`` (the difference of its class means over their pooled standard
deviation); the top ``k`` are kept. Apply: those neurons set at every position to a value the unlit class
supports: ``value="quantile"`` the unlit class's ``quantile`` on the unlit side of the neuron (its upper
quantile where unlit lamps raise the neuron, its lower one where they lower it: GAN Dissection sets units
beyond their mean, and a class mean halfway between the classes' spread caps the push), ``"mean"`` the
unlit class's mean, ``"zero"`` 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from editbench.core import Budget, Choice, Edit, Evidence, Float, LogInt, Method, MethodConfig, MethodError
from editbench.tracks.text.positions import activations_at, stated
from editbench.world.requests import EditRequest

from ._unit_ranking import clamp_edit

VALUES = ("quantile", "mean", "zero")


@dataclass
class NeuronClampConfig(MethodConfig):
    layer: str = "transformer.h.3.mlp.act"
    k: int = 64
    value: str = "quantile"  # "quantile", "mean" or "zero"
    quantile: float = 0.99


class NeuronClamp(Method):
    name = "neuron_clamp"
    family = "edit"
    tracks = ("text",)
    consumes = "samples"
    Config = NeuronClampConfig
    # k: of the 512 neurons; a quantile of 0.5 or 1 is a limit, not an edge
    search_space = {"layer": Choice(tuple(f"transformer.h.{i}.mlp.act" for i in range(4))),
                    "k": LogInt(1, 512, hard="hi"), "value": Choice(tuple(VALUES)), "quantile": Float(0.5, 1.0, hard="both")}

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        if c.value not in VALUES:
            raise MethodError(f"neuron_clamp: value must be one of {list(VALUES)}, got {c.value!r}")
        if not 0.5 <= c.quantile <= 1:
            raise MethodError(f"neuron_clamp: quantile must lie in [0.5, 1], got {c.quantile}")
        d = stated(model, evidence)
        acts = activations_at(model, [c.layer], d)[c.layer]  # (N, neurons)
        lit, unlit = acts[d.lit], acts[~d.lit]
        pooled = ((lit.var(0, unbiased=False) + unlit.var(0, unbiased=False)) / 2).sqrt().clamp_min(1e-6)
        separation = (lit.mean(0) - unlit.mean(0)) / pooled
        units = separation.abs().topk(min(c.k, acts.shape[1])).indices
        if c.value == "quantile":
            high, low = unlit.quantile(c.quantile, dim=0), unlit.quantile(1 - c.quantile, dim=0)
            value = torch.where(separation < 0, high, low)  # unlit above lit: its upper quantile
        elif c.value == "mean":
            value = unlit.mean(0)
        else:
            value = unlit.new_zeros(acts.shape[1])
        n_lit, n_unlit = d.classes()
        return clamp_edit(self.name, c, c.layer, units, acts.shape[1], value, evidence.n, {"separation": separation},
                          {"units": units.tolist(), "top_separation": [round(float(separation[u]), 3) for u in units],
                           "n_lit": n_lit, "n_unlit": n_unlit}, forward=len(d.ids))


METHOD = NeuronClamp
