"""finetune_local: localized finetuning, one layer's weights trained epoch by epoch (LocFT-BF).

Fine-tuning Done Right in Model Editing (Yang et al., ICLR 2026) found finetuning weak in editing
benchmarks only because of how it was run, and localized finetuning run properly (mini-batches drawn epoch
by epoch, a few epochs, only one layer's MLP output projection trainable) stronger than ROME and MEMIT. This
is that method on each track, with the evidence and objective of :mod:`.finetune_full`: the difference from
the editors is *how* the change is solved for (gradient descent on the targets' loss, not a closed form on a
key and a value), not *where* it is made.

Text. Only ``transformer.h.{layer}.mlp.c_proj.weight`` trains (the matrix ROME and MEMIT rewrite), on the
world's target descriptions with the LM loss, for ``epochs`` epochs of mini-batches (AdamW, gradients clipped
at 1). The default layer is where the editors' causal trace peaks (``TRACE_LAYER``, from
``editbench models trace``); the layer is searched.

Images. Only the weight of the convolution :mod:`.rank_one` rewrites (``layer``, a block's ``conv2``) trains,
with the GAN's own objective against its discriminator, as :mod:`.finetune_full` trains every weight.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from editbench.core import Budget, Choice, Cost, Edit, Evidence, LogFloat, Method, MethodError
from editbench.tracks import get_track
from editbench.world.requests import EditRequest

from .finetune_full import IMAGE_EPOCHS, TEXT_EPOCHS, TEXT_SCHEDULE, FinetuneConfig

TRACE_LAYER = 0  # the peak of the shipped LM's causal trace (editbench/assets/text/trace.json: "layer")


@dataclass
class LocalFinetuneConfig(FinetuneConfig):
    layer: str = "blocks.2.conv2"  # images: a convolution; text: a block index ("0".."3")
    lr: float = 1e-3


class FinetuneLocal(Method):
    name = "finetune_local"
    family = "finetune"
    tracks = ("image", "text")
    consumes = "targets"
    Config = LocalFinetuneConfig
    search_space = {"layer": Choice(("blocks.1.conv2", "blocks.2.conv2", "blocks.3.conv2")), "lr": LogFloat(1e-5, 1e-1),
                    "epochs": IMAGE_EPOCHS, "train_discriminator": Choice((False, True))}
    track_configs = {"text": {"layer": str(TRACE_LAYER), "epochs": 20.0, "lr": 1e-3, **TEXT_SCHEDULE}}
    search_spaces = {"text": {"layer": Choice(("0", "1", "2", "3")), "lr": LogFloat(1e-5, 1e-1),
                              "epochs": TEXT_EPOCHS}}

    def parameter_image(self, model) -> str:
        return f"{self.config.layer}.weight"

    def parameter_text(self, model) -> str:
        return f"transformer.h.{self.config.layer}.mlp.c_proj.weight"

    def parameter(self, model, track: str) -> str:
        """The one weight that trains on ``track`` (``parameter_<track>``: the layer's name there)."""
        name = self.on_track("parameter", track)(model)
        if name not in dict(model.named_parameters()):
            raise MethodError(f"finetune_local: this model has no parameter {name!r} (layer={self.config.layer!r})")
        return name

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        name = self.parameter(model, evidence.track)
        work = copy.deepcopy(model)
        work.discriminator_path = getattr(model, "discriminator_path", None)
        work.requires_grad_(False)
        param = dict(work.named_parameters())[name].requires_grad_(True)
        cost = Cost(examples_used=evidence.n)
        log = get_track(evidence.track).finetune(work, [param], evidence, c, budget.seed, cost)
        return Edit.from_weights(self.name, c.as_dict(), model, work, cost, meta={"schedule": log, "parameter": name})


METHOD = FinetuneLocal
