"""prompt: caption search within the budget (the prompt engineering of the story).

Candidates rewrite the lamp clause of the task's own caption and keep the room it asks for (walls,
window, time of day), see :func:`editbench.world.captions.rewrite_lamp_clause`. They say what the request
asks (:func:`candidates`): every lamp unlit, or for a request for the leftmost (rightmost) lamp, an unlit lamp
on that side and the others lit. Each candidate is scored with evaluator calls on ``samples`` samples (as many as
the calls allow; searched up to all of them): the edited evidence captions, in turn with fresh noise, are
sampled and read by the meter; the score is the share of images granted the request (for every lamp: lamps
present and none lit; for some lamps, each image read beside the original caption's with the same noise, two
calls: the original's lamps, the targeted ones unlit and the others as they were), less a small term for the
targeted lamps' light left. The best candidate is kept. Without evaluator calls the first candidate is used (a
prior guess).

Text: the same search over the same rewrites (the lamp LM reads the same captions); each candidate's
descriptions are read by the evaluator (the text track's proxy) and scored by the share granted the request
as the same reading of an image is: rooms described with lamps, none lit; or, beside the original caption's
description with the same noise, its lamps (by place) with the targeted ones unlit and the rest lit as they were.

Before, the search asked for every lamp unlit whatever the request, and read one sample per evidence caption:
on single_lamp (the leftmost lamp off, the others lit) it scored 0.000 at every budget of the 0.2 tables, and at
n = 1 each candidate was judged on one sample, 504 of the 512 calls unused. The default of 16 samples reads at
n = 16 what it read before (the same captions and noise, for a request for every lamp).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from editbench.core import Budget, Choice, Cost, Edit, Evidence, LogInt, Method, MethodConfig
from editbench.world.captions import rewrite_lamp_clause
from editbench.world.config import LAMP_KINDS
from editbench.world.requests import EditRequest

CANDIDATES = (
    "an unlit table lamp and an unlit floor lamp",
    "an unlit table lamp",
    "an unlit floor lamp",
    "two lamps and an unlit table lamp and an unlit floor lamp",
    "an unlit table lamp on the left and an unlit floor lamp on the right",
    "two lamps",
    "one lamp",
    "",
)


def candidates(request: EditRequest) -> tuple[str, ...]:
    """The lamp clauses searched for ``request``, best guess first: :data:`CANDIDATES` for every lamp; for the
    leftmost (rightmost) lamp, an unlit lamp on that side, with the other side's lamp lit or left unsaid."""
    if request.target not in ("leftmost", "rightmost"):
        return CANDIDATES
    side, other = ("left", "right") if request.target == "leftmost" else ("right", "left")
    a, b = LAMP_KINDS
    return (f"an unlit {a} lamp on the {side} and a lit {b} lamp on the {other}",
            f"an unlit {b} lamp on the {side} and a lit {a} lamp on the {other}",
            f"an unlit {a} lamp on the {side}",
            f"an unlit {b} lamp on the {side}",
            f"two lamps and an unlit {a} lamp on the {side}",
            f"two lamps and an unlit {b} lamp on the {side}",
            f"an unlit {a} lamp on the {side} and a lit {a} lamp on the {other}",
            f"an unlit {b} lamp on the {side} and a lit {b} lamp on the {other}")


@dataclass
class PromptConfig(MethodConfig):
    max_candidates: int = len(CANDIDATES)
    samples: int = 16  # samples read per candidate (the evidence captions in turn), as many as the calls allow


class PromptSearch(Method):
    name = "prompt"
    family = "prompt"
    tracks = ("image", "text")
    consumes = "captions"
    uses_evaluator = True
    Config = PromptConfig
    version = "2"  # the candidates and their score follow the request; samples per candidate, not per caption
    # 8 candidates: every clause (a limit); 64 samples: all 512 calls on 8 candidates (a limit of the budget)
    search_space = {"max_candidates": Choice((1, 2, 4, 8), order=False), "samples": LogInt(1, 64, hard="both")}

    @torch.no_grad()
    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        cands = list(candidates(request)[: max(1, self.config.max_candidates)])
        ev = evidence.evaluator
        scores: dict[str, float] = {}
        if ev is not None and evidence.captions:
            some = request.target != "all"  # the rest must stay as it was: each sample read beside the original's
            reads = 2 if some else 1  # evaluator calls per sample
            per = max(1, min(self.config.samples, ev.remaining // (len(cands) * reads)))
            g = torch.Generator().manual_seed(budget.seed)
            score = self.on_track("score", evidence.track)
            for clause in cands:
                if ev.remaining < per * reads:
                    break
                own = [evidence.captions[i % len(evidence.captions)] for i in range(per)]
                caps = [rewrite_lamp_clause(c, clause) for c in own]
                scores[clause] = score(model, request, own if some else None, caps, ev, g, budget.seed + len(scores))
        best = max(scores, key=scores.get) if scores else cands[0]
        return Edit(self.name, self.config.as_dict(), prompt={"clause": best},
                    cost=Cost(params_changed=0, examples_used=evidence.n, forward=ev.calls if ev is not None else 0),
                    meta={"scores": {k: round(v, 4) for k, v in scores.items()}, "clause": best})

    @staticmethod
    def score_image(model, request: EditRequest, own: list[str] | None, caps: list[str], ev, g: torch.Generator,
                    seed: int) -> float:
        """Images: the share of rooms granted the request as the meter reads them, less a hundredth of the targeted
        lamps' light left. Every lamp: rooms with lamps, none lit (all lamp light counted). Some lamps (``own``: the
        captions before the rewrite, sampled with the same noise): rooms whose lamps are those of the original,
        the targeted ones unlit and the others lit as they were."""
        z = torch.randn(len(caps), model.config.z_dim, generator=g)
        r = ev(model.generate(caps, z=z))
        if own is None:
            granted = (r.count > 0) & (r.lit.sum(1) == 0)
            return float(granted.float().mean() - 0.01 * r.light1.mean())
        o = ev(model.generate(own, z=z))
        target = request.slots(o.lamps, o.x)
        granted = (o.count > 0) & (r.count == o.count) & (r.lit == (o.lit & ~target)).all(1)
        return float(granted.float().mean() - 0.01 * r.light_of(target, 1).mean())

    @staticmethod
    def score_text(model, request: EditRequest, own: list[str] | None, caps: list[str], ev, g: torch.Generator,
                   seed: int) -> float:
        """Text: the share of descriptions granted the request as the proxy reads them. Every lamp: rooms described
        with lamps, none lit. Some lamps (``own``: the captions before the rewrite, with the same noise): the lamps
        of the original's description, the targeted ones unlit and the rest as they were."""
        noise = model.make_noise(len(caps), seed)
        facts = ev(model.generate(caps, noise))
        if own is None:
            return sum(f is not None and f.n_lamps > 0 and f.n_lit == 0 for f in facts) / len(caps)
        before = ev(model.generate(own, noise))

        def states(f) -> list[tuple[str, bool]]:
            return [(lamp.place, lamp.lit) for lamp in f.lamps]

        return sum(f is not None and b is not None and b.n_lamps > 0 and states(f) == states(request.apply_facts(b))
                   for f, b in zip(facts, before, strict=True)) / len(caps)

METHOD = PromptSearch
