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
or full finetuning of a copy, the loss on the answer only, for a fixed number of optimiser steps over
``n_train`` distinct examples (so the training-examples axis varies the data, not the compute).

**Models.** The lamp LM family: ``small`` (4 blocks, width 80), ``base`` (the shipped LM: 4 blocks, width
128) and ``large`` (6 blocks, width 160), and ``control`` (the base's architecture, another seed), each
trained by ``editbench train lm`` with a fixed seed and shipped under ``assets/text/experiments``.

**Grid.** Points run as jobs on the harness's executors (``inline``, ``process``), one result file each
with its provenance, resumable like the suites' cells.

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
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from editbench.core import UserError, capture, intervene, io, one_thread, seeds
from editbench.core.stats import output_bootstrap
from editbench.tracks.text.train import encode_pairs
from editbench.world import World, WorldConfig
from editbench.world.descriptions import describe
from editbench.world.descriptions import sentences as split_sentences

if TYPE_CHECKING:
    from editbench.harness import ExecutorSpec

CALIBRATION_SEED, TRAIN_SEED, TEST_SEED = (seeds.ACTIVATIONS[k] for k in ("calibration", "train", "test"))
N_CALIBRATION, N_TEST = 2000, 400
BINS = 10
CHANCE_ACC, CHANCE_MAE = 1 / BINS, 3.3  # uniform guess; mean |i - j| for i, j uniform on 1..10 is 3.3


@dataclass(frozen=True)
class Point:
    """One finetuning run, and a job the harness's executors run: report neuron ``neuron`` of hook point
    ``layer`` of model ``model`` (an LM folder, or None for the shipped LM) from ``n_train`` distinct
    examples with ``mode`` (``lora`` or ``full``), ``steps`` optimiser steps of ``batch_size`` examples (the
    same compute at every ``n_train``: more examples, fewer passes over each)."""

    layer: str
    neuron: int
    n_train: int
    mode: str = "lora"
    model: str | None = None
    seed: int = 0
    steps: int = 256
    lr: float = 1e-3
    batch_size: int = 32
    rank: int = 8
    choice: str = ""  # why this neuron: "variance k" or "random k"
    reporter: str | None = None  # the cross-model control: another LM's folder, finetuned to report this one's neuron
    size: str = ""  # the model's name in the grid (small, base, large): a label, not part of the key

    def key(self, model_hash: str, reporter_hash: str | None = None) -> str:
        from editbench import __version__

        payload = {**asdict(self), "model": model_hash, "reporter": reporter_hash, "size": None, "version": 3,
                   "package": __version__}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def filename(self, model_hash: str, reporter_hash: str | None = None) -> str:
        who = "control" if self.reporter else "self"
        layer = self.layer.replace("transformer.", "")
        return (f"points/{model_hash[:12]}/{layer}/{who}-{self.mode}-n{self.n_train}-u{self.neuron}-s{self.seed}-"
                f"{self.key(model_hash, reporter_hash)}.json")

    # the harness's job interface (editbench.harness.Job): run in any executor, result written atomically
    def execute(self, path: str, key: str, prov: dict[str, Any], sessions: Any) -> str:
        from editbench.harness.cell import error_line
        from editbench.results import write_result
        from editbench.tracks.text.checkpoints import load_lm

        start = time.perf_counter()
        try:
            with one_thread():
                session = sessions.get("text", {"lm": self.model})
                lm = session.models["lm"]
                base = session.memo(("reporter", self.reporter), lambda: load_lm(self.reporter)) if self.reporter else None
                rec = {"status": "ok", "key": key, **run_point(lm, self, base, memo=session.memo), "provenance": prov}
        except Exception as e:  # noqa: BLE001 - a failed point is recorded, the grid goes on
            rec = self.failed_record(key, error_line(e), prov, time.perf_counter() - start)
        write_result(path, rec)
        return rec["status"]

    def failed_record(self, key: str, error: str, prov: dict[str, Any], total_s: float) -> dict[str, Any]:
        return {"status": "failed", "key": key, "point": asdict(self), "error": error, "seconds": total_s,
                "provenance": prov}


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
def stop_activations(lm: nn.Module, layers: list[str] | tuple[str, ...], s: Sentences, batch_size: int = 128
                     ) -> dict[str, Tensor]:
    """{layer: (B, units)}: each layer's output at each sentence's final full stop, from one forward pass per
    batch (each batch cut to its longest sentence)."""
    outs: dict[str, list[Tensor]] = {layer: [] for layer in layers}
    for i in range(0, len(s.ids), batch_size):
        stop = s.stop[i:i + batch_size]
        width = int(stop.max()) + 1
        with capture(lm, list(layers)) as acts:
            lm(input_ids=s.ids[i:i + batch_size, :width], attention_mask=s.mask[i:i + batch_size, :width])
        for layer in layers:
            a = acts[layer].float()
            outs[layer].append(a[torch.arange(len(a)), stop])
    return {layer: torch.cat(v) for layer, v in outs.items()}


def activations_at_stop(lm: nn.Module, layer: str, s: Sentences) -> Tensor:
    """(B, units) the layer's output at each sentence's final full stop."""
    return stop_activations(lm, [layer], s)[layer]


def _all_layers(lm: nn.Module, layer: str | None = None) -> tuple[str, ...]:
    """Every report point and the final layer norm (and ``layer``, if it is another hook point)."""
    points = (*report_points(lm), "transformer.ln_f")
    return points if layer is None or layer in points else (*points, layer)


def _memo() -> Any:
    """A memo like a session's (``memo(key, compute)``) for calls outside the harness."""
    cache: dict[Any, Any] = {}

    def memo(key: Any, compute: Any) -> Any:
        if key not in cache:
            cache[key] = compute()
        return cache[key]
    return memo


def calibration(lm: nn.Module, layer: str, memo: Any = None) -> Tensor:
    """(N_CALIBRATION, units): the layer at the full stops of the calibration corpus."""
    from editbench.tracks.text.key_moments import model_hash

    memo = memo or _memo()
    s = memo(("sentences", N_CALIBRATION, CALIBRATION_SEED), lambda: sentences(lm, N_CALIBRATION, CALIBRATION_SEED))
    layers = _all_layers(lm, layer)
    return memo(("calibration", model_hash(lm), layers), lambda: stop_activations(lm, layers, s))[layer]


def choose_neurons(lm: nn.Module, layer: str, k_variance: int, k_random: int, seed: int, memo: Any = None
                   ) -> list[tuple[int, str]]:
    """The documented rule: the ``k_variance`` highest-variance neurons at full stops over the calibration
    corpus, then ``k_random`` others drawn at random from ``seed``."""
    acts = calibration(lm, layer, memo)
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
    """Sentences ``idx`` followed by ``<report>`` (cut to the longest of them): ids, mask and the report position."""
    pos = s.stop[idx] + 1
    width = int(pos.max())
    ids, mask = s.ids[idx, :width].clone(), s.mask[idx, :width].clone()
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
    target = torch.tensor(bin_ids)[bins]
    work.train()
    for _ in range(p.steps):
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


def run_point(lm: nn.Module, p: Point, reporter_base: nn.Module | None = None, memo: Any = None) -> dict[str, Any]:
    """Finetune a reporter for one point and measure it (see the module docstring). ``reporter_base``: the
    control's LM (``p.reporter`` names its folder); the labels always come from ``lm``. ``memo``: a session's
    cache (sentences, the base's activations) shared by the points a worker runs."""
    from editbench.tracks.text.key_moments import model_hash

    t0 = time.perf_counter()
    control = reporter_base is not None
    memo = memo or _memo()
    calib = calibration(lm, p.layer, memo)[:, p.neuron]
    e = edges(calib)
    train = memo(("sentences", p.n_train, TRAIN_SEED + p.seed), lambda: sentences(lm, p.n_train, TRAIN_SEED + p.seed))
    test = memo(("sentences", N_TEST, TEST_SEED), lambda: sentences(lm, N_TEST, TEST_SEED))

    def acts(model: nn.Module, which: Any, s: Sentences) -> dict[str, Tensor]:  # every layer, once per model and set
        layers = _all_layers(model, p.layer)
        return memo(("acts", model_hash(model), layers, which), lambda: stop_activations(model, layers, s))

    y_train = to_bins(acts(lm, (p.n_train, p.seed), train)[p.layer][:, p.neuron], e)
    y_test = to_bins(acts(lm, "test", test)[p.layer][:, p.neuron], e)
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
    ceiling = probe_ceiling(acts(reader, (p.n_train, p.seed), train)["transformer.ln_f"], y_train,
                            acts(reader, "test", test)["transformer.ln_f"], y_test)
    accuracy, lo, hi = output_bootstrap({"accuracy": (err == 0).double()}, n_boot=1000, seed=p.seed)
    return {"point": asdict(p), "depth": depth(p.layer), "accuracy": accuracy, "accuracy_ci": [lo, hi],
            "mae": float(err.mean()), "probe_ceiling": ceiling, "drift": drift, "causal_shift": shift,
            "label_share": [float((y_test == k).float().mean()) for k in range(BINS)],
            "seconds": time.perf_counter() - t0}


# ---- the grid ------------------------------------------------------------------------------------------------
EXPERIMENT_ASSETS = Path(__file__).resolve().parents[1] / "assets" / "text" / "experiments"
SIZES = ("small", "base", "large")  # the lamp LM family, smallest first ("base" is the shipped LM)
MODELS: dict[str, str | None] = {"small": str(EXPERIMENT_ASSETS / "small" / "lm"), "base": None,
                                 "large": str(EXPERIMENT_ASSETS / "large" / "lm"),
                                 "control": str(EXPERIMENT_ASSETS / "control" / "lm")}


@dataclass(frozen=True)
class Part:
    """A block of the grid: ``models`` (names in :data:`MODELS`), their ``layers`` (None: every report
    point), neurons by the rule of :func:`choose_neurons`, training sizes and modes; ``control``: the points
    are also run with the control model reporting the first model's neuron."""

    name: str
    models: tuple[str, ...]
    layers: tuple[str, ...] | None
    n_train: tuple[int, ...]
    modes: tuple[str, ...] = ("lora",)
    k_variance: int = 1
    k_random: int = 0
    control: bool = False


@dataclass(frozen=True)
class Grid:
    parts: tuple[Part, ...]
    steps: int = 256  # optimiser steps of 32 examples per point
    seeds: tuple[int, ...] = (0,)

    def only(self, names: tuple[str, ...] | list[str]) -> Grid:
        """The grid restricted to the models ``names`` (a control part keeps its control points only where
        ``control`` is among them)."""
        from dataclasses import replace

        parts = []
        for p in self.parts:
            models = tuple(m for m in p.models if m in names)
            if models:
                parts.append(replace(p, models=models, control=p.control and "control" in names))
        return replace(self, parts=tuple(parts))


DEPTH_N = 4096  # the training size of the depth sweep
GRIDS = {
    "quick": Grid((Part("depth", ("base",), ("transformer.h.0", "transformer.h.3.mlp.act"), (512,)),), steps=64),
    "default": Grid((
        Part("depth", SIZES, None, (DEPTH_N,)),  # every layer of every size, the top-variance neuron
        Part("random neurons", ("base",), ("transformer.drop", "transformer.h.0.mlp.act", "transformer.h.1",
                                           "transformer.h.2.mlp.act", "transformer.h.3"), (DEPTH_N,), k_random=1),
        Part("control", ("base",), None, (DEPTH_N,), control=True),  # another model reports the base's neuron
        Part("full finetuning", ("base",), ("transformer.drop", "transformer.h.1", "transformer.h.3"), (DEPTH_N,),
             modes=("full",)),
        Part("training examples", ("base",), ("transformer.h.0", "transformer.h.2", "transformer.h.3"), (256, 1024)),
    )),
}


def grid_points(grid: Grid, lms: dict[str, nn.Module], folders: dict[str, str | None]) -> list[Point]:
    """Every point of the grid, once (parts may overlap), in grid order. ``lms``: the loaded models by name
    (to choose their neurons), ``folders``: their folders (None: the shipped LM)."""
    points: dict[Point, None] = {}
    memo = _memo()
    for part in grid.parts:
        for name in part.models:
            lm = lms[name]
            for layer in part.layers or tuple(report_points(lm)):
                for neuron, why in choose_neurons(lm, layer, part.k_variance, part.k_random, seed=0, memo=memo):
                    for reporter in ((None, folders["control"]) if part.control else (None,)):
                        for n in part.n_train:
                            for mode in part.modes:
                                for s in grid.seeds:
                                    points[Point(layer, neuron, n, mode, folders[name], s, grid.steps, choice=why,
                                                 reporter=reporter, size=name)] = None
    return list(points)


def run_grid(out: str | Path, grid: Grid, models: dict[str, str | None] | None = None, executor: str | ExecutorSpec = "process",
             workers: int = 2, timeout_s: float | None = 1800, progress: bool = True) -> dict[str, Any]:
    """Run every point of ``grid`` not already in ``out`` on one of the harness's executors (one result file
    per point, written atomically: an interrupted run resumes, a failed point is recorded and redone next
    time), then write the tables and plots. ``models`` overrides :data:`MODELS` by name. Returns the records
    (ok points), the failed ones and the wall time."""
    from editbench.harness import is_done, run_jobs
    from editbench.results import provenance
    from editbench.tracks import get_track
    from editbench.tracks.text.checkpoints import lm_hash, load_lm

    out = Path(out)
    folders = {**MODELS, **(models or {})}
    names = sorted({m for part in grid.parts for m in part.models}, key=lambda m: (m not in SIZES, m))
    if any(part.control for part in grid.parts):
        names.append("control")
    unknown = [n for n in names if n not in folders]
    if unknown:
        raise UserError(f"unknown model {unknown[0]!r}; known: {', '.join(folders)}")
    lms = {n: load_lm(folders[n]) for n in names}
    hashes = {folders[n]: lm_hash(folders[n]) for n in names}
    provs: dict[str | None, dict[str, Any]] = {}
    io.clean_stale(out)
    todo, paths = [], []
    for p in grid_points(grid, lms, folders):
        if p.model not in provs:
            provs[p.model] = provenance(get_track("text"), {"lm": p.model})
        rh = hashes[p.reporter] if p.reporter else None
        prov = {**provs[p.model], "reporter_lm": rh}
        path = out / p.filename(hashes[p.model], rh)
        paths.append(path)
        if not is_done(path):
            todo.append((p, path, p.key(hashes[p.model], rh), prov))
    del lms
    todo.sort(key=lambda job: names.index(job[0].size))  # one model at a time: a worker loads each model once
    status, wall = run_jobs(todo, executor, workers, timeout_s, progress, desc="activation reporting")
    records, failed = [], []
    for path in paths:
        rec = json.loads(path.read_text())
        (records if rec["status"] == "ok" else failed).append(rec)
    write_tables(records, out)
    return {"records": records, "failed": failed, "ran": len(todo), "wall_s": wall, "status": status}


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
