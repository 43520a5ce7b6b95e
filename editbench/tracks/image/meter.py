"""The lamp meter: a small network that reads any 64x64 image of the lamp world.

It plays the part of the segmentation network of GAN Dissection: every metric reads edited images
through it. From an image it predicts

* dense maps (B, H, W): ``shade`` (probability a pixel is a lamp shade), ``light1`` and ``light2``
  (luminance of all lamps' first- and second-order light, as in :class:`~editbench.world.GroundTruth`);
* the ``ambient`` level (B,);
* lamp instances in left-to-right slots (B, S), three for the shipped meter (the most the world
  places) and five for the judge (which must count what the world never draws): ``present`` and ``on``
  probabilities, ``intensity`` and horizontal position ``x``;
* ``features`` (B, F): a pooled feature vector for Frechet distances.

Architecture: a U-Net (GroupNorm, SiLU, coordinate channels at the input) whose 4x4 bottleneck also
feeds an MLP for the global and per-slot outputs. It is trained on renders with degradations like a
generator's (blur, noise, colour jitter), see :func:`degrade`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor, nn

from editbench.world.render import GroundTruth, luminance
from editbench.world.scene import Scene

N_SLOTS = 3
# The judge (``editbench train judge``): half the meter's capacity, five slots, its own degradations and seed.
JUDGE_CONFIG = {"channels": (24, 48, 64, 96, 128), "hidden": 192, "slots": 5}
JUDGE_TRAINING = {"extra_lamps": 0.3, "degrade_strength": 1.5, "p_soften": 0.3, "p_degrade": 0.8}
LIGHT_PIXEL = 0.1  # luminance above which a pixel is lamp light (the metrics' masks; reward finetuning's penalty region)


@dataclass(frozen=True)
class MeterReading:
    """What the meter reads from a batch of images (see the module docstring for shapes)."""

    shade: Tensor
    light1: Tensor
    light2: Tensor
    ambient: Tensor
    present: Tensor
    on: Tensor
    intensity: Tensor
    x: Tensor
    features: Tensor

    @property
    def lamps(self) -> Tensor:
        """(B, 3) bool: slots holding a lamp."""
        return self.present > 0.5

    @property
    def lit(self) -> Tensor:
        """(B, 3) bool: slots holding a lit lamp."""
        return self.lamps & (self.on > 0.5)

    @property
    def count(self) -> Tensor:
        return self.lamps.sum(1)

    def lamp_light(self) -> Tensor:
        """(B, H, W) luminance of all lamp light, first plus second order."""
        return self.light1 + self.light2

    def columns(self) -> Tensor:
        """(B, 3, W) float: the image columns each found lamp owns, every column belonging to the nearest lamp (by
        ``x``); slots without a lamp own none (and an image without a found lamp has no owned column)."""
        W = self.light1.shape[-1]
        cols = (torch.arange(W, device=self.x.device, dtype=self.light1.dtype) + 0.5) / W
        dist = (cols[None, None, :] - self.x[..., None]).abs()  # (B, 3, W)
        dist = dist.masked_fill(~self.lamps[..., None], float("inf"))
        owner = F.one_hot(dist.argmin(1), self.x.shape[1]).permute(0, 2, 1).to(self.light1.dtype)  # (B, S, W)
        return owner * self.lamps[..., None].to(self.light1.dtype)

    def per_lamp_light(self, order: int | None = None) -> Tensor:
        """(B, 3, H, W) lamp light split among the found lamps by the columns they own (:meth:`columns`). ``order``
        1 or 2 selects one order of light."""
        light = {None: self.lamp_light(), 1: self.light1, 2: self.light2}[order]
        return light[:, None] * self.columns()[:, :, None, :]

    def light_of(self, slots: Tensor, order: int | None = None) -> Tensor:
        """(B, H, W) the light of the lamps in ``slots`` ((B, S) bool or 0/1), in the columns each owns
        (:meth:`per_lamp_light`): what a request for those lamps asks to take out."""
        return (self.per_lamp_light(order) * slots[..., None, None]).sum(1)

    def index(self, idx: Tensor | slice) -> MeterReading:
        return MeterReading(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @classmethod
    def cat(cls, readings: list[MeterReading]) -> MeterReading:
        return cls(**{f.name: torch.cat([getattr(r, f.name) for r in readings]) for f in fields(cls)})


def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1), _gn(cout), nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1), _gn(cout), nn.SiLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class LampMeter(ModelMixin, ConfigMixin):
    """U-Net lamp meter; ``read(images)`` returns a :class:`MeterReading`."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, channels: tuple[int, ...] = (32, 64, 96, 128, 192), hidden: int = 256, resolution: int = 64,
                 slots: int = N_SLOTS):
        super().__init__()
        ch = tuple(channels)
        self.enc = nn.ModuleList([ConvBlock(5, ch[0])] + [ConvBlock(ch[i], ch[i + 1], stride=2) for i in range(len(ch) - 1)])
        self.dec = nn.ModuleList([ConvBlock(ch[i + 1] + ch[i], ch[i]) for i in reversed(range(len(ch) - 1))])
        self.dense = nn.Conv2d(ch[0], 3, 1)
        bottleneck = resolution // 2 ** (len(ch) - 1)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(ch[-1] * bottleneck**2, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 1 + 4 * slots),
        )

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        B, _, H, W = images.shape
        ys = torch.linspace(-1, 1, H, device=images.device, dtype=images.dtype)
        xs = torch.linspace(-1, 1, W, device=images.device, dtype=images.dtype)
        coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))[None].expand(B, 2, H, W)
        h = torch.cat([images * 2 - 1, coords], 1)
        skips = []
        for block in self.enc:
            h = block(h)
            skips.append(h)
        bottom = h
        for block, skip in zip(self.dec, reversed(skips[:-1]), strict=True):
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], 1))
        dense = self.dense(h)
        g = self.head(bottom)
        S = self.config.slots
        return {
            "shade_logit": dense[:, 0], "light1": dense[:, 1], "light2": dense[:, 2],
            "ambient": g[:, 0], "present_logit": g[:, 1 : 1 + S], "on_logit": g[:, 1 + S : 1 + 2 * S],
            "intensity": g[:, 1 + 2 * S : 1 + 3 * S], "x": g[:, 1 + 3 * S : 1 + 4 * S],
            "features": bottom.mean((2, 3)),
        }

    @torch.no_grad()
    def read(self, images: Tensor, batch_size: int = 256) -> MeterReading:
        """Read (B, 3, H, W) images in [0, 1] (any device; results come back on the model's device)."""
        return read_batches(self, images, self.device, self.dtype, batch_size)


def read_batches(forward: Callable[[Tensor], dict[str, Tensor]], images: Tensor, device: torch.device,
                 dtype: torch.dtype, batch_size: int = 256) -> MeterReading:
    """The :class:`MeterReading` of ``forward`` (a meter, or a reader wrapping one) over ``images`` in batches."""
    return MeterReading.cat([reading(forward(images[i : i + batch_size].to(device, dtype)))
                             for i in range(0, images.shape[0], batch_size)])


def reading(o: dict[str, Tensor]) -> MeterReading:
    """A :class:`MeterReading` from the meter's raw (differentiable) outputs."""
    return MeterReading(
        shade=torch.sigmoid(o["shade_logit"]).float(), light1=o["light1"].float().clamp_min(0),
        light2=o["light2"].float().clamp_min(0), ambient=o["ambient"].float(),
        present=torch.sigmoid(o["present_logit"]).float(), on=torch.sigmoid(o["on_logit"]).float(),
        intensity=o["intensity"].float(), x=o["x"].float(), features=o["features"].float(),
    )


def meter_targets(scene: Scene, truth: GroundTruth) -> dict[str, Tensor]:
    """Training targets of the meter from the renderer's ground truth."""
    return {
        "shade": truth.shade_mask.sum(1).clamp(0, 1),
        "light1": luminance(truth.light1.sum(1), 1),
        "light2": luminance(truth.light2.sum(1), 1),
        "ambient": truth.ambient,
        "present": scene.lamp_present.float(),
        "on": scene.lamp_on.float(),
        "intensity": scene.lamp_intensity,
        "x": scene.lamp_x,
    }


def meter_loss(out: dict[str, Tensor], t: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
    """Sum of the meter's losses; light maps are weighted up where light is (the maps are sparse)."""
    pres = t["present"]
    lit = pres * t["on"]
    parts = {
        "shade": F.binary_cross_entropy_with_logits(out["shade_logit"].float(), t["shade"]) * 4,
        "light1": F.mse_loss(out["light1"].float(), t["light1"]) * 20,
        "light2": F.mse_loss(out["light2"].float(), t["light2"]) * 40,
        "ambient": F.mse_loss(out["ambient"].float(), t["ambient"]) * 20,
        "present": F.binary_cross_entropy_with_logits(out["present_logit"].float(), pres),
        "on": (F.binary_cross_entropy_with_logits(out["on_logit"].float(), t["on"], reduction="none") * pres).sum()
        / pres.sum().clamp_min(1),
        "intensity": ((out["intensity"].float() - t["intensity"]) ** 2 * lit).sum() / lit.sum().clamp_min(1) * 10,
        "x": ((out["x"].float() - t["x"]) ** 2 * pres).sum() / pres.sum().clamp_min(1) * 50,
    }
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}


def degrade(images: Tensor, g: torch.Generator, strength: float = 1.0) -> Tensor:
    """Random blur, noise and colour jitter like a generator's artefacts (per sample, seeded by ``g``).

    ``g`` is a CPU generator; draws happen on the CPU and are moved to the images' device.
    """
    B, C, H, W = images.shape
    dev = images.device

    def u(lo: float, hi: float, *shape: int) -> Tensor:
        return (lo + (hi - lo) * torch.rand(*shape, generator=g)).to(dev)

    # Gaussian blur with per-sample sigma in [0, 1.2] px (half the samples unblurred).
    sigma = u(0.0, 1.2 * strength, B) * (torch.rand(B, generator=g) < 0.5).to(dev)
    k = torch.arange(-2, 3, device=dev, dtype=images.dtype)
    ker = torch.exp(-0.5 * (k[None] / sigma.clamp_min(1e-3)[:, None]) ** 2)
    ker = ker / ker.sum(1, keepdim=True)  # (B, 5)
    x = images.reshape(1, B * C, H, W)
    kx = ker.repeat_interleave(C, 0)[:, None, None, :]
    ky = ker.repeat_interleave(C, 0)[:, None, :, None]
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), kx, groups=B * C)
    x = F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), ky, groups=B * C)
    x = x.reshape(B, C, H, W)
    gain = 1 + u(-0.06, 0.06, B, C) * strength
    offset = u(-0.03, 0.03, B, 1) * strength
    x = x * gain[..., None, None] + offset[..., None, None]
    noise_std = u(0.0, 0.04 * strength, B) * (torch.rand(B, generator=g) < 0.6).to(dev)
    x = x + torch.randn(B, C, H, W, generator=g).to(dev) * noise_std[:, None, None, None]
    return x.clamp(0, 1)


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Frechet distance between Gaussians fitted to feature sets a (N, F) and b (M, F):

    ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``, in float64 with symmetric
    eigendecompositions (so the matrix square roots are real).
    """
    a, b = a.double().cpu(), b.double().cpu()
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = torch.cov(a.T), torch.cov(b.T)

    def sqrtm(m: Tensor) -> Tensor:
        vals, vecs = torch.linalg.eigh((m + m.T) / 2)
        return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T

    ra = sqrtm(sa)
    cross = sqrtm(ra @ sb @ ra)
    return float(((mu_a - mu_b) ** 2).sum() + torch.trace(sa) + torch.trace(sb) - 2 * torch.trace(cross))
