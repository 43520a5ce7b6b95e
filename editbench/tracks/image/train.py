"""Training of the reference models: ``editbench train generator|meter``.

Both runs are reproducible from one command with a fixed seed: the data of step ``k`` is rendered
from seed ``stream_seed(seed, k)``, so a resumed run sees exactly the data it would have seen. A run
folder holds the model(s) as diffusers folders (``save_pretrained``, safetensors), a ``state/``
folder for resuming (raw weights in safetensors, optimizer state), ``log.jsonl`` and ``run.json``.
Checkpoints are written to a temporary folder and renamed (:func:`editbench.core.io.write_dir`), so an
interrupted run never leaves a half-written checkpoint.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from editbench.core import io
from editbench.core.seeds import PREVIEW
from editbench.tracks.training import JsonlLog, autocast, pick_device, start_run, stream_seed
from editbench.world import World, WorldConfig
from editbench.world.captions import CaptionTokenizer, make_captions
from editbench.world.render import render
from editbench.world.scene import beyond_support


def _versions() -> dict[str, str]:
    import diffusers

    from editbench import __version__

    return {"editbench": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__}


def render_batch(world: World, n: int, seed: int, device: torch.device, tokenizer: CaptionTokenizer):
    """Scenes, images (on ``device``), ground truth, captions and caption tokens for one batch."""
    scene = world.scenes(n, seed)
    images, truth = render(scene.to(device), world.config.size)
    captions, _ = make_captions(scene, world.config, seed)
    ids, mask = tokenizer.encode(captions)
    return scene, images, truth, captions, ids.to(device), mask.to(device)


# ---- generator ----------------------------------------------------------------------------------
def train_generator(
    out: str | Path,
    steps: int,
    seed: int = 0,
    batch_size: int = 64,
    device: str = "auto",
    bf16: bool = True,
    g_lr: float = 2e-4,
    d_lr: float = 4e-4,
    ema_decay: float = 0.999,
    aux_weight: float = 0.5,
    marginal_weight: float = 0.0,
    init_from: str | None = None,
    ckpt_every: int = 1000,
    sample_every: int = 2000,
    log_every: int = 50,
    resume: bool = False,
    generator_config: dict[str, Any] | None = None,
    discriminator_config: dict[str, Any] | None = None,
    world_config: dict[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Train the conditional GAN; returns the run folder (EMA generator in ``out/generator``).

    ``init_from``: a generator folder (with its ``discriminator`` beside it, as shipped) to continue
    from instead of random weights; both the raw and the EMA generator start from its weights.
    ``marginal_weight``: weight of the batch count-histogram loss (``GANObjective.g_loss``)."""
    args = {k: v for k, v in locals().items() if k != "out"}
    from .checkpoints import checkpoint_hash, load_discriminator, load_generator
    from .generator import LampDiscriminator, LampGenerator, caption_targets, scene_labels

    init = None
    if init_from is not None:  # load (and so check) it before the run folder is touched
        init = load_generator(init_from)
        if init.discriminator_path is None:
            raise FileNotFoundError(f"{init_from} has no discriminator folder beside it to continue training with")
        args["init_from_hash"] = checkpoint_hash(init_from)

    out = Path(out)
    start = start_run(out, "generator", args, resume, _versions())
    dev = pick_device(device)
    torch.manual_seed(seed)
    world = World(WorldConfig.from_dict(world_config or {}))
    if init is not None:
        G = init.to(dev).train()
        D = load_discriminator(init.discriminator_path, device=dev).train()
    else:
        G = LampGenerator(**(generator_config or {})).to(dev)
        D = LampDiscriminator(**(discriminator_config or {})).to(dev)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=g_lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=d_lr, betas=(0.0, 0.99))
    if start > 0:
        st = out / "state"
        G.load_state_dict(load_file(str(st / "generator_raw.safetensors"), device=str(dev)))
        D.load_state_dict(load_file(str(out / "discriminator" / "diffusion_pytorch_model.safetensors"), device=str(dev)))
        G_ema.load_state_dict(load_file(str(out / "generator" / "diffusion_pytorch_model.safetensors"), device=str(dev)))
        opt = torch.load(st / "optim.pt", map_location=dev, weights_only=True)
        opt_g.load_state_dict(opt["g"])
        opt_d.load_state_dict(opt["d"])
    objective = G.training_objective(D, aux_weight=aux_weight, marginal_weight=marginal_weight)
    tok = CaptionTokenizer(G.config.max_tokens)
    log = JsonlLog(out / "log.jsonl")
    fixed = world.sample(32, seed=PREVIEW + seed)
    fixed_z = G.make_latents(32, seed=PREVIEW + seed)

    def save(step: int) -> None:
        io.write_dir(out / "generator", lambda p: G_ema.save_pretrained(p))
        io.write_dir(out / "discriminator", lambda p: D.save_pretrained(p))

        def write_state(p: Path) -> None:
            save_file({k: v.contiguous() for k, v in G.state_dict().items()}, str(p / "generator_raw.safetensors"))
            torch.save({"g": opt_g.state_dict(), "d": opt_d.state_dict()}, p / "optim.pt")
            (p / "step.json").write_text(json.dumps({"step": step}))
        io.write_dir(out / "state", write_state)

    def sample_grid(step: int) -> None:
        from editbench.world.viz import save_grid

        imgs = G_ema.generate(fixed.captions, z=fixed_z)
        save_grid(imgs.cpu(), fixed.captions, out / "samples" / f"step-{step:07d}.png", title=f"step {step}")

    t0 = time.time()
    bar = tqdm(range(start, steps), desc="train generator", disable=not progress, initial=start, total=steps)
    for step in bar:
        s = stream_seed(seed, step)
        scene, real, _, captions, ids, mask = render_batch(world, batch_size, s, dev, tok)
        labels = scene_labels(scene)
        targets = caption_targets(captions)
        g = torch.Generator().manual_seed(s)
        z = torch.randn(2, batch_size, G.config.z_dim, generator=g).to(dev)

        with autocast(dev, bf16):
            fake = G(z[0], ids, mask)
            d_loss, d_parts = objective.d_loss(real, fake, ids, mask, labels)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        with autocast(dev, bf16):
            fake = G(z[1], ids, mask)
            g_loss, g_parts = objective.g_loss(fake, ids, mask, targets, labels)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        with torch.no_grad():
            for pe, p in zip(G_ema.parameters(), G.parameters(), strict=True):
                pe.lerp_(p, 1 - ema_decay)

        done = step + 1
        if done % log_every == 0 or done == steps:
            rec = {"step": done, "elapsed_s": round(time.time() - t0, 2), **d_parts, **g_parts}
            if not all(math.isfinite(v) for k, v in rec.items() if k != "step"):
                raise FloatingPointError(f"non-finite loss at step {done}: {rec}")
            log.write(rec)
            bar.set_postfix(d=f"{d_parts['d_adv']:.3f}", g=f"{g_parts['g_adv']:.3f}")
        if done % ckpt_every == 0 or done == steps:
            save(done)
        if done % sample_every == 0 or done == steps:
            sample_grid(done)
    if start >= steps:
        save(start)
    return out


# ---- meter --------------------------------------------------------------------------------------
_JUDGE_DEFAULTS = {"extra_lamps": 0.0, "degrade_strength": 1.0, "p_soften": 0.0}  # left out of a meter run's args
def train_meter(
    out: str | Path,
    steps: int,
    seed: int = 0,
    batch_size: int = 128,
    device: str = "auto",
    bf16: bool = True,
    lr: float = 2e-3,
    p_degrade: float = 0.7,
    ckpt_every: int = 1000,
    log_every: int = 50,
    resume: bool = False,
    meter_config: dict[str, Any] | None = None,
    world_config: dict[str, Any] | None = None,
    progress: bool = True,
    extra_lamps: float = 0.0,
    degrade_strength: float = 1.0,
    p_soften: float = 0.0,
) -> Path:
    """Train the lamp meter on fresh renders (degraded with probability ``p_degrade``).

    For a judge (see the judge's card): ``extra_lamps`` > 0 gives that share of the rooms one or two lamps
    beyond the world's support (:func:`editbench.world.scene.beyond_support`; the meter needs as many
    slots, ``meter_config["slots"]``); ``degrade_strength`` scales the degradations and ``p_soften``
    halves the resolution of that share of the degraded images (down and up again, bilinear)."""
    args = {k: v for k, v in locals().items() if k != "out" and not (k in _JUDGE_DEFAULTS and v == _JUDGE_DEFAULTS[k])}
    from .meter import LampMeter, degrade, meter_loss, meter_targets

    out = Path(out)
    start = start_run(out, "meter", args, resume, _versions())
    dev = pick_device(device)
    torch.manual_seed(seed)
    world = World(WorldConfig.from_dict(world_config or {}))
    M = LampMeter(**(meter_config or {})).to(dev)
    slots = M.config.slots
    opt = torch.optim.AdamW(M.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.05)
    if start > 0:
        M.load_state_dict(load_file(str(out / "meter" / "diffusion_pytorch_model.safetensors"), device=str(dev)))
        st = torch.load(out / "state" / "optim.pt", map_location=dev, weights_only=True)
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
    log = JsonlLog(out / "log.jsonl")

    def save(step: int) -> None:
        io.write_dir(out / "meter", lambda p: M.save_pretrained(p))

        def write_state(p: Path) -> None:
            torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, p / "optim.pt")
            (p / "step.json").write_text(json.dumps({"step": step}))
        io.write_dir(out / "state", write_state)

    t0 = time.time()
    bar = tqdm(range(start, steps), desc="train meter", disable=not progress, initial=start, total=steps)
    for step in bar:
        s = stream_seed(seed, step)
        scene = world.scenes(batch_size, s)
        if slots > scene.lamp_present.shape[1]:
            scene = beyond_support(scene, s, extra_lamps, slots)
        images, truth = render(scene.to(dev), world.config.size)
        g = torch.Generator().manual_seed(s)
        which = (torch.rand(batch_size, generator=g) < p_degrade).to(dev)[:, None, None, None]
        degraded = degrade(images, g, degrade_strength)
        if p_soften > 0:
            soft = (torch.rand(batch_size, generator=g) < p_soften).to(dev)[:, None, None, None]
            half = F.interpolate(degraded, scale_factor=0.5, mode="bilinear", align_corners=False)
            degraded = torch.where(soft, F.interpolate(half, size=degraded.shape[-2:], mode="bilinear",
                                                       align_corners=False), degraded)
        images = torch.where(which, degraded, images)
        targets = meter_targets(scene.to(dev), truth)
        with autocast(dev, bf16):
            pred = M(images)
        loss, parts = meter_loss(pred, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(M.parameters(), 1.0)
        opt.step()
        sched.step()
        done = step + 1
        if done % log_every == 0 or done == steps:
            rec = {"step": done, "elapsed_s": round(time.time() - t0, 2), "loss": float(loss.detach()), **parts}
            if not math.isfinite(rec["loss"]):
                raise FloatingPointError(f"non-finite loss at step {done}: {rec}")
            log.write(rec)
            bar.set_postfix(loss=f"{rec['loss']:.4f}")
        if done % ckpt_every == 0 or done == steps:
            save(done)
    if start >= steps:
        save(start)
    return out
