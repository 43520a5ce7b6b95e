"""Where the editors' layers come from, once per model, and the figures that show it.

* **text** (:func:`text_trace`): the lamp LM's causal trace (Meng et al. 2022; computed by
  :func:`editbench.tracks.text.causal_trace.causal_trace`): the indirect effect of each block's MLP output and residual
  stream, restored at each kind of position, on the probability of a known lit lamp's article, averaged over a
  fixed corpus of the world with several noise draws. Written to ``editbench/assets/text/trace.json`` (the LM's
  model card) and plotted as ``docs/images/trace-text.png``.
* **image** (:func:`image_dissection`): GAN Dissection's per-layer view for the unit and spatial clamps: for each
  generator block, the IoU of its best units with the lamp light the meter reads, on a fixed corpus of the
  generator's samples (the top ``k`` units' mean IoU, with a 95% interval over disjoint chunks of the corpus).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from editbench.core import Budget, io, one_thread, seeds
from editbench.core.stats import mean_interval

DISSECT_SEED = seeds.DISSECT  # the generator samples the per-layer dissection reads
DISSECT_SIZE = 256
DISSECT_CHUNKS = 8


def text_trace(lm_path: str | None = None, n: int | None = None, draws: int | None = None) -> dict[str, Any]:
    from editbench.tracks.text.causal_trace import TRACE_DRAWS, TRACE_SIZE, causal_trace
    from editbench.tracks.text.checkpoints import lm_hash, load_lm
    from editbench.tracks.text.key_moments import model_hash

    lm = load_lm(lm_path)
    out = causal_trace(lm, n=n or TRACE_SIZE, draws=draws or TRACE_DRAWS)
    return {"lm": lm_hash(lm_path), "model_hash": model_hash(lm), **out}


def image_dissection(generator_path: str | None = None, meter_path: str | None = None, n: int = DISSECT_SIZE,
                     k: int = 32, quantile: float = 0.99) -> dict[str, Any]:
    from editbench.benchmarks import evidence_world, get_task
    from editbench.editors._unit_ranking import activations, lamp_light_mask, rank_units
    from editbench.harness.session import Session

    session = Session("image", {"generator": generator_path, "meter": meter_path})
    task = get_task("unlit_lamps")
    request = session.track.request(task.request)
    gen = session.models["generator"]
    layers = [name for name in gen.hook_points() if name.startswith(("stem", "blocks."))]
    with one_thread():
        evidence = session.track.build_evidence("samples", session.models, request, Budget(n, seed=DISSECT_SEED),
                                                evidence_world(task), False)
        mask = lamp_light_mask(evidence, request)
        chunks = torch.arange(n).chunk(DISSECT_CHUNKS)
        out: dict[str, Any] = {"n_samples": n, "k": k, "quantile": quantile, "seed": DISSECT_SEED, "layers": {}}
        for layer in layers:
            acts = activations(gen, layer, evidence)
            iou = rank_units(acts, mask, quantile)
            top = iou.topk(min(k, len(iou))).indices
            per_chunk = torch.stack([rank_units(acts[c], mask[c], quantile)[top].mean() for c in chunks])
            m, lo, hi = mean_interval(per_chunk, seed=0)
            out["layers"][layer] = {"units": int(acts.shape[1]), "top_k_iou": round(float(iou[top].mean()), 4),
                                    "chunk_mean": round(m, 4), "ci": [round(lo, 4), round(hi, 4)],
                                    "best_iou": round(float(iou.max()), 4)}
    out["best_layer"] = max(out["layers"], key=lambda name: out["layers"][name]["top_k_iou"])
    return out


def plot_text_trace(trace: dict[str, Any], path: str | Path) -> Path:
    """One panel per hook point kind (MLP output, residual stream): indirect effect against the block, a line
    per position kind, with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(trace["effects"])
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.6 * len(kinds), 3.6), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        for pos, cells in trace["effects"][kind].items():
            x = list(range(len(cells)))
            y = [c["mean"] for c in cells]
            ax.plot(x, y, marker="o", label=pos)
            ax.fill_between(x, [c["ci"][0] for c in cells], [c["ci"][1] for c in cells], alpha=0.2)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"{kind} restored")
        ax.set_xlabel("block")
        ax.set_xticks(range(len(cells)))
    axes[0][0].set_ylabel("indirect effect on P(lit lamp's article)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(f"causal trace of the lamp LM ({trace['n_facts']} known lit lamps of {trace['n_rooms']} rooms, "
                 f"{trace['draws']} noise draws; clean {trace['p_clean']:.2f}, corrupted {trace['p_corrupted']:.2f})",
                 fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_dissection(dis: dict[str, Any], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dis["layers"])
    rows = [dis["layers"][n] for n in names]
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    y = [r["chunk_mean"] for r in rows]
    err = [[m - r["ci"][0] for m, r in zip(y, rows, strict=True)], [r["ci"][1] - m for m, r in zip(y, rows, strict=True)]]
    ax.bar(range(len(names)), y, yerr=err, capsize=3)
    ax.set_xticks(range(len(names)), [f"{n}\n({r['units']} units)" for n, r in zip(names, rows, strict=True)], fontsize=8)
    ax.set_ylabel(f"mean IoU of the top {dis['k']} units")
    ax.set_title(f"generator units against lamp light ({dis['n_samples']} samples)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path
