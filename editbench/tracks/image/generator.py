"""The generator every method edits: G(z, caption) -> 64x64 bedroom, a conditional GAN.

Architecture (``LampGenerator``): the caption goes through a small transformer
(:class:`~editbench.tracks.image.caption_encoder.CaptionEncoder`); ``w = MLP([z, c])`` modulates every block through
FiLM after GroupNorm (per sample, so an image never depends on the rest of its batch). A 4x4 stem is
followed by four upsample+conv blocks (8, 16, 32, 64 px); each block's output, post-ReLU, is a hook
point whose channels are the model's *units* (``hook_points()``). ``to_rgb`` maps to the image.

The discriminator (``LampDiscriminator``) is residual with spectral norm, conditioned on the caption
by projection, with auxiliary heads (lamp count, lit-lamp count, time of day) trained on renders.
``GANObjective`` is the model's own training objective: hinge loss, plus an auxiliary loss that
makes samples agree with what their caption states. Finetuning methods reach it through
``generator.training_objective(discriminator)`` and never assume a GAN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from editbench.core.hooks import HookPoint
from editbench.world.captions import MAX_TOKENS, VOCAB, CaptionTokenizer, parse_caption
from editbench.world.config import TIMES_OF_DAY
from editbench.world.scene import Scene, time_of_day

from .caption_encoder import CaptionEncoder


class FiLMNorm(nn.Module):
    """GroupNorm without affine, then a per-sample scale and shift predicted from ``w``."""

    def __init__(self, channels: int, w_dim: int, groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(min(groups, channels), channels, affine=False)
        self.film = nn.Linear(w_dim, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        gamma, beta = self.film(w).chunk(2, dim=1)
        return self.norm(x) * (1 + gamma[..., None, None]) + beta[..., None, None]


def upsample2(x: Tensor) -> Tensor:
    """x2 nearest-neighbour upsampling; equal bit for bit to ``F.interpolate(x, scale_factor=2)``
    and about three times faster on one CPU thread."""
    b, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(b, c, h, 2, w, 2).reshape(b, c, 2 * h, 2 * w)


class UpBlock(nn.Module):
    """x2 nearest upsample, two 3x3 convs with FiLM-GroupNorm and ReLU. Output: the block's units."""

    def __init__(self, cin: int, cout: int, w_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm1 = FiLMNorm(cout, w_dim)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm2 = FiLMNorm(cout, w_dim)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = upsample2(x)
        h = F.relu(self.norm1(self.conv1(x), w))
        h = self.norm2(self.conv2(h), w) + self.skip(x)
        return F.relu(h)


class LampGenerator(ModelMixin, ConfigMixin):
    """Conditional generator G(z, caption) -> (B, 3, 64, 64) images in [0, 1]."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        z_dim: int = 128,
        w_dim: int = 256,
        text_dim: int = 128,
        text_layers: int = 2,
        channels: tuple[int, ...] = (256, 256, 128, 64, 32),
        vocab_size: int = len(VOCAB),
        max_tokens: int = MAX_TOKENS,
        resolution: int = 64,
    ):
        super().__init__()
        channels = tuple(channels)
        n_blocks = len(channels) - 1
        if 4 * 2**n_blocks != resolution:
            raise ValueError(f"{len(channels)} channel entries give {4 * 2**n_blocks} px, not {resolution}")
        self.text = CaptionEncoder(vocab_size, max_tokens, text_dim, text_layers, text_dim)
        self.mapping = nn.Sequential(
            nn.Linear(z_dim + text_dim, w_dim), nn.LeakyReLU(0.2), nn.Linear(w_dim, w_dim), nn.LeakyReLU(0.2),
        )
        self.stem_fc = nn.Linear(w_dim, channels[0] * 16)
        self.stem = nn.Identity()  # hook point: the 4x4 map
        self.blocks = nn.ModuleList([UpBlock(channels[i], channels[i + 1], w_dim) for i in range(n_blocks)])
        self.to_rgb = nn.Conv2d(channels[-1], 3, 3, padding=1)
        self._tokenizer: CaptionTokenizer | None = None

    # -- the model's interface -------------------------------------------------------------------
    @property
    def tokenizer(self) -> CaptionTokenizer:
        if self._tokenizer is None:
            self._tokenizer = CaptionTokenizer(self.config.max_tokens)
        return self._tokenizer

    def encode_captions(self, captions: list[str]) -> tuple[Tensor, Tensor]:
        ids, mask = self.tokenizer.encode(captions)
        return ids.to(self.device), mask.to(self.device)

    def make_latents(self, n: int, seed: int, scale: float = 1.0) -> Tensor:
        """(n, z_dim) standard normal latents from ``seed`` (times ``scale`` for far-out latents)."""
        g = torch.Generator().manual_seed(int(seed))
        return (torch.randn(n, self.config.z_dim, generator=g) * scale).to(self.device)

    def hook_points(self) -> dict[str, HookPoint]:
        """The layers editors read and set: feature maps (B, C, r, r) whose channels are the units."""
        ch = self.config.channels
        out = {"stem": HookPoint("stem", ch[0], 1, (4, 4), "the 4x4 map from the mapping network")}
        for i in range(len(self.blocks)):
            r = 4 * 2 ** (i + 1)
            out[f"blocks.{i}"] = HookPoint(f"blocks.{i}", ch[i + 1], 1, (r, r), f"output of upsampling block {i}")
        return out

    def training_objective(self, discriminator: LampDiscriminator | None = None, aux_weight: float = 0.5,
                           marginal_weight: float = 0.0) -> GANObjective:
        """The model's own training objective. Without an explicit discriminator, the one saved next to
        this generator (``load_generator`` remembers it) is loaded, on the generator's device."""
        if discriminator is None:
            path = getattr(self, "discriminator_path", None)
            if path is None:
                raise ValueError("this generator has no known discriminator; pass one or load it with load_generator()")
            from .checkpoints import load_discriminator

            discriminator = load_discriminator(path, device=self.device)
        return GANObjective(self, discriminator, aux_weight=aux_weight, marginal_weight=marginal_weight)

    def objective_step(self, objective: GANObjective, real: Tensor, captions: list[str], z_d: Tensor, z_g: Tensor,
                       opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer | None) -> dict[str, float]:
        """One step of the generator's own objective with ``real`` images as data (used by finetuning):
        a discriminator step (skipped when ``opt_d`` is None), then a generator step."""
        ids, mask = self.encode_captions(captions)
        parts: dict[str, float] = {}
        if opt_d is not None:
            with torch.no_grad():
                fake = self(z_d, ids, mask)
            d_loss, parts = objective.d_loss(real, fake, ids, mask)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        d_trainable = [p for p in objective.discriminator.parameters() if p.requires_grad]
        for p in d_trainable:  # the generator step needs no discriminator weight gradients
            p.requires_grad_(False)
        try:
            g_loss, g_parts = objective.g_loss(self(z_g, ids, mask), ids, mask, caption_targets(captions))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
        finally:
            for p in d_trainable:
                p.requires_grad_(True)
        opt_g.step()
        return {**parts, **g_parts}

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, z: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        c = self.text(tokens, mask)
        w = self.mapping(torch.cat([z, c.to(z.dtype)], 1))
        h = self.stem(self.stem_fc(w).view(z.shape[0], self.config.channels[0], 4, 4))
        for block in self.blocks:
            h = block(h, w)
        return (torch.tanh(self.to_rgb(h)) + 1) / 2

    @torch.no_grad()
    def generate(self, captions: list[str], z: Tensor | None = None, seed: int = 0, batch_size: int = 256) -> Tensor:
        """Images for ``captions`` (one each) from latents ``z`` (or ``make_latents(len, seed)``)."""
        z = self.make_latents(len(captions), seed) if z is None else z.to(self.device)
        outs = []
        for i in range(0, len(captions), batch_size):
            ids, mask = self.encode_captions(captions[i : i + batch_size])
            outs.append(self(z[i : i + batch_size], ids, mask).float())
        return torch.cat(outs) if outs else torch.zeros(0, 3, self.config.resolution, self.config.resolution)


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool = True, first: bool = False):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(cin, cout, 1))
        self.down, self.first = down, first

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        s = self.skip(x)
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


AUX_HEADS = {"n_lamps": 4, "n_lit": 4, "time": len(TIMES_OF_DAY)}


class LampDiscriminator(ModelMixin, ConfigMixin):
    """D(image, caption) -> (logit (B,), aux logits {head: (B, classes)}); images in [0, 1]."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        channels: tuple[int, ...] = (64, 128, 256, 256),
        text_dim: int = 128,
        text_layers: int = 1,
        vocab_size: int = len(VOCAB),
        max_tokens: int = MAX_TOKENS,
    ):
        super().__init__()
        channels = tuple(channels)
        blocks = [DBlock(3, channels[0], first=True)]
        blocks += [DBlock(channels[i], channels[i + 1]) for i in range(len(channels) - 1)]
        blocks += [DBlock(channels[-1], channels[-1], down=False)]
        self.blocks = nn.Sequential(*blocks)
        self.text = CaptionEncoder(vocab_size, max_tokens, text_dim, text_layers, channels[-1])
        self.out = spectral_norm(nn.Linear(channels[-1], 1))
        self.aux = nn.ModuleDict({k: nn.Linear(channels[-1], n) for k, n in AUX_HEADS.items()})

    def features(self, images: Tensor) -> Tensor:
        h = F.relu(self.blocks(images * 2 - 1))
        return h.sum((2, 3))

    def forward(self, images: Tensor, tokens: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        phi = self.features(images)
        c = self.text(tokens, mask)
        logit = self.out(phi).squeeze(1) + (c * phi).sum(1)
        aux = {k: head(phi) for k, head in self.aux.items()}
        return logit, aux


def scene_labels(scene: Scene) -> dict[str, Tensor]:
    """Auxiliary-head targets of rendered scenes: lamp count, lit-lamp count, time of day."""
    times = torch.tensor([TIMES_OF_DAY.index(time_of_day(a)) for a in scene.ambient.tolist()])
    return {
        "n_lamps": scene.n_lamps.long().cpu(),
        "n_lit": scene.lamp_lit.sum(1).long().cpu(),
        "time": times,
    }


def caption_targets(captions: list[str]) -> dict[str, Tensor]:
    """What each caption states, as auxiliary targets (-1 where silent); ``min_lit`` >= 0."""
    facts = [parse_caption(c) for c in captions]
    return {
        "n_lamps": torch.tensor([-1 if f.count is None else f.count for f in facts]),
        "time": torch.tensor([-1 if f.time is None else TIMES_OF_DAY.index(f.time) for f in facts]),
        "min_lit": torch.tensor([f.n_lit for f in facts]),
    }


MARGINAL_HEADS = ("n_lamps", "n_lit")


def marginal_kl(aux: dict[str, Tensor], labels: dict[str, Tensor], groups: Tensor | None = None) -> Tensor:
    """Sum over the count heads of KL(q || p): q the labels' histogram, p the mean predicted
    distribution, within each group of ``groups`` (e.g. how many lit lamps the caption mentions),
    weighted by the group's share of the batch. Zero when, in every group, the samples' predicted
    counts are distributed like the scenes' counts."""
    ref = next(iter(aux.values()))
    groups = torch.zeros(ref.shape[0], dtype=torch.long) if groups is None else groups
    groups = groups.to(ref.device)
    total = ref.new_zeros((), dtype=torch.float32)
    for g in groups.unique():
        sel = groups == g
        for k in MARGINAL_HEADS:
            p = aux[k][sel].float().softmax(1).mean(0).clamp_min(1e-6)
            q = torch.bincount(labels[k].to(p.device)[sel], minlength=p.shape[0]).float()
            q = q / q.sum()
            total = total + sel.float().mean() * (q * (q.clamp_min(1e-12).log() - p.log())).sum()
    return total


class GANObjective:
    """Hinge loss with caption-consistency auxiliary losses (the generator's own objective)."""

    def __init__(self, generator: LampGenerator, discriminator: LampDiscriminator, aux_weight: float = 0.5,
                 marginal_weight: float = 0.0):
        self.generator, self.discriminator, self.aux_weight = generator, discriminator, aux_weight
        self.marginal_weight = marginal_weight

    def d_loss(self, real: Tensor, fake: Tensor, tokens: Tensor, mask: Tensor,
               labels: dict[str, Tensor] | None = None) -> tuple[Tensor, dict[str, float]]:
        d = self.discriminator
        real_logit, real_aux = d(real, tokens, mask)
        fake_logit, _ = d(fake.detach(), tokens, mask)
        adv = F.relu(1 - real_logit).mean() + F.relu(1 + fake_logit).mean()
        aux = real_logit.new_zeros(())
        if labels is not None:
            aux = sum(F.cross_entropy(real_aux[k].float(), labels[k].to(real.device)) for k in AUX_HEADS)
        loss = adv + aux
        return loss, {"d_adv": adv.item(), "d_aux": float(aux.detach())}

    def g_loss(self, fake: Tensor, tokens: Tensor, mask: Tensor,
               targets: dict[str, Tensor] | None = None,
               labels: dict[str, Tensor] | None = None) -> tuple[Tensor, dict[str, float]]:
        """Generator loss. ``targets``: what each caption states (per-sample auxiliary losses).
        ``labels``: the true labels of rendered scenes with the same captions; with
        ``marginal_weight > 0`` the batch's predicted lamp-count and lit-count histograms are pulled
        towards theirs (KL of the scenes' histogram to the samples' mean prediction), separately for
        captions naming 0, 1 and 2+ lit lamps: this corrects what the caption leaves open (how many
        lamps, how many of them lit) without tying any one sample to any one scene."""
        logit, aux = self.discriminator(fake, tokens, mask)
        adv = -logit.mean()
        aux_loss = logit.new_zeros(())
        if targets is not None and self.aux_weight > 0:
            dev = fake.device
            for k in ("n_lamps", "time"):
                t = targets[k].to(dev)
                if (t >= 0).any():
                    aux_loss = aux_loss + F.cross_entropy(aux[k].float(), t, ignore_index=-1)
            min_lit = targets["min_lit"].to(dev)
            if (min_lit > 0).any():
                logp = aux["n_lit"].float().log_softmax(1)
                ks = torch.arange(logp.shape[1], device=dev)
                ok = ks[None, :] >= min_lit[:, None]
                p_ok = torch.logsumexp(logp.masked_fill(~ok, -1e4), 1)
                aux_loss = aux_loss - p_ok[min_lit > 0].mean()
        loss = adv + self.aux_weight * aux_loss
        parts = {"g_adv": adv.item(), "g_aux": float(aux_loss.detach())}
        if labels is not None and self.marginal_weight > 0:
            groups = None if targets is None else targets["min_lit"].clamp(max=2)  # lit lamps the caption names
            marg = marginal_kl(aux, labels, groups)
            loss = loss + self.marginal_weight * marg
            parts["g_marginal"] = float(marg.detach())
        return loss, parts
