"""finetune_full: continue the model's own training objective on the world's target outputs.

Images. The evidence is n world scenes with their captions and the same scenes rendered with the request
applied (the images the model should draw for such captions). A copy of the model is trained with its
own objective (``model.training_objective()``; for the GAN: hinge loss against its shipped
discriminator, trained along or frozen: ``train_discriminator``, searched) for ``epochs`` epochs of
mini-batches of the targets (at least ``min_steps``, at most ``max_steps`` steps: :mod:`editbench.core.schedule`). The edit
is the difference of every changed weight. The generator's passes are counted (twice forward with a
discriminator step, its fakes and its own step; once backward); the cell's FLOPs are the objective's,
the discriminator's included (it costs more than the generator: about 1.5 GFLOP per image forward against
0.9), counted with :mod:`torch.utils.flop_counter` on the first step.

Text. The evidence is n captions with the world's descriptions of their scenes with the request applied;
a copy of the lamp LM is trained on them with its own loss (next-token cross-entropy on the description)
for ``epochs`` epochs of mini-batches of ``batch_size`` (AdamW, gradients clipped at 1).
``train_discriminator`` does not apply.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from editbench.core import Budget, Choice, Cost, Edit, Evidence, LogFloat, Method, MethodConfig
from editbench.tracks import Offering, get_track
from editbench.world.requests import EditRequest


@dataclass
class FinetuneConfig(MethodConfig):
    epochs: float = 5.0
    lr: float = 1e-4
    batch_size: int = 4
    min_steps: int = 10
    max_steps: int = 128
    train_discriminator: bool = False  # images: train the shipped discriminator along (searched)


TEXT_SCHEDULE = {"batch_size": 8, "min_steps": 20, "max_steps": 512}  # every text finetuning's batches and cap
# The epochs every finetuning searches, per track: at every budget of the full suite (n = 1 to 256) the range runs
# from the schedule's floor (10 steps of images, 20 of text) to its cap (128, 512), so a tuned epoch count can lie
# at a limit of the schedule but never at an edge of the search (core.search.at_edge judges epochs by their steps).
IMAGE_EPOCHS = LogFloat(0.125, 128.0)
TEXT_EPOCHS = LogFloat(0.5, 512.0)


class FinetuneFull(Method):
    name = "finetune_full"
    family = "finetune"
    tracks = Offering("finetune")  # every track that says how finetuning reaches its model
    consumes = "targets"
    Config = FinetuneConfig
    version = "2"  # lr searched up to 1e-2 (tuned at 8.7e-4 of 1e-3 on ood_transfer, n = 1)
    search_space = {"epochs": IMAGE_EPOCHS, "lr": LogFloat(1e-5, 1e-2), "train_discriminator": Choice((False, True))}
    track_configs = {"text": {"epochs": 20.0, "lr": 1e-4, **TEXT_SCHEDULE}}
    search_spaces = {"text": {"epochs": TEXT_EPOCHS, "lr": LogFloat(1e-5, 1e-2)}}

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        cost = Cost(examples_used=evidence.n)
        work = copy.deepcopy(model)
        work.discriminator_path = getattr(model, "discriminator_path", None)
        work.requires_grad_(True)
        log = get_track(evidence.track).finetune(work, list(work.parameters()), evidence, c, budget.seed, cost)
        return Edit.from_weights(self.name, c.as_dict(), model, work, cost, meta={"schedule": log})


METHOD = FinetuneFull
