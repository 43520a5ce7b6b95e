"""The reporter: a copy of the LM with ``<report>`` and bin tokens, finetuned (LoRA or full) to answer with a
neuron's bin, and one point of the study measured (accuracy, probe ceiling, drift, the causal check)."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from editbench.core import UserError, intervene
from editbench.core.stats import output_bootstrap

from .data import (
    BINS,
    N_TEST,
    TEST_SEED,
    TRAIN_SEED,
    Sentences,
    _all_layers,
    _memo,
    activations_at_stop,
    calibration,
    depth,
    edges,
    sentences,
    stop_activations,
    to_bins,
)

if TYPE_CHECKING:

    from .grid import Point


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
    from editbench.baselines._lora import inject_lora
    from editbench.tracks.text.model import CONV1D_MODULES

    torch.manual_seed(p.seed)
    work, report, bin_ids = with_report_tokens(lm)
    new = torch.zeros(work.get_input_embeddings().weight.shape[0], 1)
    new[report:] = 1.0
    if p.mode == "full":
        work.requires_grad_(True)
        params = list(work.parameters())
    elif p.mode == "lora":
        work, adapters = inject_lora(work, p.rank, 2 * p.rank, CONV1D_MODULES)
        emb = work.get_input_embeddings().weight
        emb.requires_grad_(True)
        emb.register_hook(lambda g: g * new.to(g.dtype))  # only the new tokens' embeddings train
        params = adapters + [emb]
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
