"""finetune_samples: finetuning on exactly the editors' evidence (the model's own samples as the proxy reads them).

Finetuning's other rows learn from the world's exact targets; the editors get only the model's own samples
and the proxy's reading of them. Editing's hope is to need no labelled targets, and this row tests that hope
against finetuning on the same information: each evidence sample becomes a target by applying the request
to what the proxy read in it, changing the sample only where the request says.

Text. The target of a sample is the proxy's reading of it with the targeted lamps switched off
(:meth:`EditRequest.apply_facts`), written back as a description (:func:`editbench.tracks.text.finetune.proxy_targets`); samples
the proxy cannot read are left out. Every weight of a copy of the LM trains on (caption, target) with the LM
loss for ``epochs`` epochs, as :mod:`.finetune_full` trains on the world's targets.

Images. The target of a sample is the sample with the light the proxy reads for the targeted lamps taken
out through the world's image formation: in linear light (before tone mapping) the world's image is the
room plus each lamp's light, so the target is ``tonemap(inverse_tonemap(sample) - light)``, where ``light``
is the meter's first- plus second-order light of the targeted lamps (luminance, coloured with the lamps'
warm light ``WARM``; it is an estimate: a shade's own colour and a surface's albedo tint the real light).
Every weight of a copy of the generator is trained to draw the target from the sample's own caption and
latent (L1 between ``G(z_i, c_i)`` and target ``i``; the targets are paired with latents, so the GAN's
unpaired objective has nothing to add) for ``epochs`` epochs of mini-batches (Adam). Finetuning toward the
world's renders instead drifts whole rooms (walls and beds change colour); a target that differs from the
model's own output only where the request says does not ask for that.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from editbench.core import Budget, Cost, Edit, Evidence, LogFloat, Method, MethodError
from editbench.core.schedule import epoch_batches, schedule
from editbench.tracks.text.finetune import finetune_lm, proxy_targets
from editbench.world.render import WARM, inverse_tonemap, luminance, tonemap
from editbench.world.requests import EditRequest

from .finetune_full import IMAGE_EPOCHS, TEXT_EPOCHS, TEXT_SCHEDULE, FinetuneConfig


@dataclass
class SamplesFinetuneConfig(FinetuneConfig):
    lr: float = 3e-4


def image_targets(evidence: Evidence, request: EditRequest) -> torch.Tensor:
    """(n, 3, H, W): each sample with the proxy-read light of the lamps the request targets taken out."""
    r = evidence.readings
    target = request.slots(r.lamps, r.x)  # (n, 3)
    light = r.light_of(target)  # (n, H, W) luminance, linear light
    warm = torch.tensor(WARM)
    colour = warm / luminance(warm.view(1, 3), 1)  # unit luminance
    rgb = light[:, None] * colour.view(1, 3, 1, 1)
    return tonemap((inverse_tonemap(evidence.outputs) - rgb).clamp_min(0.0))


class FinetuneSamples(Method):
    name = "finetune_samples"
    family = "finetune"
    tracks = ("image", "text")
    consumes = "samples"
    Config = SamplesFinetuneConfig
    version = "2"  # lr searched up to 1e-2
    search_space = {"epochs": IMAGE_EPOCHS, "lr": LogFloat(1e-5, 1e-2)}
    track_configs = {"text": {"epochs": 20.0, "lr": 1e-4, **TEXT_SCHEDULE}}
    search_spaces = {"text": {"epochs": TEXT_EPOCHS, "lr": LogFloat(1e-5, 1e-2)}}

    def fit_text(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        cost = Cost(examples_used=evidence.n)
        work = copy.deepcopy(model).requires_grad_(True)
        caps, texts = proxy_targets(evidence, request)
        log = finetune_lm(work, list(work.parameters()), caps, texts, c.epochs, c.lr, c.batch_size, budget.seed,
                          cost, c.min_steps, c.max_steps)
        return Edit.from_weights(self.name, c.as_dict(), model, work, cost, meta={"schedule": log, "targets": len(texts)})

    def fit_image(self, model, request: EditRequest, evidence: Evidence, budget: Budget) -> Edit:
        c = self.config
        evidence.need("samples")
        cost = Cost(examples_used=evidence.n)
        work = copy.deepcopy(model).requires_grad_(True)
        targets = image_targets(evidence, request).to(model.device)
        z, caps = evidence.noise.to(model.device), evidence.captions
        plan = schedule(evidence.n, c.batch_size, c.epochs, c.min_steps, c.max_steps)
        opt = torch.optim.Adam(work.parameters(), lr=c.lr, betas=(0.0, 0.99))
        g = torch.Generator().manual_seed(budget.seed)
        last = float("nan")
        work.train()
        try:
            for idx in epoch_batches(evidence.n, plan.batch, plan.steps, g):
                ids, mask = work.encode_captions([caps[i] for i in idx.tolist()])
                loss = (work(z[idx], ids, mask) - targets[idx]).abs().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                cost.spend(forward=len(idx), backward=len(idx), steps=1, seen=len(idx))
                last = float(loss.detach())
                if not torch.isfinite(loss):
                    raise MethodError(f"finetune_samples diverged (loss {last})")
        finally:
            work.eval()
        changed = float((targets - evidence.outputs.to(targets.device)).abs().mean())
        return Edit.from_weights(self.name, c.as_dict(), model, work, cost,
                                 meta={"schedule": {**plan.as_dict(), "last_loss": last}, "target_change": round(changed, 5)})


METHOD = FinetuneSamples
