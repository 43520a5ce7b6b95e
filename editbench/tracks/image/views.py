"""What a reader sees, as a grid to look at: images with the shade and light maps a meter reads from them, one
reader alone or the proxy beside the judge (``editbench models show-meter`` saves them)."""

from __future__ import annotations

import torch
from torch import Tensor

from .meter import MeterReading


def gray(m: Tensor) -> Tensor:
    """(B, H, W) maps as (B, 3, H, W) gray images, each scaled to its own maximum."""
    return (m / m.amax((1, 2), keepdim=True).clamp_min(1e-6))[:, None].expand(-1, 3, -1, -1)


def said(r: MeterReading, i: int) -> str:
    return f"{int(r.count[i])} lamps, {int(r.lit[i].sum())} lit"


def reading_grid(images: Tensor, r: MeterReading) -> tuple[Tensor, list[str]]:
    """Rows: the images (labelled with what the reader counts), its shade, first- and second-order light maps."""
    n = len(images)
    labels = [f"{said(r, i)}, ambient {float(r.ambient[i]):.2f}" for i in range(n)]
    labels += ["shade"] * n + ["first-order light"] * n + ["second-order light"] * n
    return torch.cat([images, gray(r.shade), gray(r.light1), gray(r.light2)]), labels


def disagreements(proxy: MeterReading, judge: MeterReading) -> Tensor:
    """Indices of the images on which the readers count different lamps or different lit lamps."""
    differ = (proxy.count != judge.count) | (proxy.lit.sum(1) != judge.lit.sum(1))
    return torch.arange(len(differ))[differ]


def readers_grid(images: Tensor, proxy: MeterReading, judge: MeterReading, keep: Tensor) -> tuple[Tensor, list[str]]:
    """The images ``keep`` with both readings side by side: the images, each reader's shade, each one's light."""
    k = len(keep)
    labels = [f"proxy {said(proxy, i)} | judge {said(judge, i)}" for i in keep.tolist()]
    labels += ["proxy: shade"] * k + ["judge: shade"] * k + ["proxy: light"] * k + ["judge: light"] * k
    grid = torch.cat([images[keep], gray(proxy.shade[keep]), gray(judge.shade[keep]), gray(proxy.light1[keep]),
                      gray(judge.light1[keep])])
    return grid, labels
