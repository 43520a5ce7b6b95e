"""Labelled image grids (matplotlib), shared by every command that writes a picture."""

from __future__ import annotations

import textwrap
from pathlib import Path

import torch
from torch import Tensor

from editbench.core.errors import UserError


def save_grid(images: Tensor, labels: list[str] | None, out: str | Path, cols: int | None = None,
              title: str | None = None, wrap: int = 28) -> Path:
    """Save (B, 3, H, W) images in [0, 1] as a PNG grid with a wrapped label under each image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise UserError(f"output must be a .png file, got {str(out)!r}")
    n = images.shape[0]
    cols = cols or min(n, 8)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.9, rows * 2.6), squeeze=False)
    pics = images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(pics[i], interpolation="nearest")
        if labels:
            ax.set_title("\n".join(textwrap.wrap(labels[i], wrap)[:4]), fontsize=5.5, y=-0.02, va="top")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3, h_pad=1.6)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def to_uint8(images: Tensor) -> Tensor:
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)
