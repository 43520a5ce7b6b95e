"""Training the lamp LM: ``editbench train lm --out DIR --seed 0``.

Every ``BUCKETS`` steps draw ``BUCKETS * batch_size`` scenes of the world from ``stream_seed(seed, step //
BUCKETS)``, sort them by length and train on them one batch a step (little padding), on
``<bos> caption <sep> description <eos>`` with the loss on the description (and ``<eos>``) only. The
summed loss is divided by a fixed number of tokens (``batch_size * TOKENS_PER_EXAMPLE``) rather than by
the tokens of the batch: the mean over a batch's tokens would weight each example by one over its
length and favour rooms with fewer lamps. AdamW, linear warm-up, cosine decay to a tenth. The run folder
holds the model and tokenizer as an HF folder (``lm/``: safetensors), ``state/`` for ``--resume``,
``log.jsonl`` and ``run.json``; checkpoints are written atomically.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from editbench.core import UserError, io
from editbench.tracks.training import JsonlLog, pick_device, start_run, stream_seed
from editbench.world import World, WorldConfig
from editbench.world.descriptions import describe

from .model import LampLM, lm_config
from .tokenizer import normalise

TOKENS_PER_EXAMPLE = 50  # the loss is the sum over description tokens / (batch size x this)
BUCKETS = 8  # consecutive steps share a pool of BUCKETS batches sorted by length (less padding)


def _versions() -> dict[str, str]:
    import transformers

    from editbench import __version__

    return {"editbench": __version__, "torch": torch.__version__, "transformers": transformers.__version__}


def encode_pairs(tokenizer, captions: list[str], descriptions: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, attention mask, labels) of ``<bos> caption <sep> description <eos>`` for each pair, right-padded;
    labels are -100 except on the description and its ``<eos>``."""
    vocab = tokenizer.get_vocab()
    unk = tokenizer.unk_token_id
    rows, labels = [], []
    for c, d in zip(captions, descriptions, strict=True):
        prompt = [tokenizer.bos_token_id, *[vocab.get(w, unk) for w in normalise(c).split()], tokenizer.sep_token_id]
        target = [*[vocab.get(w, unk) for w in d.split()], tokenizer.eos_token_id]
        rows.append(prompt + target)
        labels.append([-100] * len(prompt) + target)
    n, T = len(rows), max((len(r) for r in rows), default=0)
    ids = torch.full((n, T), tokenizer.pad_token_id, dtype=torch.long)
    lab = torch.full((n, T), -100, dtype=torch.long)
    mask = torch.zeros(n, T, dtype=torch.long)
    for i, (r, la) in enumerate(zip(rows, labels, strict=True)):
        ids[i, :len(r)], lab[i, :len(la)], mask[i, :len(r)] = torch.tensor(r), torch.tensor(la), 1
    return ids, mask, lab


def training_batch(world: World, tokenizer, n: int, seed: int, part: int = 0, parts: int = 1
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, attention mask, labels) of n examples (:func:`encode_pairs`). The examples are batch ``part``
    of ``parts`` cut, in order of length, from a pool of ``n * parts`` scenes drawn from ``seed`` (so a
    batch pads little)."""
    scene = world.scenes(n * parts, seed)
    captions, _ = world.captions(scene, seed)
    descriptions = describe(scene)
    lengths = [len(normalise(c).split()) + len(d.split()) + 3 for c, d in zip(captions, descriptions, strict=True)]
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))[part * n:(part + 1) * n]
    return encode_pairs(tokenizer, [captions[i] for i in order], [descriptions[i] for i in order])


def lm_loss(model, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, per: int | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, summed loss): the summed cross-entropy over the labelled tokens divided by ``per`` (by
    default their count)."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    loss_sum = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                 ignore_index=-100, reduction="sum")
    return loss_sum / (per if per is not None else max(int((target != -100).sum()), 1)), loss_sum


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_lm(out: str | Path, steps: int, seed: int = 0, batch_size: int = 64, lr: float = 1e-3, warmup: int = 200,
             n_layer: int = 4, n_embd: int = 128, n_head: int = 4, device: str = "auto", ckpt_every: int = 500,
             log_every: int = 50, resume: bool = False, progress: bool = True) -> Path:
    """Train a lamp LM into the run folder ``out`` (``out / "lm"`` is the model); returns ``out``."""
    out = Path(out)
    args = {"steps": steps, "seed": seed, "batch_size": batch_size, "lr": lr, "warmup": warmup, "n_layer": n_layer,
            "n_embd": n_embd, "n_head": n_head}
    start = start_run(out, "lm", args, resume, _versions())
    dev = pick_device(device)
    torch.manual_seed(seed)
    model = LampLM(lm_config(n_layer=n_layer, n_embd=n_embd, n_head=n_head)).to(dev)
    model.config._attn_implementation = "eager"  # faster than sdpa for this size on a CPU (1.9 vs 2.7 s a step)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    if start:
        state = load_file(str(out / "state" / "model.safetensors"))
        missing, unexpected = model.load_state_dict(state, strict=False)  # lm_head.weight is tied, not saved
        if unexpected or set(missing) - {"lm_head.weight"}:
            raise UserError(f"{out / 'state'} does not hold this model's weights (missing {sorted(missing)}, "
                            f"unexpected {sorted(unexpected)}); start a new --out")
        opt.load_state_dict(torch.load(out / "state" / "optimizer.pt", weights_only=True))
    tok = model.tokenizer
    world = World(WorldConfig())
    log = JsonlLog(out / "log.jsonl")

    def save(step: int) -> None:
        def write_model(p: Path) -> None:
            model.save_pretrained(p, safe_serialization=True)
            tok.save_pretrained(p)

        def write_state(p: Path) -> None:
            save_file({k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"},
                      str(p / "model.safetensors"))
            torch.save(opt.state_dict(), p / "optimizer.pt")
            (p / "step.json").write_text(f'{{"step": {step}}}')
        io.write_dir(out / "lm", write_model)
        io.write_dir(out / "state", write_state)

    model.train()
    t0, tokens, seen = time.time(), 0, 0.0
    bar = tqdm(range(start, steps), desc="train lm", disable=not progress, initial=start, total=steps)
    for step in bar:
        ids, mask, labels = training_batch(world, tok, batch_size, stream_seed(seed, step // BUCKETS), step % BUCKETS, BUCKETS)
        ids, mask, labels = ids.to(dev), mask.to(dev), labels.to(dev)
        loss, loss_sum = lm_loss(model, ids, mask, labels, per=batch_size * TOKENS_PER_EXAMPLE)
        target = labels[:, 1:]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        n_target = int((target != -100).sum())
        tokens += int(mask.sum())
        seen = loss_sum.item() / n_target
        if step % log_every == 0 or step == steps - 1:
            rate = tokens / max(time.time() - t0, 1e-9)
            log.write({"step": step, "loss_per_token": seen, "lr": opt.param_groups[0]["lr"], "tokens_per_s": rate,
                       "elapsed_s": time.time() - t0})
            bar.set_postfix(loss=f"{seen:.4f}", tok_s=f"{rate:.0f}")
        if (step + 1) % ckpt_every == 0 or step == steps - 1:
            model.eval()
            save(step + 1)
            model.train()
    model.eval()
    if start >= steps and not (out / "lm").exists():
        save(steps)
    return out


