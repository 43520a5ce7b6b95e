"""LoRA adapters through peft, the one injection every LoRA finetuning in editbench uses (``finetune_lora`` on
either track, the activation study's reporter): adapters of rank ``r`` on the modules matching a regular
expression, GPT-2's transposed ``Conv1D`` weights recognised (peft's ``fan_in_fan_out``), no dropout, and only
the adapters left trainable."""

from __future__ import annotations

import re

import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from editbench.core import MethodError


def inject_lora(model: nn.Module, r: int, alpha: float, target_modules: str, seed: int | None = None
                ) -> tuple[nn.Module, list[Tensor]]:
    """``model`` with LoRA adapters on every module whose name matches ``target_modules`` (in place; peft returns
    the same module) and the adapters' parameters, the only ones requiring gradients. ``seed``: the adapters
    initialised from it without touching the global generator (None: from the global generator, as it stands)."""
    targeted = [m for n, m in model.named_modules() if re.fullmatch(target_modules, n)]
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=target_modules, lora_dropout=0.0,
                        fan_in_fan_out=any(isinstance(m, Conv1D) for m in targeted))
    model.requires_grad_(False)
    if seed is None:
        model = inject_adapter_in_model(config, model)
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = inject_adapter_in_model(config, model)
    params = [p for n, p in model.named_parameters() if "lora_" in n]
    if not params:
        raise MethodError(f"LoRA: no module matches target_modules={target_modules!r}")
    for p in params:
        p.requires_grad_(True)
    return model, params


def lora_deltas(model: nn.Module) -> dict[str, Tensor]:
    """Each adapted module's merged weight change (``get_delta_weight``), by the name of the weight it changes."""
    out = {}
    for name, module in model.named_modules():
        if hasattr(module, "get_delta_weight") and hasattr(module, "lora_A") and "default" in module.lora_A:
            with torch.no_grad():
                out[f"{name}.weight"] = module.get_delta_weight("default").detach().contiguous()
    return out
