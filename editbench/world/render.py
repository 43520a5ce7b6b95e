"""Batched torch renderer of the lamp world, with exact per-lamp ground truth.

Image formation (all in linear light, before tone mapping)::

    linear = base + sum_i (light1_i + light2_i)
    image  = tonemap(linear) = 1 - exp(-EXPOSURE * linear)

* ``base = ambient * tint(ambient) * albedo + glass * sky(ambient)``: the room lit by daylight or
  night light only. It contains the lamps' shades, poles and bulbs as objects (their albedo), so a
  lamp that is switched off is still there.
* ``light1_i`` (first order): what lamp ``i`` emits towards the camera: its glowing shade, its bulb
  and the glare halo around them.
* ``light2_i`` (second order): the light lamp ``i`` throws on the room: the glow on the wall, the
  pool of light on floor, bed and nightstands (both scaled by the surface albedo), and its
  reflection in the window glass.

Both light maps are zero for an unlit lamp, and nothing else depends on whether a lamp is lit, so
rendering a scene with lamp ``i`` switched off gives exactly ``linear - light1_i - light2_i`` (up to
float rounding) and leaves every mask unchanged. The ambient level only scales ``base``: "the room
got dark" and "the lamp went off" are separate factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .scene import FLOOR_LAMP, SHADE_COLORS, Scene

EXPOSURE = 2.0
WARM = (1.00, 0.80, 0.52)  # colour of lamp light
BULB_RGB = (1.00, 0.95, 0.85)
FRAME_RGB = (0.88, 0.88, 0.86)
HEADBOARD_RGB = (0.32, 0.21, 0.13)
PILLOW_RGB = (0.93, 0.93, 0.91)
STAND_RGB = (0.42, 0.28, 0.16)
POLE_RGB = (0.20, 0.19, 0.18)
BULB_OFF_RGB = (0.80, 0.80, 0.76)

# Light strengths (per unit lamp intensity).
SHADE_GLOW = 1.5
BULB_GLOW = 3.0
HALO_GLOW = 0.30
WALL_GLOW = 0.65
POOL_GLOW = 0.70
WINDOW_REFLECTION = 0.9


def tonemap(linear: Tensor) -> Tensor:
    """Map linear light to display values in [0, 1)."""
    return 1.0 - torch.exp(-EXPOSURE * linear)


def inverse_tonemap(image: Tensor, eps: float = 1e-4) -> Tensor:
    """Inverse of :func:`tonemap` (display values are clamped just below 1 first)."""
    return -torch.log1p(-image.clamp(0.0, 1.0 - eps)) / EXPOSURE


@dataclass(frozen=True)
class GroundTruth:
    """Everything the renderer knows about a batch (B scenes, L = 3 lamp slots, H x W pixels).

    ``linear``: (B, 3, H, W) pre-tone-map image; ``base``: (B, 3, H, W) the room without lamp light;
    ``albedo``: (B, 3, H, W); ``shade_mask``, ``bulb_mask``: (B, L, H, W) visible coverage in [0, 1];
    ``light1``, ``light2``: (B, L, 3, H, W) first- and second-order light of each lamp (zero when the
    lamp is off or absent); ``ambient``: (B,).
    """

    linear: Tensor
    base: Tensor
    albedo: Tensor
    shade_mask: Tensor
    bulb_mask: Tensor
    light1: Tensor
    light2: Tensor
    ambient: Tensor

    def lamp_light(self) -> Tensor:
        """(B, L, H, W) luminance of each lamp's first- plus second-order light."""
        return luminance(self.light1 + self.light2, dim=2)

    def light_energy(self) -> tuple[Tensor, Tensor]:
        """Per-lamp total light energy, (B, L) first order and (B, L) second order."""
        return luminance(self.light1, 2).sum((-2, -1)), luminance(self.light2, 2).sum((-2, -1))


def luminance(rgb: Tensor, dim: int = 1) -> Tensor:
    """Rec. 709 luminance along the colour dimension ``dim``."""
    w = torch.tensor([0.2126, 0.7152, 0.0722], dtype=rgb.dtype, device=rgb.device)
    shape = [1] * rgb.dim()
    shape[dim] = 3
    return (rgb * w.view(shape)).sum(dim)


def _box(coord: Tensor, lo: Tensor, hi: Tensor, px: float) -> Tensor:
    """1-D soft (anti-aliased, one pixel wide ramps) indicator of lo <= coord <= hi."""
    return ((coord - lo) / px + 0.5).clamp(0, 1) * ((hi - coord) / px + 0.5).clamp(0, 1)


def _gauss(coord: Tensor, centre: Tensor, sigma: float | Tensor) -> Tensor:
    return torch.exp(-0.5 * ((coord - centre) / sigma) ** 2)


def _rect(
    u: Tensor, v: Tensor, x0: Tensor, x1: Tensor, y0: Tensor, y1: Tensor, px: float, scale: Tensor | None = None
) -> Tensor:
    """Soft rectangle times ``scale``; the bounds have shape (...,) and the result (..., H, W)."""
    bx = _box(u, x0[..., None], x1[..., None], px)
    by = _box(v, y0[..., None], y1[..., None], px)
    if scale is not None:
        by = by * scale[..., None]
    return by[..., :, None] * bx[..., None, :]


def render(scene: Scene, size: int = 64) -> tuple[Tensor, GroundTruth]:
    """Render a batch of scenes to (B, 3, size, size) images in [0, 1] and their ground truth.

    Runs on the device of the scene's tensors (``scene.to("cuda")`` renders on a GPU)."""
    B = len(scene)
    L = scene.lamp_present.shape[1]
    px = 1.0 / size
    dev = scene.ambient.device
    T = lambda x: torch.tensor(x, device=dev)  # noqa: E731
    coords = (torch.arange(size, dtype=torch.float32, device=dev) + 0.5) / size
    u, v = coords, coords  # u: x (columns), v: y (rows)
    hz = scene.horizon
    floor_line = hz + 0.06
    present = scene.lamp_present.float()

    # ---- geometry, front to back: each layer's coverage (B, H, W), albedo (B, 3), surface ----
    # Lamps (per slot) are in front of everything else; later slots are drawn above earlier ones.
    cx, yb, w = scene.lamp_x, scene.lamp_y, scene.lamp_size
    h = 0.75 * w
    yt = yb - h
    top_hw, bot_hw = 0.30 * w, 0.50 * w
    t = ((v[None, None, :] - yt[..., None]) / h[..., None]).clamp(0, 1)  # (B, L, H)
    half = top_hw[..., None] + t * (bot_hw - top_hw)[..., None]  # (B, L, H)
    rows = _box(v, yt[..., None], yb[..., None], px) * present[..., None]  # (B, L, H)
    half_px = half * size + 0.5  # (B, L, H)
    dist_px = (u[None, None, :] - cx[..., None]).abs() * size  # (B, L, W)
    shade = (half_px[..., :, None] - dist_px[..., None, :]).clamp_(0, 1).mul_(rows[..., :, None])
    bulb = _rect(u, v, cx - 0.018, cx + 0.018, yb - 0.01, yb + 0.022, px, present)
    is_floor = scene.lamp_kind == FLOOR_LAMP
    stand_top = floor_line[:, None] - 0.13
    pole_bottom = torch.where(is_floor, floor_line[:, None], stand_top)
    pole = _rect(u, v, cx - 0.012, cx + 0.012, yb, pole_bottom, px, present)
    foot = _rect(u, v, cx - 0.045, cx + 0.045, floor_line[:, None] - 0.025, floor_line[:, None], px,
                 present * is_floor.float())
    stand = _rect(u, v, cx - 0.065, cx + 0.065, stand_top, floor_line[:, None], px, present * (~is_floor).float())

    wb = scene.window_box
    has_window = scene.window.float()[:, None, None]
    glass = _rect(u, v, wb[:, 0], wb[:, 2], wb[:, 1], wb[:, 3], px) * has_window
    frame = _rect(u, v, wb[:, 0] - 0.02, wb[:, 2] + 0.02, wb[:, 1] - 0.02, wb[:, 3] + 0.02, px) * has_window
    bx0, bx1 = scene.bed_x - scene.bed_w / 2, scene.bed_x + scene.bed_w / 2
    pillow = _rect(u, v, scene.bed_x - 0.36 * scene.bed_w, scene.bed_x + 0.36 * scene.bed_w, hz + 0.01, hz + 0.06, px)
    blanket = _rect(u, v, bx0 - 0.01, bx1 + 0.01, hz + 0.03, hz + 0.24, px)
    headboard = _rect(u, v, bx0, bx1, hz - 0.11, hz + 0.06, px)
    floor = _box(v, hz[:, None], torch.full_like(hz, 2.0)[:, None], px)[:, :, None].expand(B, size, size)

    def const(rgb: tuple[float, float, float]) -> Tensor:
        return T(rgb).expand(B, 3)

    shade_rgb = T(list(SHADE_COLORS.values()))[scene.lamp_shade]  # (B, L, 3)
    # (coverage, albedo, surface) front to back. Surfaces: 0 lamp, 1 wall, 2 glass, 3 floor/bed.
    layers: list[tuple[Tensor, Tensor, int, tuple[str, int] | None]] = []
    for j in reversed(range(L)):
        layers += [
            (shade[:, j], shade_rgb[:, j], 0, ("shade", j)),
            (bulb[:, j], const(BULB_OFF_RGB), 0, ("bulb", j)),
            (pole[:, j], const(POLE_RGB), 0, None),
            (foot[:, j], const(POLE_RGB), 0, None),
            (stand[:, j], const(STAND_RGB), 3, None),
        ]
    layers += [
        (pillow, const(PILLOW_RGB), 3, None),
        (blanket, scene.bed_rgb, 3, None),
        (headboard, const(HEADBOARD_RGB), 3, None),
        (floor, scene.floor_rgb, 3, None),
        (glass, torch.zeros(B, 3, device=dev), 2, None),
        (frame, const(FRAME_RGB), 1, None),
        (torch.ones(B, size, size, device=dev), scene.wall_rgb, 1, None),
    ]
    remaining = torch.ones(B, size, size, device=dev)
    weights = torch.empty(B, len(layers), size, size, device=dev)  # visible weight of each layer
    surface = torch.zeros(4, B, size, size, device=dev)
    for k, (cov, _, surf, _) in enumerate(layers):
        wgt = torch.mul(cov, remaining, out=weights[:, k])
        remaining.sub_(wgt)
        surface[surf] += wgt
    tags = [(k, tag) for k, (_, _, _, tag) in enumerate(layers) if tag is not None]
    shade_mask = weights[:, [k for k, t in tags if t[0] == "shade"][::-1]]  # lamps were added last-first
    bulb_mask = weights[:, [k for k, t in tags if t[0] == "bulb"][::-1]]
    albedos = torch.stack([a for _, a, _, _ in layers], 1)  # (B, K, 3)
    albedo = torch.einsum("bkhw,bkc->bchw", weights, albedos)

    # ---- ambient (daylight / night light) ----
    amb = scene.ambient
    day = ((amb - 0.2) / 0.8).clamp(0, 1)[:, None]
    tint = T([0.70, 0.76, 1.00]) * (1 - day) + day  # bluish at night
    sky = T([0.05, 0.07, 0.16]) * (1 - day) + T([0.60, 0.78, 1.00]) * day
    base = albedo * (amb[:, None] * tint)[..., None, None] + surface[2][:, None] * sky[..., None, None]

    # ---- lamp light ----
    power = scene.lamp_lit.float() * scene.lamp_intensity  # (B, L)
    warm = T(WARM)
    shade_c = (yt + yb) / 2

    def blob(cy: Tensor, sy: float, cx_: Tensor, sx: float) -> Tensor:
        """Separable Gaussian (B, L, H, W) centred at (cx_, cy)."""
        return _gauss(v, cy[..., None], sy)[..., :, None] * _gauss(u, cx_[..., None], sx)[..., None, :]

    # First order: three terms (shade glow, bulb, halo), each a (B, L, H, W) shape times a colour.
    terms1 = torch.stack([shade_mask, blob(yb + 0.006, 0.016, cx, 0.016), blob(shade_c, 0.07, cx, 0.075)], 2)
    colours1 = torch.stack([
        (0.45 + 0.55 * shade_rgb) * warm * SHADE_GLOW,
        (T(BULB_RGB) * BULB_GLOW).expand(B, L, 3),
        (warm * HALO_GLOW).expand(B, L, 3),
    ], 2) * power[..., None, None]  # (B, L, T, 3)
    light1 = torch.einsum("blthw,bltc->blchw", terms1, colours1)

    # Second order: a scalar irradiance per lamp times the receiving colour of each pixel. Wall and
    # floor/bed surfaces reflect with their albedo; the window glass (albedo 0) mirrors the lamp.
    rx = cx.clamp(wb[:, 0:1] + 0.02, wb[:, 2:3] - 0.02)
    ry = shade_c.clamp(wb[:, 1:2] + 0.02, wb[:, 3:4] - 0.02)
    near = _gauss(cx, rx, 0.25)
    irradiance = (
        blob(shade_c, 0.17, cx, 0.12) * surface[1][:, None] * WALL_GLOW
        + blob(floor_line[:, None] + 0.05, 0.08, cx, 0.17) * surface[3][:, None] * POOL_GLOW
        + blob(ry, 0.035, rx, 0.03) * (near * WINDOW_REFLECTION)[..., None, None] * surface[2][:, None]
    ) * power[..., None, None]  # (B, L, H, W)
    receive = (albedo + surface[2][:, None]) * warm[:, None, None]  # (B, 3, H, W)
    light2 = irradiance[:, :, None] * receive[:, None]

    # Sum over lamps without reading the per-lamp maps back.
    linear = base + torch.einsum("blthw,bltc->bchw", terms1, colours1) + irradiance.sum(1)[:, None] * receive
    truth = GroundTruth(
        linear=linear, base=base, albedo=albedo, shade_mask=shade_mask, bulb_mask=bulb_mask,
        light1=light1, light2=light2, ambient=amb.clone(),
    )
    return tonemap(linear), truth
