"""finetune_lora: the model's own objective through peft LoRA adapters.

LoRA adapters (rank ``r``) are injected with ``peft.inject_adapter_in_model`` into a copy of the model,
on the modules matching ``target_modules`` (by default every 3x3 conv of the upsampling blocks: peft's
LoRA supports ``Conv2d``). Only the adapters train, with the loop of :mod:`finetune_full`. The edit
stores each adapter's merged weight delta (``get_delta_weight``); ``params_changed`` counts the
adapter parameters.

Text: the same on the lamp LM's ``Conv1D`` layers (attention ``c_attn``/``c_proj`` and MLP ``c_fc``/``c_proj``
of every block; peft's LoRA handles GPT-2's transposed ``Conv1D`` weights with ``fan_in_fan_out``), trained
with the LM loss of :mod:`finetune_full` on the world's target descriptions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from peft import LoraConfig, inject_adapter_in_model

from editbench.core import Budget, Choice, Cost, Edit, Evidence, LogFloat, Method, MethodError
from editbench.tracks.text.finetune import finetune_lm
from editbench.tracks.text.model import CONV1D_MODULES as TEXT_MODULES
from editbench.world.requests import EditRequest

from .finetune_full import TEXT_SCHEDULE, FinetuneConfig, finetune_loop


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
    search_space = {"r": Choice((1, 2, 4, 8, 16, 32)), "lr": LogFloat(1e-4, 3e-2), "epochs": LogFloat(1.0, 32.0),
                    "train_discriminator": Choice((False, True))}
    track_configs = {"text": {"target_modules": TEXT_MODULES, "epochs": 20.0, "lr": 1e-3, **TEXT_SCHEDULE}}
    search_spaces = {"text": {"r": Choice((1, 2, 4, 8, 16, 32)), "lr": LogFloat(1e-4, 3e-2), "epochs": LogFloat(2.0, 128.0)}}

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        text = evidence.track == "text"
        work = copy.deepcopy(model)
        work.discriminator_path = getattr(model, "discriminator_path", None)
        objective = None if text else model.training_objective()
        work.requires_grad_(False)
        lora = LoraConfig(r=c.r, lora_alpha=c.alpha, target_modules=c.target_modules, lora_dropout=0.0,
                          fan_in_fan_out=text)
        with torch.random.fork_rng():  # adapter initialisation from the budget's seed: same seed, same edit
            torch.manual_seed(budget.seed)
            work = inject_adapter_in_model(lora, work)
        lora_params = [p for n, p in work.named_parameters() if "lora_" in n]
        if not lora_params:
            raise MethodError(f"finetune_lora: no module matches target_modules={c.target_modules!r}")
        for p in lora_params:
            p.requires_grad_(True)
        cost = Cost(params_changed=sum(p.numel() for p in lora_params), examples_used=evidence.n)
        if text:
            evidence.need("targets")
            log = finetune_lm(work, lora_params, evidence.captions, evidence.targets, c.epochs, c.lr, c.batch_size,
                              budget.seed, cost, c.min_steps, c.max_steps)
        else:
            objective.generator = work
            log = finetune_loop(work, lora_params, evidence, c, budget.seed, cost, objective=objective)
        tensors, deltas = {}, []
        for name, module in work.named_modules():
            if hasattr(module, "get_delta_weight") and hasattr(module, "lora_A") and "default" in module.lora_A:
                with torch.no_grad():
                    d = module.get_delta_weight("default").detach().contiguous()
                pname = f"{name}.weight"
                tensors[f"delta.{pname}"] = d
                deltas.append(pname)
        return Edit(self.name, c.as_dict(), tensors=tensors, deltas=deltas,
                    cost=cost, meta={"schedule": log, "adapted_modules": len(deltas)})


METHOD = FinetuneLora
