"""The few helpers editors share across tracks: the clamp edit (image units and text neurons alike), the
closed-form rank-one update (``rank_one`` on a convolution, ``rome`` on an MLP projection), and for the
image track activations on evidence, lamp masks from meter readings and unit ranking."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from editbench.core import Cost, Edit, Evidence, MethodConfig, MethodError, capture, hook_points
from editbench.world.requests import EditRequest

# First-order light luminance above which an editor counts an evidence pixel as lamp light when it looks for
# lamp units: a method setting, stricter than the scorers' LIGHT_PIXEL (0.1); changing it changes scores.
LIGHT_THRESHOLD = 0.15


@torch.no_grad()
def activations(model: nn.Module, layer: str, evidence: Evidence, batch_size: int = 64) -> Tensor:
    """(n, C, h, w) outputs of ``layer`` for the evidence samples (same z and captions)."""
    if evidence.noise is None:
        raise MethodError("this editor needs evidence of kind 'samples'")
    points = hook_points(model)
    if layer not in points:
        raise MethodError(f"layer {layer!r} is not a hook point; choose from {list(points)}")
    outs = []
    for i in range(0, evidence.n, batch_size):
        with capture(model, [layer]) as acts:
            model.generate(evidence.captions[i : i + batch_size], z=evidence.noise[i : i + batch_size])
        outs.append(acts[layer].float())
    return torch.cat(outs)


def lamp_light_mask(evidence: Evidence, request: EditRequest) -> Tensor:
    """(n, H, W) bool: pixels lit by the lamps the request switches off, as the meter reads them."""
    r = evidence.readings
    if r is None:
        raise MethodError("this editor needs meter readings of its evidence samples")
    if request.target == "all":
        light = r.light1 if not request.second_order else r.light1 + r.light2
    else:
        target = request.slots(r.lamps, r.x)  # (n, 3)
        light = r.light_of(target, 1)
    return light > LIGHT_THRESHOLD


def rank_units(acts: Tensor, mask: Tensor, quantile: float = 0.99, max_values: int = 2_000_000) -> Tensor:
    """IoU of each unit's thresholded, upsampled activation with ``mask`` (GAN Dissection): (C,).

    Each unit is thresholded at its own ``quantile`` over all evidence pixels."""
    n, C, h, w = acts.shape
    H, W = mask.shape[-2:]
    up = F.interpolate(acts, size=(H, W), mode="bilinear", align_corners=False)  # (n, C, H, W)
    flat = up.transpose(0, 1).reshape(C, -1)
    if flat.shape[1] > max_values:
        g = torch.Generator().manual_seed(0)
        flat_s = flat[:, torch.randperm(flat.shape[1], generator=g)[:max_values]]
    else:
        flat_s = flat
    thr = torch.quantile(flat_s, quantile, dim=1)  # (C,)
    fire = up > thr[None, :, None, None]
    m = mask[:, None]
    inter = (fire & m).sum((0, 2, 3)).float()
    union = (fire | m).sum((0, 2, 3)).float().clamp_min(1)
    return inter / union


def layer_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """(n, H, W) bool image mask -> (n, h, w) float share of each layer cell inside the mask."""
    return F.adaptive_avg_pool2d(mask.float()[:, None], size)[:, 0]


def clamp_edit(name: str, config: MethodConfig, layer: str, units: Tensor, n_units: int, value: Tensor, n: int,
               tensors: dict[str, Tensor], meta: dict, forward: int | None = None) -> Edit:
    """The edit that sets ``units`` of ``layer`` to ``value`` (per unit, (n_units,)) at every position (fitted
    on ``n`` examples read in ``forward`` passes, by default one each)."""
    sel = torch.zeros(n_units)
    sel[units] = 1.0
    return Edit(name, config.as_dict(),
                tensors={f"mask.{layer}": sel, f"value.{layer}": value * sel, **tensors},
                hooks={layer: {"op": "clamp", "mask": f"mask.{layer}", "value": f"value.{layer}"}},
                cost=Cost(params_changed=0, examples_used=n, forward=n if forward is None else forward), meta=meta)


def rank_one_delta(cov: Tensor, k_star: Tensor, residual: Tensor, scale: float = 1.0, keys_first: bool = False
                   ) -> Tensor:
    """The rank-one update that adds ``scale * residual`` to the output for the key ``k_star`` while
    changing outputs for other keys as little as possible under their second moment ``cov``::

        scale * residual (C^-1 k*)^T / (k*^T C^-1 k*)

    as (outputs, keys), or (keys, outputs) with ``keys_first`` (GPT-2's ``Conv1D`` stores ``y = k W``)."""
    cinv_k = torch.linalg.solve(cov, k_star)
    outer = torch.outer(cinv_k, residual) if keys_first else torch.outer(residual, cinv_k)
    return scale * outer / (k_star @ cinv_k)
