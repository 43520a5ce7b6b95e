"""Activation reporting: can the lamp LM be finetuned to report one of its own neurons, and how many layers
down does it stop working?

**Examples.** A sentence of the lamp world ending in a full stop: ``<bos> caption <sep>`` and a world
description cut after one of its sentences (the cut drawn at random). The finetuned copy reads it, then a
query marker naming the neuron (``<report>``, a new token), and must answer with the neuron's bin
(``<bin1>`` ... ``<bin10>``, new tokens): the bin of the neuron's activation **in the frozen base model** at
the final full stop, among the deciles of its activations over a calibration corpus. The copy never labels
itself.

**Neurons.** Per layer (the embedding output ``transformer.drop``; each block's MLP neurons
``transformer.h.{i}.mlp.act`` and residual stream ``transformer.h.{i}``), by a fixed rule: the
highest-variance neurons at full stops over the calibration corpus, then neurons drawn at random (seeded).

**Finetuning.** LoRA (peft, on every ``Conv1D`` of the blocks, with the new tokens' embeddings trained too)
or full finetuning of a copy, the loss on the answer only, for ``epochs`` passes over ``n_train`` examples.

**Cross-model control** (privileged access or not, as in Binder et al. 2024): a second LM (``reporter``,
another seed) finetuned on the same labels, from the first model's neuron; if it reports as well, the
first model's report needs no access to its own internals. Drift and the causal check do not apply to it.

**Measures** on held-out sentences: exact-bin accuracy (with a 95% bootstrap interval over the sentences) and
mean absolute bin error (chance: 0.10 and 3.3);
the **probe ceiling**, a multinomial logistic regression from the base's final residual stream (after the
last layer norm) at the full stop to the bin, trained on the same examples; the **drift**, the share of
held-out sentences where the copy's own neuron falls in another bin than the base's; and the **causal
check**, the mean reported bin when the neuron is clamped at the full stop to its 95th percentile minus
when clamped to its 5th (positive: the report follows the neuron).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from editbench.core import UserError, capture, intervene, io
from editbench.core.stats import output_bootstrap
from editbench.tracks.text.train import encode_pairs
from editbench.world import World, WorldConfig
from editbench.world.descriptions import describe
from editbench.world.descriptions import sentences as split_sentences

CALIBRATION_SEED, TRAIN_SEED, TEST_SEED = 2**46 + 1, 2**46 + 2, 2**46 + 3
N_CALIBRATION, N_TEST = 2000, 400
BINS = 10
CHANCE_ACC, CHANCE_MAE = 1 / BINS, 3.3  # uniform guess; mean |i - j| for i, j uniform on 1..10 is 3.3


@dataclass(frozen=True)
class Point:
    """One finetuning run: report neuron ``neuron`` of hook point ``layer`` of model ``model`` (a checkpoint
    folder, or None for the shipped LM) from ``n_train`` examples with ``mode`` (``lora`` or ``full``)."""

    layer: str
    neuron: int
    n_train: int
    mode: str = "lora"
    model: str | None = None
    seed: int = 0
    epochs: int = 4
    lr: float = 1e-3
    batch_size: int = 32
    rank: int = 8
    choice: str = ""  # why this neuron: "variance k" or "random k"
    reporter: str | None = None  # the cross-model control: another LM's folder, finetuned to report this one's neuron

    def key(self, model_hash: str) -> str:
        payload = {**asdict(self), "model": model_hash, "version": 1}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def report_points(lm: nn.Module) -> list[str]:
    """The layers whose neurons can be reported, from the bottom: embeddings, then per block its MLP neurons
    and its residual stream."""
    out = ["transformer.drop"]
    for i in range(lm.config.n_layer):
        out += [f"transformer.h.{i}.mlp.act", f"transformer.h.{i}"]
    return out


def depth(layer: str) -> float:
    """A layer's depth in blocks: embeddings 0, block i's MLP neurons i + 0.5, its residual stream i + 1."""
    if layer == "transformer.drop":
        return 0.0
    i = int(layer.split(".")[2])
    return i + (0.5 if layer.endswith("mlp.act") else 1.0)


# ---- the sentences ------------------------------------------------------------------------------------------
@dataclass
class Sentences:
    """Teacher-forced sentences cut at a full stop: ids (B, T) right-padded, mask, and ``stop`` (B,) the
    index of each final full stop."""

    ids: Tensor
    mask: Tensor
    stop: Tensor


def sentences(lm: nn.Module, n: int, seed: int) -> Sentences:
    world = World(WorldConfig())
    scene = world.scenes(n, seed)
    captions, _ = world.captions(scene, seed)
    rng = random.Random(seed)
    cut = []
    for d in describe(scene):
        parts = split_sentences(d)
        cut.append(" ".join(parts[:rng.randint(1, len(parts))]))
    ids, mask, labels = encode_pairs(lm.tokenizer, captions, cut)
    # encode_pairs appends <eos>: drop it, so each sequence ends at its full stop
    lengths = mask.sum(1) - 1
    ids[torch.arange(n), lengths] = lm.tokenizer.pad_token_id
    mask[torch.arange(n), lengths] = 0
    return Sentences(ids, mask, lengths - 1)


@torch.no_grad()
def activations_at_stop(lm: nn.Module, layer: str, s: Sentences, batch_size: int = 256) -> Tensor:
    """(B, units) the layer's output at each sentence's final full stop."""
    outs = []
    for i in range(0, len(s.ids), batch_size):
        with capture(lm, [layer]) as acts:
            lm(input_ids=s.ids[i:i + batch_size], attention_mask=s.mask[i:i + batch_size])
        a = acts[layer].float()
        outs.append(a[torch.arange(len(a)), s.stop[i:i + batch_size]])
    return torch.cat(outs)


_CALIBRATION: dict[tuple[str, str], Tensor] = {}


def calibration(lm: nn.Module, layer: str) -> Tensor:
    """(N_CALIBRATION, units): the layer at the full stops of the calibration corpus (kept per model and layer)."""
    from editbench.methods._text import model_hash

    key = (model_hash(lm), layer)
    if key not in _CALIBRATION:
        _CALIBRATION[key] = activations_at_stop(lm, layer, sentences(lm, N_CALIBRATION, CALIBRATION_SEED))
    return _CALIBRATION[key]


def choose_neurons(lm: nn.Module, layer: str, k_variance: int, k_random: int, seed: int) -> list[tuple[int, str]]:
    """The documented rule: the ``k_variance`` highest-variance neurons at full stops over the calibration
    corpus, then ``k_random`` others drawn at random from ``seed``."""
    acts = calibration(lm, layer)
    order = acts.var(0).argsort(descending=True).tolist()
    chosen = [(u, f"variance {i + 1}") for i, u in enumerate(order[:k_variance])]
    rest = order[k_variance:]
    g = random.Random(seed)
    chosen += [(u, f"random {i + 1}") for i, u in enumerate(g.sample(rest, min(k_random, len(rest))))]
    return chosen


def edges(values: Tensor) -> Tensor:
    """The 9 inner decile edges of a neuron's calibration values."""
    return torch.quantile(values.double(), torch.linspace(0, 1, BINS + 1, dtype=torch.float64)[1:-1]).float()


def to_bins(values: Tensor, e: Tensor) -> Tensor:
    """Bins 0..9 (reported as 1..10)."""
    return torch.bucketize(values.contiguous(), e, right=True)


# ---- the finetuned reporter ----------------------------------------------------------------------------------
def with_report_tokens(lm: nn.Module) -> tuple[nn.Module, int, list[int]]:
    """A copy of the LM with ``<report>`` and ``<bin1>``..``<bin10>`` appended to its vocabulary (embeddings
    initialised at the mean embedding); returns (copy, report id, bin ids)."""
    work = copy.deepcopy(lm)
    V = work.get_input_embeddings().weight.shape[0]
    work.resize_token_embeddings(V + 1 + BINS, mean_resizing=False)
    with torch.no_grad():
        emb = work.get_input_embeddings().weight
        emb[V:] = emb[:V].mean(0)
    return work, V, list(range(V + 1, V + 1 + BINS))


def _batch(s: Sentences, idx: Tensor, report: int) -> tuple[Tensor, Tensor, Tensor]:
    """Sentences ``idx`` followed by ``<report>``: ids, mask and the report position."""
    ids, mask = s.ids[idx].clone(), s.mask[idx].clone()
    pos = s.stop[idx] + 1
    ids = torch.cat([ids, torch.zeros_like(ids[:, :1])], 1)
    mask = torch.cat([mask, torch.zeros_like(mask[:, :1])], 1)
    ids[torch.arange(len(idx)), pos] = report
    mask[torch.arange(len(idx)), pos] = 1
    return ids, mask, pos


def train_reporter(lm: nn.Module, p: Point, s: Sentences, bins: Tensor) -> tuple[nn.Module, int, list[int]]:
    """A copy of ``lm`` finetuned to answer ``<report>`` with the bin of each of the sentences ``s``."""
    from peft import LoraConfig, inject_adapter_in_model

    from editbench.tracks.text.model import CONV1D_MODULES

    torch.manual_seed(p.seed)
    work, report, bin_ids = with_report_tokens(lm)
    new = torch.zeros(work.get_input_embeddings().weight.shape[0], 1)
    new[report:] = 1.0
    if p.mode == "full":
        work.requires_grad_(True)
        params = list(work.parameters())
    elif p.mode == "lora":
        work.requires_grad_(False)
        work = inject_adapter_in_model(LoraConfig(r=p.rank, lora_alpha=2 * p.rank, target_modules=CONV1D_MODULES,
                                                  lora_dropout=0.0, fan_in_fan_out=True), work)
        emb = work.get_input_embeddings().weight
        emb.requires_grad_(True)
        emb.register_hook(lambda g: g * new.to(g.dtype))  # only the new tokens' embeddings train
        params = [q for n, q in work.named_parameters() if "lora_" in n] + [emb]
        for q in params:
            q.requires_grad_(True)
    else:
        raise UserError(f"mode must be 'lora' or 'full', got {p.mode!r}")
    opt = torch.optim.AdamW(params, lr=p.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(p.seed)
    n = len(s.ids)
    steps = max(1, math.ceil(p.epochs * n / p.batch_size))
    target = torch.tensor(bin_ids)[bins]
    work.train()
    for _ in range(steps):
        idx = torch.randint(n, (min(p.batch_size, n),), generator=g)
        ids, mask, pos = _batch(s, idx, report)
        logits = work(input_ids=ids, attention_mask=mask).logits[torch.arange(len(idx)), pos].float()
        loss = nn.functional.cross_entropy(logits, target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    work.eval()
    return work, report, bin_ids


@torch.no_grad()
def reported_bins(model: nn.Module, s: Sentences, report: int, bin_ids: list[int], hooks: dict | None = None,
                  batch_size: int = 256) -> Tensor:
    """The bin (0..9) the reporter answers for each sentence (the likeliest of the ten bin tokens)."""
    out = []
    for i in range(0, len(s.ids), batch_size):
        idx = torch.arange(i, min(i + batch_size, len(s.ids)))
        ids, mask, pos = _batch(s, idx, report)
        with intervene(model, hooks or {}):
            logits = model(input_ids=ids, attention_mask=mask).logits[torch.arange(len(idx)), pos]
        out.append(logits[:, bin_ids].argmax(-1))
    return torch.cat(out)


def probe_ceiling(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, steps: int = 300) -> float:
    """Held-out exact-bin accuracy of a multinomial logistic regression (standardised features, full-batch
    Adam, a little L2): what is linearly readable in ``x``."""
    mu, sd = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    a, b = (train_x - mu) / sd, (test_x - mu) / sd
    w = torch.zeros(a.shape[1], BINS, requires_grad=True)
    c = torch.zeros(BINS, requires_grad=True)
    opt = torch.optim.Adam([w, c], lr=0.05)
    with torch.enable_grad():
        for _ in range(steps):
            loss = nn.functional.cross_entropy(a @ w + c, train_y) + 1e-3 * (w ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float(((b @ w + c).argmax(-1) == test_y).float().mean())


def _final_residual(lm: nn.Module, s: Sentences) -> Tensor:
    return activations_at_stop(lm, "transformer.ln_f", s)


def run_point(lm: nn.Module, p: Point, reporter_base: nn.Module | None = None) -> dict[str, Any]:
    """Finetune a reporter for one point and measure it (see the module docstring). ``reporter_base``: the
    control's LM (``p.reporter`` names its folder); the labels always come from ``lm``."""
    t0 = time.perf_counter()
    control = reporter_base is not None
    calib = calibration(lm, p.layer)[:, p.neuron]
    e = edges(calib)
    train = sentences(lm, p.n_train, TRAIN_SEED + p.seed)
    test = sentences(lm, N_TEST, TEST_SEED)
    y_train = to_bins(activations_at_stop(lm, p.layer, train)[:, p.neuron], e)
    y_test = to_bins(activations_at_stop(lm, p.layer, test)[:, p.neuron], e)
    reporter, report, bin_ids = train_reporter(reporter_base if control else lm, p, train, y_train)
    pred = reported_bins(reporter, test, report, bin_ids)
    err = (pred - y_test).abs().float()
    drift = shift = None
    if not control:
        # drift: the reporter's own neuron, read at the same sentences
        own = to_bins(activations_at_stop(reporter, p.layer, test)[:, p.neuron], e)
        drift = float((own != y_test).float().mean())
        # causal check: clamp the neuron at the full stop to its 5th and 95th calibration percentiles
        lo, hi = torch.quantile(calib.double(), torch.tensor([0.05, 0.95], dtype=torch.float64)).float().tolist()

        def clamp(value: float):
            def fn(out: Tensor) -> Tensor:  # the whole test set in one batch: row r's full stop is test.stop[r]
                out = out.clone()
                out[torch.arange(len(out)), test.stop, p.neuron] = value
                return out
            return fn

        def mean_report(value: float) -> float:
            return float(reported_bins(reporter, test, report, bin_ids, {p.layer: clamp(value)}, len(test.ids))
                         .float().mean())
        shift = mean_report(hi) - mean_report(lo)
    reader = reporter_base if control else lm
    ceiling = probe_ceiling(_final_residual(reader, train), y_train, _final_residual(reader, test), y_test)
    accuracy, lo, hi = output_bootstrap({"accuracy": (err == 0).double()}, n_boot=1000, seed=p.seed)
    return {"point": asdict(p), "depth": depth(p.layer), "accuracy": accuracy, "accuracy_ci": [lo, hi],
            "mae": float(err.mean()), "probe_ceiling": ceiling, "drift": drift, "causal_shift": shift,
            "label_share": [float((y_test == k).float().mean()) for k in range(BINS)],
            "seconds": time.perf_counter() - t0}


# ---- the grid ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    layers: tuple[str, ...] | None  # None: every report point of the model
    n_train: tuple[int, ...]
    modes: tuple[str, ...]
    k_variance: int
    k_random: int
    seeds: tuple[int, ...] = (0,)
    control: str | None = None  # the cross-model control's LM folder: every point is also run with it as reporter


GRIDS = {
    "quick": Grid(("transformer.h.0", "transformer.h.3.mlp.act"), (512,), ("lora",), 1, 0),
    "default": Grid(None, (256, 1024, 4096), ("lora", "full"), 1, 1),
}


def grid_points(lm: nn.Module, grid: Grid) -> list[Point]:
    points = []
    for layer in grid.layers or tuple(report_points(lm)):
        for neuron, why in choose_neurons(lm, layer, grid.k_variance, grid.k_random, seed=0):
            for reporter in (None, grid.control) if grid.control else (None,):
                points += [Point(layer, neuron, n, mode, seed=s, choice=why, reporter=reporter) for n in grid.n_train
                           for mode in grid.modes for s in grid.seeds]
    return points


def run_grid(out: str | Path, grid: Grid, lm_path: str | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Run every point not already in ``out`` (one JSON file each, written atomically: an interrupted run
    resumes), then write the tables and the plot; returns the records."""
    from tqdm.auto import tqdm

    from editbench.tracks.text.checkpoints import lm_hash, load_lm

    out = Path(out)
    lm = load_lm(lm_path)
    h = lm_hash(lm_path)
    io.clean_stale(out)
    records = []
    points = grid_points(lm, grid)
    control = load_lm(grid.control) if grid.control else None
    for p in tqdm(points, desc="activation reporting", disable=not progress):
        path = out / "points" / f"{p.key(h)}.json"
        if path.exists():
            records.append(json.loads(path.read_text()))
            continue
        rec = {**run_point(lm, p, control if p.reporter else None), "lm": h,
               "reporter_lm": lm_hash(p.reporter) if p.reporter else h}
        io.write_json(path, rec)
        records.append(rec)
    write_tables(records, out)
    return records


def summary_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(records, key=lambda r: (r["depth"], r["point"]["n_train"], r["point"]["mode"], r["point"]["neuron"],
                                            bool(r["point"].get("reporter")))):
        p = r["point"]
        rows.append({"layer": p["layer"], "depth": r["depth"], "neuron": p["neuron"], "choice": p["choice"],
                     "reporter": "control" if p.get("reporter") else "self", "mode": p["mode"], "n_train": p["n_train"],
                     "accuracy": r["accuracy"], "accuracy_lo": r["accuracy_ci"][0], "accuracy_hi": r["accuracy_ci"][1],
                     "mae": r["mae"],
                     "probe_ceiling": r["probe_ceiling"], "probe_share": r["accuracy"] / max(r["probe_ceiling"], 1e-9),
                     "drift": r["drift"], "causal_shift": r["causal_shift"], "lm": r["lm"], "seconds": r["seconds"]})
    return rows


def write_tables(records: list[dict[str, Any]], out: str | Path) -> None:
    """``activations.md``, ``.csv``, ``.json`` and ``accuracy_by_depth.png`` in ``out``."""
    import pandas as pd

    out = Path(out)
    df = pd.DataFrame(summary_rows(records))
    if df.empty:
        return
    head = (f"Activation reporting: exact-bin accuracy (chance {CHANCE_ACC:.2f}), mean absolute bin error (chance "
            f"{CHANCE_MAE}), probe ceiling, drift and causal shift per point; lamp LM {', '.join(sorted(df.lm.unique()))}; "
            f"{N_TEST} held-out sentences.\n\n")
    view = df.drop(columns=["lm"]).round(3)
    io.write_text(out / "activations.md", head + view.to_markdown(index=False) + "\n")
    io.write_text(out / "activations.csv", df.to_csv(index=False))
    io.write_json(out / "activations.json", {"rows": summary_rows(records), "chance": {"accuracy": CHANCE_ACC,
                                                                                      "mae": CHANCE_MAE}})
    plot_by_depth(df, out / "accuracy_by_depth.png")


def plot_by_depth(df: Any, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (who, mode, n), g in df.groupby(["reporter", "mode", "n_train"]):
        m = g.groupby("depth").accuracy.mean()
        ax.plot(m.index, m.values, marker="o" if who == "self" else "x", ls="-" if who == "self" else ":",
                label=f"{mode}, n = {n}" + (" (another model reports)" if who == "control" else ""))
    ceiling = df[df.reporter == "self"].groupby("depth").probe_ceiling.mean()
    ax.plot(ceiling.index, ceiling.values, "k--", label="probe ceiling")
    ax.axhline(CHANCE_ACC, color="grey", lw=0.8, label="chance")
    ax.set_xlabel("depth of the neuron (blocks; 0 = embeddings)")
    ax.set_ylabel("exact-bin accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.tight_layout()
    io.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path
