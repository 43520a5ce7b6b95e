"""The lamp LM's model-card figures and gates (``editbench models report --track text``), measured by the
exact parser on held-out captions (seeds >= 2**41, never seen in training):

* parses: share of sampled descriptions the parser reads;
* caption facts followed: share of captions every stated fact of which the description keeps (wall
  colour, window, lamp count, each mentioned lamp with its kind, state and side, time of day);
* lamp-count histogram (0-3) TVD and share of lamps lit, against the world's scenes of the same captions;
* second-order consistency: light and reflections only from lit lamps, every lit lamp lighting wall and
  floor (:meth:`~editbench.world.descriptions.Facts.consistent`);
* open facts vary like the world's: for the most frequent captions (each stands for many rooms), the
  entropy of what the caption leaves open (wall, window, bed, time, lamp count, lamps lit) over sampled
  descriptions against the entropy over the world's rooms with that caption.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import torch

from editbench.tracks.gates import EVAL_SEED, Gate
from editbench.world import World, WorldConfig
from editbench.world.captions import parse_caption
from editbench.world.descriptions import Facts, parse_description, scene_facts

SIDES = {"left": ("far left", "left"), "right": ("right", "far right"), "middle": ()}
OPEN_FACTS = ("wall", "window", "bed", "time", "n_lamps", "n_lit")


def follows(caption: str, f: Facts | None) -> bool:
    """Does the description (parsed) keep every fact the caption states?"""
    if f is None:
        return False
    c = parse_caption(caption)
    if c.wall is not None and f.wall != c.wall:
        return False
    if c.window and not f.window:
        return False
    if c.time is not None and f.time != c.time:
        return False
    if c.count is not None and f.n_lamps != c.count:
        return False
    k = 0  # mentioned lamps, left to right, as a subsequence of the described ones
    for kind, lit, side in c.lamps:
        while k < len(f.lamps) and not (f.lamps[k].kind == kind and f.lamps[k].lit == lit
                                        and (side is None or f.lamps[k].place in SIDES[side])):
            k += 1
        if k == len(f.lamps):
            return False
        k += 1
    return True


def _fact(f: Facts, name: str) -> Any:
    return {"wall": f.wall, "window": f.window, "bed": f.bed, "time": f.time, "n_lamps": f.n_lamps,
            "n_lit": f.n_lit}[name]


def _entropy(values: list[Any]) -> float:
    counts = Counter(values)
    n = sum(counts.values())
    return -sum(c / n * math.log(c / n) for c in counts.values()) if n else 0.0


def _hist(values: list[int], k: int = 4) -> list[float]:
    return [sum(v == i for v in values) / max(len(values), 1) for i in range(k)]


@torch.no_grad()
def lm_figures(model: Any, n: int = 2000, seed: int = EVAL_SEED, n_captions: int = 8, per_caption: int = 64,
               pool: int = 200_000) -> dict[str, Any]:
    world = World(WorldConfig())
    scene = world.scenes(n, seed)
    captions, _ = world.captions(scene, seed)
    truth = scene_facts(scene)
    t0 = time.perf_counter()
    texts = model.generate(captions, model.make_noise(n, seed + 1))
    gen_s = time.perf_counter() - t0
    tokens = sum(len(t.split()) + 1 for t in texts)
    parsed = [parse_description(t) for t in texts]
    ok = [f for f in parsed if f is not None]
    followed = [follows(c, f) for c, f in zip(captions, parsed, strict=True)]
    hist_s, hist_w = _hist([f.n_lamps for f in ok]), _hist([f.n_lamps for f in truth])
    lit_s = sum(f.n_lit for f in ok) / max(1, sum(f.n_lamps for f in ok))
    lit_w = sum(f.n_lit for f in truth) / max(1, sum(f.n_lamps for f in truth))

    # open facts for fixed captions: the most frequent captions of a large pool of the world's rooms
    big = world.scenes(pool, seed + 2)
    big_caps, _ = world.captions(big, seed + 2)
    by_caption: dict[str, list[int]] = {}
    for i, c in enumerate(big_caps):
        by_caption.setdefault(c, []).append(i)
    common = sorted(by_caption, key=lambda c: (-len(by_caption[c]), c))[:n_captions]
    facts_needed = sorted({i for c in common for i in by_caption[c]})
    big_facts = dict(zip(facts_needed, scene_facts(big[torch.tensor(facts_needed)]), strict=True))
    entropy_rows = []
    for j, c in enumerate(common):
        samples = [parse_description(t) for t in model.generate([c] * per_caption, model.make_noise(per_caption, seed + 3 + j))]
        samples = [f for f in samples if f is not None]
        world_rows = [big_facts[i] for i in by_caption[c]]
        h_model = sum(_entropy([_fact(f, k) for f in samples]) for k in OPEN_FACTS)
        h_world = sum(_entropy([_fact(f, k) for f in world_rows]) for k in OPEN_FACTS)
        entropy_rows.append({"caption": c, "world_rooms": len(world_rows), "entropy_samples": round(h_model, 4),
                             "entropy_world": round(h_world, 4)})
    h_s = sum(r["entropy_samples"] for r in entropy_rows)
    h_w = sum(r["entropy_world"] for r in entropy_rows)
    return {
        "n": n, "parses": len(ok) / n, "caption_facts_followed": sum(followed) / n,
        "count_hist_samples": [round(x, 4) for x in hist_s], "count_hist_world": [round(x, 4) for x in hist_w],
        "count_tvd": 0.5 * sum(abs(a - b) for a, b in zip(hist_s, hist_w, strict=True)),
        "share_lit_samples": lit_s, "share_lit_world": lit_w, "share_lit_gap": abs(lit_s - lit_w),
        "second_order_consistent": sum(f.consistent() for f in ok) / max(1, len(ok)),
        "open_fact_entropy_ratio": h_s / h_w if h_w > 0 else float("nan"), "open_fact_entropy": entropy_rows,
        "generation_tokens_per_s": tokens / gen_s, "generation_s": gen_s,
        "examples": [{"caption": c, "description": t} for c, t in list(zip(captions, texts, strict=True))[:4]],
    }


def lm_gates(f: dict[str, Any]) -> list[Gate]:
    return [
        Gate("lm parses", f["parses"], ">=", 0.99),
        Gate("lm caption facts followed", f["caption_facts_followed"], ">=", 0.97),
        Gate("lm lamp-count TVD", f["count_tvd"], "<=", 0.05),
        Gate("lm share of lamps lit, gap", f["share_lit_gap"], "<=", 0.03),
        Gate("lm second-order consistency", f["second_order_consistent"], ">=", 0.97),
        Gate("lm open-fact entropy ratio, |1 - r|", abs(1 - f["open_fact_entropy_ratio"]), "<=", 0.10),
    ]


def full_report(n: int = 2000, lm_path: str | None = None, device: str = "cpu", seed: int = EVAL_SEED) -> dict[str, Any]:
    from editbench.core import UserError

    from .checkpoints import lm_hash, load_lm

    if seed < EVAL_SEED:
        raise UserError(f"report seeds must be >= 2**41 = {EVAL_SEED} (held out from training), got {seed}")
    model = load_lm(lm_path, device=device)
    f = lm_figures(model, n, seed=seed)
    gates = lm_gates(f)
    return {"track": "text", "n": n, "eval_seed": seed, "checkpoints": {"lm": lm_hash(lm_path)},
            "parameters": sum(p.numel() for p in model.parameters()), "lm": f, "gates": [g.as_dict() for g in gates],
            "all_passed": all(g.passed for g in gates)}


def format_report(rep: dict[str, Any]) -> str:
    f = rep["lm"]
    lines = [f"editbench models report --track text (n={rep['n']}, held-out seed {rep['eval_seed']})",
             f"checkpoint: lm {rep['checkpoints']['lm']} ({rep['parameters']:,} parameters)", "",
             f"{'figure':<44}{'value':>10}  {'gate':<8} ok"]
    for g in rep["gates"]:
        lines.append(f"{g['name']:<44}{g['value']:>10.4f}  {g['gate']:<8} {'yes' if g['passed'] else 'NO'}")
    lines += ["", "details:",
              f"  lamp count histogram 0-3: samples {f['count_hist_samples']}  world {f['count_hist_world']}",
              f"  share of lamps lit: samples {f['share_lit_samples']:.3f}  world {f['share_lit_world']:.3f}",
              f"  open-fact entropy ratio {f['open_fact_entropy_ratio']:.3f} over {len(f['open_fact_entropy'])} captions:"]
    for r in f["open_fact_entropy"]:
        lines.append(f"    {r['caption']!r}: samples {r['entropy_samples']:.3f}  world {r['entropy_world']:.3f}"
                     f"  ({r['world_rooms']} rooms)")
    lines.append(f"  generation: {f['generation_tokens_per_s']:.0f} tokens/s ({rep['n']} descriptions in "
                 f"{f['generation_s']:.1f} s)")
    for e in f["examples"][:2]:
        lines.append(f"  {e['caption']!r} -> {e['description']!r}")
    lines += ["", "all gates passed" if rep["all_passed"] else "some gates FAILED"]
    return "\n".join(lines)
