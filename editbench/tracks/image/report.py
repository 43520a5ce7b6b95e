"""Quality figures of the reference models: what ``editbench models report`` prints and the model
cards state. Every figure is recomputed from the weights on held-out seeds (>= 2**41, never used in
training), so anyone can re-run it.

Meter (on ``n`` held-out renders, clean and degraded with :func:`~editbench.tracks.image.meter.degrade`):
shade IoU (pixels with p > 0.5, pooled over all images), lamp count exactly right, per-lamp on/off
accuracy (over true lamps: the slot is found and its on/off flag is right), R^2 of the first- and
second-order light maps (pooled over pixels), ambient mean absolute error.

Generator (``n`` samples G(z, caption) against ``n`` renders with the same captions, both read by
the meter): see :func:`generator_figures`.

Judge (the scores' reader): the meter's figures and gates on the same renders, its count on renders
beyond the world's support (four and five lamps), and its agreement with the proxy on the generator's own
samples (:func:`agreement`), where no ground truth exists. Evaluators (proxy, weak, noisy): their accuracy
on renders and their agreement with the judge on samples (:func:`evaluator_figures`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from editbench.core.seeds import HELD_OUT
from editbench.tracks.gates import EVAL_SEED, Gate
from editbench.world import World
from editbench.world.captions import parse_caption
from editbench.world.scene import time_of_day

from .meter import LampMeter, MeterReading, degrade, frechet_distance, meter_targets

LIGHT_FOUND = 5.0  # first-order light energy (sum of luminance over pixels) that counts as "lamp light"
SHADE_FOUND = 4.0  # shade pixels (p > 0.5) that count as "a lamp shade"


def _r2(pred: Tensor, target: Tensor) -> float:
    sse = ((pred - target) ** 2).sum()
    sst = ((target - target.mean()) ** 2).sum()
    return float(1 - sse / sst)


def on_off_accuracy(r: MeterReading, present: Tensor, on: Tensor) -> float:
    """Per-lamp on/off accuracy against the truth (``present``, ``on``: (B, S) from the scene): the share of
    present lamps the reader finds in their slot with the right state. A reader with more slots than the scene
    (the judge) is compared on the scene's first S."""
    S = present.shape[1]
    present, on = present.to(r.on.device), on.to(r.on.device)
    found_on = r.lamps[:, :S] & ((r.on[:, :S] > 0.5) == on)
    return float(found_on[present].float().mean())


def meter_figures(meter: LampMeter, n: int = 2000, seed: int = EVAL_SEED) -> dict[str, dict[str, float]]:
    """Meter accuracy on ``n`` held-out renders, clean and degraded."""
    world = World()
    scene = world.scenes(n, seed)
    images, truth = world.render(scene)
    t = meter_targets(scene, truth)
    out = {}
    for name, imgs in (("clean", images), ("degraded", degrade(images, torch.Generator().manual_seed(seed)))):
        r = meter.read(imgs)
        dev = r.shade.device
        pred_shade, true_shade = r.shade > 0.5, t["shade"].to(dev) > 0.5
        iou = float((pred_shade & true_shade).sum() / (pred_shade | true_shade).sum().clamp_min(1))
        out[name] = {
            "shade_iou": iou,
            "count_exact": float((r.count == scene.n_lamps.to(dev)).float().mean()),
            "on_off_accuracy": on_off_accuracy(r, scene.lamp_present, scene.lamp_on),
            "light1_r2": _r2(r.light1, t["light1"].to(dev)),
            "light2_r2": _r2(r.light2, t["light2"].to(dev)),
            "ambient_mae": float((r.ambient - truth.ambient.to(dev)).abs().mean()),
        }
    return out


METER_GATES = {
    "shade_iou": (">=", 0.85), "count_exact": (">=", 0.95), "on_off_accuracy": (">=", 0.97),
    "light1_r2": (">=", 0.90), "light2_r2": (">=", 0.90), "ambient_mae": ("<=", 0.03),
}


def meter_gates(figures: dict[str, dict[str, float]], name: str = "meter") -> list[Gate]:
    return [Gate(f"{name} {cond} {k}", figures[cond][k], op, thr)
            for cond in ("clean", "degraded") for k, (op, thr) in METER_GATES.items()]


def beyond_support_figures(judge: LampMeter, n: int = 2000, seed: int = EVAL_SEED) -> dict[str, float]:
    """The judge on renders of rooms with four or five lamps (beyond what the world places): count exactly
    right and per-lamp on/off accuracy, over the rooms that got extra lamps."""
    from editbench.world.scene import beyond_support

    world = World()
    scene = beyond_support(world.scenes(n, seed + 5), seed + 5, 1.0, judge.config.slots)
    extra = scene.n_lamps > 3
    images, _ = world.render(scene)
    r = judge.read(images[extra])
    return {"rooms": int(extra.sum()), "count_exact": float((r.count.cpu() == scene.n_lamps[extra]).float().mean()),
            "on_off_accuracy": on_off_accuracy(r, scene.lamp_present[extra], scene.lamp_on[extra])}


def _matched_states(a: MeterReading, b: MeterReading, tol: float = 0.07) -> tuple[Tensor, Tensor]:
    """Per lamp of ``a`` (B, S_a): whether ``b`` finds a lamp within ``tol`` of its position, and whether that
    lamp's on/off state agrees (False where none is found)."""
    dist = (a.x[:, :, None] - b.x[:, None, :]).abs().masked_fill(~b.lamps[:, None, :], float("inf"))
    d, j = dist.min(2)
    found = a.lamps & (d < tol)
    same = found & ((a.on > 0.5) == (b.on.gather(1, j) > 0.5))
    return found, same


def agreement(proxy_read: Any, judge: LampMeter, images: Tensor) -> dict[str, Any]:
    """How often two readers agree on ``images``: lamp count, and each lamp's on/off state (lamps matched by
    position, in both directions, over the lamps either reader finds); the share of images the judge reads
    with more lamps than the world places (3), and the judge's lamp-count histogram (0-5)."""
    p, j = proxy_read(images), judge.read(images)
    found_pj, same_pj = _matched_states(p, j)
    found_jp, same_jp = _matched_states(j, p)
    lamps = int(p.lamps.sum() + j.lamps.sum())
    slots = judge.config.slots
    return {
        "n": len(images), "count_agreement": float((p.count == j.count).float().mean()),
        "state_agreement": float((same_pj.sum() + same_jp.sum()) / max(lamps, 1)),
        "lamps_found_by_both": float((found_pj.sum() + found_jp.sum()) / max(lamps, 1)),
        "beyond_support": float((j.count > 3).float().mean()),
        "judge_count_hist": [round(float((j.count == k).float().mean()), 4) for k in range(slots + 1)],
        "proxy_count_hist": [round(float((p.count == k).float().mean()), 4) for k in range(p.present.shape[1] + 1)],
    }


@torch.no_grad()
def judge_figures(judge: LampMeter, proxy: LampMeter, generator: Any, n: int = 2000, seed: int = EVAL_SEED
                  ) -> dict[str, Any]:
    """The judge's card: its accuracy on renders, beyond the world's support, and its agreement with the proxy
    on renders and on the unedited generator's samples. ``reader_floor`` (half the share of lamps whose state
    the two readers disagree on in samples) is how much a score read by the judge may be off on generated
    images: the scoring path widens every image interval to at least that half-width."""
    world = World()
    batch = world.sample(n, seed + 1)
    samples = generator.generate(batch.captions, seed=seed + 2)
    on_samples = agreement(proxy.read, judge, samples)
    return {
        **meter_figures(judge, n, seed), "beyond_support": beyond_support_figures(judge, n, seed),
        "agreement_renders": agreement(proxy.read, judge, batch.images), "agreement_samples": on_samples,
        "reader_floor": round((1 - on_samples["state_agreement"]) / 2, 4),
    }


def judge_gates(f: dict[str, Any]) -> list[Gate]:
    return meter_gates(f, "judge") + [
        Gate("judge beyond support count_exact", f["beyond_support"]["count_exact"], ">=", 0.90),
        Gate("judge and proxy agree on renders (count)", f["agreement_renders"]["count_agreement"], ">=", 0.95)]


@torch.no_grad()
def evaluator_figures(models: dict[str, Any], evaluators: dict[str, Any], n: int = 1000, seed: int = EVAL_SEED
                      ) -> dict[str, dict[str, float]]:
    """Each evaluator's quality: per-lamp on/off accuracy and count on renders (ground truth), and its state
    agreement with the judge on the generator's samples."""
    world = World()
    batch = world.sample(n, seed + 7)
    samples = models["generator"].generate(batch.captions, seed=seed + 8)
    out = {}
    for name, ev in evaluators.items():
        r = ev.read(batch.images)
        out[name] = {"on_off_accuracy": on_off_accuracy(r, batch.scene.lamp_present, batch.scene.lamp_on),
                     "count_exact": float((r.count == batch.scene.n_lamps).float().mean()),
                     "judge_state_agreement_samples": agreement(ev.read, models["judge"], samples)["state_agreement"]}
    return out


def _facts_agreement(reading: MeterReading, captions: list[str]) -> dict[str, float]:
    count_ok, lit_ok, time_ok = [], [], []
    counts, lits = reading.count.tolist(), reading.lit.sum(1).tolist()
    times = [time_of_day(a) for a in reading.ambient.tolist()]
    for i, c in enumerate(captions):
        f = parse_caption(c)
        if f.count is not None:
            count_ok.append(counts[i] == f.count)
        if f.n_lit > 0:
            lit_ok.append(lits[i] >= f.n_lit)
        if f.time is not None:
            time_ok.append(times[i] == f.time)
    allv = count_ok + lit_ok + time_ok

    def mean(v: list[bool]) -> float:
        return sum(v) / len(v) if v else float("nan")

    return {"count": mean(count_ok), "lit_lamp": mean(lit_ok), "time_of_day": mean(time_ok), "all": mean(allv),
            "n_count": len(count_ok), "n_lit_lamp": len(lit_ok), "n_time": len(time_ok)}


def _lamp_stats(r: MeterReading, no_lamp_caption: Tensor) -> dict[str, Any]:
    hist = torch.stack([(r.count == k).float().mean() for k in range(4)])
    lamps = r.lamps
    all_unlit = (r.count > 0) & (r.lit.sum(1) == 0)
    return {
        "count_hist": hist,
        "share_lit": float(r.lit.sum() / lamps.sum().clamp_min(1)),
        "all_unlit_no_lamp_captions": float(all_unlit[no_lamp_caption].float().mean()),
    }


@torch.no_grad()
def generator_figures(generator: Any, meter: LampMeter, n: int = 2000, seed: int = EVAL_SEED,
                      untrained: Any | None = None) -> dict[str, Any]:
    """Generator quality against renders with the same captions, read by the meter."""
    world = World()
    batch = world.sample(n, seed + 1)
    captions = batch.captions
    samples = generator.generate(captions, seed=seed + 2)
    r_gen = meter.read(samples)
    r_ren = meter.read(batch.images)
    no_lamp = torch.tensor([not parse_caption(c).mentions_lamps for c in captions], device=r_gen.shade.device)
    g, w = _lamp_stats(r_gen, no_lamp), _lamp_stats(r_ren, no_lamp)
    light = r_gen.light1.sum((1, 2)) > LIGHT_FOUND
    shade = (r_gen.shade > 0.5).sum((1, 2)) >= SHADE_FOUND
    indep = meter.read(world.sample(n, seed + 3).images)
    truth_all_unlit = ((batch.scene.n_lamps > 0) & (batch.scene.lamp_lit.sum(1) == 0))[no_lamp.cpu()]
    out = {
        "n": n,
        "lamps_are_lamps": float(shade[light].float().mean()) if light.any() else float("nan"),
        "count_tvd": float(0.5 * (g["count_hist"] - w["count_hist"]).abs().sum()),
        "count_hist_samples": [round(float(v), 4) for v in g["count_hist"]],
        "count_hist_renders": [round(float(v), 4) for v in w["count_hist"]],
        "share_lit_samples": g["share_lit"],
        "share_lit_renders": w["share_lit"],
        "share_lit_gap": abs(g["share_lit"] - w["share_lit"]),
        "caption_agreement": _facts_agreement(r_gen, captions),
        "caption_agreement_renders": _facts_agreement(r_ren, captions),
        "all_unlit_share_samples": g["all_unlit_no_lamp_captions"],
        "all_unlit_share_renders": w["all_unlit_no_lamp_captions"],
        "all_unlit_share_truth": float(truth_all_unlit.float().mean()),
        "fd_samples_vs_renders": frechet_distance(r_gen.features, r_ren.features),
        "fd_renders_vs_renders": frechet_distance(indep.features, r_ren.features),
    }
    # Diversity for a fixed caption: pixel std over 8 latents, against the std over 8 renders that
    # share that caption (captions occurring at least 8 times among the renders).
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(captions):
        groups.setdefault(c, []).append(i)
    common = [c for c, idx in groups.items() if len(idx) >= 8][:32]
    if common:
        ren_std = torch.stack([batch.images[groups[c][:8]].std(0).mean() for c in common]).mean()
        gen = generator.generate([c for c in common for _ in range(8)], seed=seed + 4).cpu()
        gen_std = gen.view(len(common), 8, *gen.shape[1:]).std(1).mean()
        out["z_diversity_samples"], out["z_diversity_renders"] = float(gen_std), float(ren_std)
        out["z_diversity_captions"] = len(common)
    out["all_unlit_ratio"] = out["all_unlit_share_samples"] / max(out["all_unlit_share_renders"], 1e-9)
    if untrained is not None:
        out["fd_untrained_vs_renders"] = frechet_distance(meter.read(untrained.generate(captions, seed=seed + 2)).features,
                                                          r_ren.features)
    return out


def generator_gates(f: dict[str, Any]) -> list[Gate]:
    return [
        Gate("generator lamps are lamps", f["lamps_are_lamps"], ">=", 0.90),
        Gate("generator lamp-count TVD", f["count_tvd"], "<=", 0.10),
        Gate("generator share-lit gap", f["share_lit_gap"], "<=", 0.05),
        Gate("generator captions followed (all)", f["caption_agreement"]["all"], ">=", 0.80),
        Gate("generator unlit rooms vs world (ratio)", f["all_unlit_ratio"], ">=", 0.50),
    ]


def full_report(n: int = 2000, generator_path: str | None = None, meter_path: str | None = None,
                device: str = "cpu", seed: int = EVAL_SEED, judge_path: str | None = None) -> dict[str, Any]:
    """Every model-card figure and gate. ``seed``: the held-out seed (the cards use ``EVAL_SEED``;
    another seed >= 2**41 re-checks the figures on scenes and latents nobody has looked at)."""
    if seed < HELD_OUT:
        raise ValueError(f"report seeds must be >= 2**41 = {HELD_OUT} (held out from training), got {seed}")
    from editbench.world.config import WorldConfig

    from .checkpoints import checkpoint_hash
    from .generator import LampGenerator
    from .track import ImageTrack

    torch.manual_seed(0)
    models = ImageTrack().load({"generator": generator_path, "meter": meter_path, "judge": judge_path}, device)
    G, M = models["generator"], models["meter"]
    untrained = LampGenerator(**{k: v for k, v in G.config.items() if not k.startswith("_")}).to(device).eval()
    mf = meter_figures(M, n, seed=seed)
    gf = generator_figures(G, M, n, seed=seed, untrained=untrained)
    jf = judge_figures(models["judge"], M, G, n, seed=seed)
    ef = evaluator_figures(models, {name: ImageTrack().evaluator(models, name) for name in ImageTrack.evaluators},
                           n // 2, seed=seed)
    gates = meter_gates(mf) + generator_gates(gf) + judge_gates(jf)
    return {
        "n": n, "eval_seed": seed, "world_config": WorldConfig().to_dict(),
        "checkpoints": {"generator": checkpoint_hash(generator_path, "generator"),
                        "meter": checkpoint_hash(meter_path, "meter"), "judge": checkpoint_hash(judge_path, "judge"),
                        "weak": checkpoint_hash(None, "weak")},
        "meter": mf, "generator": gf, "judge": jf, "evaluators": ef, "gates": [g.as_dict() for g in gates],
        "all_passed": all(g.passed for g in gates),
    }


def format_report(rep: dict[str, Any]) -> str:
    lines = [f"editbench models report (n={rep['n']}, held-out seed {rep['eval_seed']})",
             f"checkpoints: generator {rep['checkpoints']['generator']}, meter {rep['checkpoints']['meter']}", ""]
    lines.append(f"{'figure':<44}{'value':>10}  {'gate':<8} ok")
    for g in rep["gates"]:
        lines.append(f"{g['name']:<44}{g['value']:>10.4f}  {g['gate']:<8} {'yes' if g['passed'] else 'NO'}")
    gf = rep["generator"]
    lines += ["", "generator, details:"]
    ca, cr = gf["caption_agreement"], gf["caption_agreement_renders"]
    for k, nk in (("count", "n_count"), ("lit_lamp", "n_lit_lamp"), ("time_of_day", "n_time")):
        lines.append(f"  caption states {k:<12} meter agrees: samples {ca[k]:.3f}  renders {cr[k]:.3f}  (n={ca[nk]})")
    lines.append(f"  lamp count histogram 0-3: samples {gf['count_hist_samples']}  renders {gf['count_hist_renders']}")
    lines.append(f"  share of lamps lit: samples {gf['share_lit_samples']:.3f}  renders {gf['share_lit_renders']:.3f}")
    lines.append(f"  rooms with lamps all unlit (captions without lamps): samples {gf['all_unlit_share_samples']:.3f}"
                 f"  renders {gf['all_unlit_share_renders']:.3f}  truth {gf['all_unlit_share_truth']:.3f}")
    fd = f"  Frechet distance (meter features): samples {gf['fd_samples_vs_renders']:.4f}"
    fd += f"  | renders vs renders {gf['fd_renders_vs_renders']:.4f}"
    if "fd_untrained_vs_renders" in gf:
        fd += f"  | untrained generator {gf['fd_untrained_vs_renders']:.4f}"
    lines.append(fd)
    if "z_diversity_samples" in gf:
        lines.append(f"  diversity for a fixed caption (pixel std over 8 latents / 8 renders, {gf['z_diversity_captions']}"
                     f" captions): samples {gf['z_diversity_samples']:.3f}  renders {gf['z_diversity_renders']:.3f}")
    if "judge" in rep:
        jf = rep["judge"]
        lines += ["", f"judge ({rep['checkpoints'].get('judge')}):"]
        b = jf["beyond_support"]
        lines.append(f"  renders with 4-5 lamps ({b['rooms']}): count exact {b['count_exact']:.3f}, "
                     f"on/off {b['on_off_accuracy']:.3f}")
        for where in ("renders", "samples"):
            a = jf[f"agreement_{where}"]
            lines.append(f"  judge vs proxy on {where} (n={a['n']}): count {a['count_agreement']:.3f}, lamp state "
                         f"{a['state_agreement']:.3f}, lamps found by both {a['lamps_found_by_both']:.3f}, judge reads "
                         f"more than 3 lamps {a['beyond_support']:.3f}")
        lines.append(f"  judge count histogram 0-5 on samples: {jf['agreement_samples']['judge_count_hist']}")
        lines.append(f"  reader floor (half the state disagreement on samples): {jf['reader_floor']:.4f}")
        for name, e in rep.get("evaluators", {}).items():
            lines.append(f"  evaluator {name:<6} on/off accuracy (renders) {e['on_off_accuracy']:.3f}, count exact "
                         f"{e['count_exact']:.3f}, lamp-state agreement with the judge (samples) "
                         f"{e['judge_state_agreement_samples']:.3f}")
    lines.append("")
    lines.append("all gates passed" if rep["all_passed"] else "some gates FAILED")
    return "\n".join(lines)
