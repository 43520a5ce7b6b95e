"""iti: Inference-Time Intervention (Li et al. 2023) on the lamp LM's attention heads.

Fit: every head's output (``transformer.h.{i}.attn.c_proj.heads``: n_head x head_dim units, before the
output projection) at the stated positions of the evidence samples (the lamp's kind word after its state
word, each lamp sentence read as sampled and with its state flipped: :func:`editbench.tracks.text.positions.stated`), labelled by
the state the text states, as honest_llama reads heads after an answer whose truth is known (at the
decision position the label would be what the LM happened to sample). A linear probe (logistic
regression) per head is scored by its held-out accuracy, cross-validated over ``folds`` folds of the
samples (a single split of a few samples ranks heads by noise); the ``k`` best heads are kept. Each kept
head's direction is its mass-mean shift (mean over unlit statements minus mean over lit ones, normalised)
and ``sigma`` the standard deviation of its activations along it. Apply: ``head += alpha * sigma *
direction`` at the newest position of every forward pass (the prompt's last token, then each generated
token), as Li et al. do. Li et al. shift 48 of LLaMA-7B's 1,024 heads by 15 standard deviations; this LM has
16 heads, and on the dev split of seeds never scored (``docs/editors.md``) the best is 4 heads at 2 standard
deviations (dev primary 0.56 on ``text/unlit_lamps``; at 4 standard deviations every k in 1-16 breaks the
descriptions), so those are the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from editbench.core import Budget, Cost, Edit, Evidence, LogFloat, LogInt, Method, MethodConfig
from editbench.tracks.text.positions import activations_at, stated, unit_direction
from editbench.world.requests import EditRequest


@dataclass
class ItiConfig(MethodConfig):
    k: int = 4
    alpha: float = 2.0
    folds: int = 4
    probe_steps: int = 300
    probe_l2: float = 1e-2


def probe_accuracy(x: torch.Tensor, y: torch.Tensor, train: torch.Tensor, c: ItiConfig) -> torch.Tensor:
    """Held-out accuracy of a logistic-regression probe per head: ``x`` (heads, N, dims), ``y`` (N,) bool,
    ``train`` (N,) bool; features standardised on the training part; full-batch Adam from zeros (the same
    floats on every run)."""
    xt = x[:, train]
    mu, sd = xt.mean(1, keepdim=True), xt.std(1, keepdim=True).clamp_min(1e-6)
    z = (x - mu) / sd
    w = torch.zeros(x.shape[0], x.shape[2], requires_grad=True)
    b = torch.zeros(x.shape[0], 1, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    target = y[train].float().expand(x.shape[0], -1)
    with torch.enable_grad():
        for _ in range(c.probe_steps):
            logits = torch.einsum("hnd,hd->hn", z[:, train], w) + b
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target) + c.probe_l2 * (w ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    held = ~train if (~train).any() else train
    with torch.no_grad():
        pred = (torch.einsum("hnd,hd->hn", z[:, held], w) + b) > 0
    return (pred == y[held]).float().mean(1)


class Iti(Method):
    name = "iti"
    family = "edit"
    tracks = ("text",)
    consumes = "samples"
    Config = ItiConfig
    # k: of the 16 heads (all of them: a limit, not an edge); alpha: standard deviations
    search_space = {"k": LogInt(1, 16, hard="hi"), "alpha": LogFloat(0.1, 32.0)}

    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        d = stated(model, evidence)
        n_layer, n_head = model.config.n_layer, model.config.n_head
        dim = model.config.n_embd // n_head
        points = [f"transformer.h.{i}.attn.c_proj.heads" for i in range(n_layer)]
        acts = activations_at(model, points, d)
        x = torch.stack([acts[p].reshape(-1, n_head, dim).transpose(0, 1) for p in points]).reshape(-1, len(d.lit), dim)
        g = torch.Generator().manual_seed(budget.seed)
        samples = torch.arange(len(d.lit) // 2)  # a lamp sentence's two readings stay in one fold
        order = samples[torch.randperm(len(samples), generator=g)]
        folds = [order[i::max(1, c.folds)] for i in range(min(max(1, c.folds), len(order)))]
        pair = d.rows // 2
        accuracy = torch.stack([probe_accuracy(x, d.lit, ~torch.isin(pair, fold), c) for fold in folds]).mean(0)
        top = accuracy.topk(min(c.k, len(accuracy))).indices
        tensors, hooks, heads = {}, {}, []
        for h in sorted(top.tolist()):
            layer, head = divmod(h, n_head)
            unit, sigma, _ = unit_direction(x[h], d.lit)
            point = points[layer]
            key = f"direction.{point}"
            if key not in tensors:
                tensors[key] = torch.zeros(model.config.n_embd)
                hooks[point] = {"op": "add", "direction": key, "strength": c.alpha, "positions": "last"}
            tensors[key][head * dim:(head + 1) * dim] = sigma * unit
            heads.append({"layer": layer, "head": head, "accuracy": round(float(accuracy[h]), 3),
                          "sigma": round(float(sigma), 4)})
        n_lit, n_unlit = d.classes()
        return Edit(self.name, c.as_dict(), tensors=tensors, hooks=hooks,
                    cost=Cost(params_changed=0, examples_used=evidence.n, forward=len(d.ids)),
                    meta={"heads": heads, "n_lit": n_lit, "n_unlit": n_unlit,
                          "accuracy": [round(float(a), 3) for a in accuracy]})


METHOD = Iti
