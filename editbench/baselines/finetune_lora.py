"""finetune_lora: the model's own objective through peft LoRA adapters.

LoRA adapters (rank ``r``) are injected with ``peft.inject_adapter_in_model`` into a copy of the model,
on the modules matching ``target_modules`` (by default every 3x3 conv of the upsampling blocks: peft's
LoRA supports ``Conv2d``). Only the adapters train, with the loop of :mod:`finetune_full`. The injection is
:func:`editbench.baselines._lora.inject_lora`, shared with the activation study's reporter. The edit
stores each adapter's merged weight delta (``get_delta_weight``); ``params_changed`` counts the
adapter parameters.

Text: the same on the lamp LM's ``Conv1D`` layers (attention ``c_attn``/``c_proj`` and MLP ``c_fc``/``c_proj``
of every block; peft's LoRA handles GPT-2's transposed ``Conv1D`` weights with ``fan_in_fan_out``), trained
with the LM loss of :mod:`finetune_full` on the world's target descriptions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from editbench.core import Budget, Choice, Cost, Edit, Evidence, LogFloat, Method
from editbench.tracks import get_track
from editbench.tracks.text.model import CONV1D_MODULES as TEXT_MODULES
from editbench.world.requests import EditRequest

from ._lora import inject_lora, lora_deltas
from .finetune_full import IMAGE_EPOCHS, TEXT_EPOCHS, TEXT_SCHEDULE, FinetuneConfig

RANKS = Choice((1, 2, 4, 8, 16, 32), hard="lo")  # rank 1: the smallest adapter there is (a limit, not an edge)
# text: up to the lamp LM's width (n_embd 128, every adapted module's smaller side), full rank, a limit too;
# text/second_order chose r = 32 of 1..32 at n = 16 (dev 0.950, 8 and 24 trials alike)
TEXT_RANKS = Choice((1, 2, 4, 8, 16, 32, 64, 128), hard="both")


@dataclass
class LoraFinetuneConfig(FinetuneConfig):
    r: int = 4
    alpha: float = 8.0
    target_modules: str = r"blocks\.\d+\.conv[12]"
    lr: float = 1e-3


class FinetuneLora(Method):
    name = "finetune_lora"
    family = "finetune"
    tracks = ("image", "text")
    consumes = "targets"
    Config = LoraFinetuneConfig
    search_space = {"r": RANKS, "lr": LogFloat(1e-4, 3e-2), "epochs": IMAGE_EPOCHS,
                    "train_discriminator": Choice((False, True))}
    track_configs = {"text": {"target_modules": TEXT_MODULES, "epochs": 20.0, "lr": 1e-3, **TEXT_SCHEDULE}}
    # text: lr from 1e-5 (the larger searches of text/ood_transfer and text/unlit_lamps at n = 16 chose 1.01e-4 of
    # 1e-4..3e-2, at rank 1 and 105-153 epochs)
    search_spaces = {"text": {"r": TEXT_RANKS, "lr": LogFloat(1e-5, 3e-2), "epochs": TEXT_EPOCHS}}

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        work = copy.deepcopy(model)
        work.discriminator_path = getattr(model, "discriminator_path", None)
        work, lora_params = inject_lora(work, c.r, c.alpha, c.target_modules, seed=budget.seed)  # same seed, same edit
        cost = Cost(params_changed=sum(p.numel() for p in lora_params), examples_used=evidence.n)
        log = get_track(evidence.track).finetune(work, lora_params, evidence, c, budget.seed, cost)
        merged = lora_deltas(work)
        tensors, deltas = {f"delta.{name}": d for name, d in merged.items()}, list(merged)
        return Edit(self.name, c.as_dict(), tensors=tensors, deltas=deltas,
                    cost=cost, meta={"schedule": log, "adapted_modules": len(deltas)})


METHOD = FinetuneLora
