"""The study's tables and plots: accuracy by depth, model size and training examples, the control."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from editbench.core import io

from .data import CHANCE_ACC, CHANCE_MAE, DEPTH_N, N_TEST, SIZES

if TYPE_CHECKING:
    pass


# ---- tables, the answer and plots ----------------------------------------------------------------------------
def summary_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def order(r: dict[str, Any]) -> tuple:
        p = r["point"]
        size = p.get("size") or ""
        return (SIZES.index(size) if size in SIZES else len(SIZES), size, r["depth"], p["n_train"], p["mode"],
                p["neuron"], bool(p.get("reporter")))

    rows = []
    for r in sorted(records, key=order):
        p = r["point"]
        rows.append({"size": p.get("size") or "", "layer": p["layer"], "depth": r["depth"], "neuron": p["neuron"],
                     "choice": p["choice"], "reporter": "control" if p.get("reporter") else "self", "mode": p["mode"],
                     "n_train": p["n_train"], "accuracy": r["accuracy"], "accuracy_lo": r["accuracy_ci"][0],
                     "accuracy_hi": r["accuracy_ci"][1], "mae": r["mae"], "probe_ceiling": r["probe_ceiling"],
                     "probe_share": r["accuracy"] / max(r["probe_ceiling"], 1e-9), "drift": r["drift"],
                     "causal_shift": r["causal_shift"], "lm": r["provenance"]["checkpoints"]["lm"],
                     "reporter_lm": r["provenance"].get("reporter_lm"), "seconds": r["seconds"]})
    return rows


def _depth_n(df: Any) -> int:
    """The depth sweep's training size (the largest present where a grid has no :data:`DEPTH_N`)."""
    return DEPTH_N if (df.n_train == DEPTH_N).any() else int(df.n_train.max())


def _depth_view(df: Any) -> Any:
    """The depth sweep: self-reports with LoRA of the top-variance neuron at the sweep's training size."""
    n = _depth_n(df)
    return df[(df.reporter == "self") & (df["mode"] == "lora") & (df.choice == "variance 1") & (df.n_train == n)]


def answer_rows(df: Any) -> list[dict[str, Any]]:
    """Per model size: the layers whose report beats chance (the 95% interval's lower end above 0.10), the
    deepest of them, the last layer's accuracy, and the share of the probe ceiling reached where it beats chance."""
    rows = []
    view = _depth_view(df)
    for size, g in view.groupby("size", sort=False):
        g = g.sort_values("depth")
        beats = g[g.accuracy_lo > CHANCE_ACC]
        last = g.iloc[-1]
        rows.append({"size": size, "lm": g.lm.iloc[0], "n_train": int(g.n_train.iloc[0]), "layers": len(g),
                     "beat_chance": len(beats),
                     "deepest_beating": beats.layer.iloc[-1] if len(beats) else "none",
                     "deepest_depth": float(beats.depth.iloc[-1]) if len(beats) else float("nan"),
                     "first_failing": (g[g.accuracy_lo <= CHANCE_ACC].layer.iloc[0]
                                       if (g.accuracy_lo <= CHANCE_ACC).any() else "none"),
                     "last_layer": last.layer, "last_accuracy": last.accuracy,
                     "last_ci": [last.accuracy_lo, last.accuracy_hi],
                     "best_accuracy": g.accuracy.max(), "best_layer": g.loc[g.accuracy.idxmax()].layer,
                     "probe_share_where_beating": float(beats.probe_share.mean()) if len(beats) else float("nan"),
                     **_control_summary(df[df["size"] == size])})
    return rows


def _control_summary(df: Any) -> dict[str, Any]:
    """Self-report against the control model reporting the same neurons (same layers, mode, training size):
    mean accuracies, and the layers where the self-report's interval lies wholly above the control's
    (evidence of privileged access) or wholly below it."""
    ctrl = df[df.reporter == "control"]
    if ctrl.empty:
        return {"control_points": 0}
    keys = ["layer", "neuron", "mode", "n_train"]
    both = ctrl.merge(df[df.reporter == "self"], on=keys, suffixes=("_control", "_self"))
    return {"control_points": len(both), "self_mean": float(both.accuracy_self.mean()),
            "control_mean": float(both.accuracy_control.mean()),
            "self_above_control": int((both.accuracy_lo_self > both.accuracy_hi_control).sum()),
            "self_below_control": int((both.accuracy_hi_self < both.accuracy_lo_control).sum())}


def write_tables(records: list[dict[str, Any]], out: str | Path) -> None:
    """``activations.md``, ``.csv``, ``.json`` (every point, and the answer per model size) and the plots
    ``accuracy_by_depth.png`` and ``accuracy_by_examples.png`` in ``out``."""
    import pandas as pd

    out = Path(out)
    df = pd.DataFrame(summary_rows(records))
    if df.empty:
        return
    answer = answer_rows(df)
    lms = ", ".join(f"{s} {h}" for s, h in df.groupby("size", sort=False).lm.first().items())
    if df.reporter_lm.notna().any():
        lms += ", control " + ", ".join(sorted(df.reporter_lm.dropna().unique()))
    head = (f"Activation reporting: exact-bin accuracy [95% CI] (chance {CHANCE_ACC:.2f}), mean absolute bin error "
            f"(chance {CHANCE_MAE}), probe ceiling, drift and causal shift per point; lamp LMs {lms}; "
            f"{N_TEST} held-out sentences.\n\n")
    ans = pd.DataFrame(answer)
    if not ans.empty:
        ans = ans.assign(last_ci=ans.last_ci.map(lambda c: f"[{c[0]:.3f}, {c[1]:.3f}]"))
        head += "Per model size (LoRA, top-variance neuron per layer):\n\n" + ans.round(3).to_markdown(index=False) + "\n\n"
    view = df.drop(columns=["lm", "reporter_lm"]).round(3)
    io.write_text(out / "activations.md", head + view.to_markdown(index=False) + "\n")
    io.write_text(out / "activations.csv", df.to_csv(index=False))
    io.write_json(out / "activations.json", {"rows": summary_rows(records), "answer": answer,
                                             "chance": {"accuracy": CHANCE_ACC, "mae": CHANCE_MAE},
                                             "n_test": N_TEST})
    plot_by_depth(df, out / "accuracy_by_depth.png")
    plot_by_examples(df, out / "accuracy_by_examples.png")


def _errorbar(ax: Any, g: Any, x: str, **kw: Any) -> None:
    g = g.sort_values(x)
    ax.errorbar(g[x], g.accuracy, yerr=[g.accuracy - g.accuracy_lo, g.accuracy_hi - g.accuracy], capsize=2, **kw)


def _save(fig: Any, path: Path, tight: bool = True) -> Path:
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    io.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path


def plot_by_depth(df: Any, path: Path) -> Path:
    """Accuracy against the neuron's depth, one panel per model size: the self-report (top-variance and random
    neurons, LoRA and full finetuning), the control model reporting the same neuron, the probe ceiling, chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = _depth_n(df)
    d = df[df.n_train == n]
    sizes = list(dict.fromkeys(d["size"]))
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.6), sharey=True, squeeze=False)
    styles = [("self", "lora", "variance", dict(marker="o", label="LoRA, top-variance neuron")),
              ("self", "lora", "random", dict(marker="s", ls="--", label="LoRA, random neuron")),
              ("self", "full", "variance", dict(marker="^", ls="-.", label="full finetuning")),
              ("control", "lora", "variance", dict(marker="x", ls=":", label="another model reports (control)"))]
    for ax, size in zip(axes[0], sizes, strict=True):
        g = d[d["size"] == size]
        for who, mode, choice, kw in styles:
            h = g[(g.reporter == who) & (g["mode"] == mode) & g.choice.str.startswith(choice)]
            if len(h):
                _errorbar(ax, h.groupby("depth", as_index=False).mean(numeric_only=True), "depth", **kw)
        top = g[(g.reporter == "self") & (g["mode"] == "lora") & (g.choice == "variance 1")]
        ceiling = top.groupby("depth").probe_ceiling.mean()
        ax.plot(ceiling.index, ceiling.values, "k--", lw=1, label="probe ceiling (final residual)")
        ax.axhline(CHANCE_ACC, color="grey", lw=0.8, label="chance")
        ax.set_title(f"{size} (n = {n})")
        ax.set_xlabel("depth of the neuron (blocks; 0 = embeddings)")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("exact-bin accuracy")
    legend: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=min(len(legend), 6), fontsize=7)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(fig, path, tight=False)


def plot_by_examples(df: Any, path: Path) -> Path:
    """Accuracy against the number of distinct training examples (same optimiser steps), one line per layer
    (self-reports, LoRA, top-variance neuron)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    d = df[(df.reporter == "self") & (df["mode"] == "lora") & (df.choice == "variance 1")]
    for (size, layer), g in d.groupby(["size", "layer"], sort=False):
        if g.n_train.nunique() > 1:
            _errorbar(ax, g, "n_train", marker="o", label=f"{size}: {layer.replace('transformer.', '')}")
    ax.axhline(CHANCE_ACC, color="grey", lw=0.8, label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("distinct training examples (same number of optimiser steps)")
    ax.set_ylabel("exact-bin accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    return _save(fig, path)
