"""prompt: caption search within the budget (the prompt engineering of the story).

Candidates rewrite the lamp clause of the task's own caption and keep the room it asks for (walls,
window, time of day), see :func:`editbench.world.captions.rewrite_lamp_clause`. Each candidate is
scored with evaluator calls: the edited captions of the evidence are sampled and read by the meter; the
score is the share of images with lamps present and none lit, minus a small term for the lamp light
left. The best candidate is kept. Without evaluator calls the first candidate is used (a prior guess).

Text: the same search over the same rewrites (the lamp LM reads the same captions); each candidate's
descriptions are read by the evaluator (the text track's proxy) and scored by the share of rooms described
with lamps and none of them lit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from editbench.core import Budget, Choice, Cost, Edit, Evidence, Method, MethodConfig
from editbench.world.captions import rewrite_lamp_clause
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


@dataclass
class PromptConfig(MethodConfig):
    max_candidates: int = len(CANDIDATES)


class PromptSearch(Method):
    name = "prompt"
    family = "prompt"
    tracks = ("image", "text")
    consumes = "captions"
    uses_evaluator = True
    Config = PromptConfig
    search_space = {"max_candidates": Choice((1, 2, 4, 8), order=False)}  # 8: every candidate clause (a limit)

    @torch.no_grad()
    def fit(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        cands = list(CANDIDATES[: max(1, self.config.max_candidates)])
        ev = evidence.evaluator
        scores: dict[str, float] = {}
        if ev is not None and evidence.captions:
            per = max(1, min(len(evidence.captions), ev.remaining // len(cands)))
            g = torch.Generator().manual_seed(budget.seed)
            score = self.on_track("score", evidence.track)
            for clause in cands:
                if ev.remaining < per:
                    break
                caps = [rewrite_lamp_clause(c, clause) for c in evidence.captions[:per]]
                scores[clause] = score(model, caps, ev, g, budget.seed + len(scores))
        best = max(scores, key=scores.get) if scores else cands[0]
        return Edit(self.name, self.config.as_dict(), prompt={"clause": best},
                    cost=Cost(params_changed=0, examples_used=evidence.n, forward=ev.calls if ev is not None else 0),
                    meta={"scores": {k: round(v, 4) for k, v in scores.items()}, "clause": best})

    @staticmethod
    def score_image(model, caps: list[str], ev, g: torch.Generator, seed: int) -> float:
        """Images: the share of rooms with lamps the meter reads all unlit, less a hundredth of the light left."""
        r = ev(model.generate(caps, z=torch.randn(len(caps), model.config.z_dim, generator=g)))
        unlit_rooms = ((r.count > 0) & (r.lit.sum(1) == 0)).float().mean()
        return float(unlit_rooms - 0.01 * r.light1.mean())

    @staticmethod
    def score_text(model, caps: list[str], ev, g: torch.Generator, seed: int) -> float:
        """Text: the share of descriptions with lamps that the proxy reads all unlit."""
        facts = ev(model.generate(caps, model.make_noise(len(caps), seed)))
        return sum(f is not None and f.n_lamps > 0 and f.n_lit == 0 for f in facts) / len(caps)


METHOD = PromptSearch
