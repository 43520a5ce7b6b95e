"""The helpers the text track's methods share: teacher-forced batches of the evidence, the positions where
the lamp LM states a lamp's state, activations there, targets from the proxy's readings, the subjects
ROME and MEMIT edit, the second moment of MLP keys on the lamp corpus, and the finetuning loop.

Two kinds of positions in a lamp sentence (``. a lit table lamp on the left .``):

* the *decision position*: a lamp's state is decided one token before it is written (the LM writes ``a lit
  ...`` or ``an unlit ...``), so its hidden state at the token before the article (the ``.`` closing the
  previous sentence) is where "lit" and "unlit" part. ROME and MEMIT edit there and causal tracing reads
  there. Its label is only what the LM happened to sample next: at those positions the LM's own
  probability of "unlit" is often between 0.2 and 0.8, so activations there carry the sampling noise, not
  the state.
* the *stated position* (:func:`stated`): the lamp's kind word right after its state word (``table`` of
  ``a lit table lamp``), where the state is already in the text and the label is the text's own, as
  honest_llama reads activations after an answer whose truth is known. Each evidence sample's lamp
  sentence is read twice, as sampled and with its state word flipped (``a lit`` <-> ``an unlit``, the same
  context otherwise: contrastive pairs, as in contrastive activation addition), so both classes are always
  present and differ only in the state. The activation editors (ITI, steering, the neuron clamp) fit here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from editbench.core import Cost, Evidence, MethodError, capture, io, one_thread
from editbench.tracks.text.train import encode_pairs, lm_loss
from editbench.world import World, WorldConfig
from editbench.world.descriptions import PLACES, Facts, describe, render_facts
from editbench.world.requests import EditRequest

from ._train import epoch_batches, schedule

CORPUS_SEED = 2**42 + 7  # the lamp corpus the MLP keys' second moment is estimated on (never a split seed)
CORPUS_SIZE = 512
SUBJECT_WORDS = ("lamp", "lamps")  # the last token of every lamp subject a caption names


def need(evidence: Evidence, what: str = "samples") -> None:
    if what == "samples" and (evidence.outputs is None or evidence.readings is None):
        raise MethodError("this editor needs evidence of kind 'samples'")
    if what == "targets" and evidence.targets is None:
        raise MethodError("finetuning needs evidence of kind 'targets'")


def _place_at(words: list[str], i: int) -> str | None:
    if words[i:i + 2] in (["far", "left"], ["far", "right"]):
        return " ".join(words[i:i + 2])
    return words[i] if i < len(words) and words[i] in PLACES else None


@dataclass
class Decisions:
    """Teacher-forced evidence samples and their decision positions: ``rows``/``cols`` index (B, T)
    tensors, ``lit`` the proxy's reading of each lamp there."""

    ids: Tensor
    mask: Tensor
    labels: Tensor
    rows: Tensor
    cols: Tensor
    lit: Tensor

    def classes(self) -> tuple[int, int]:
        return int(self.lit.sum()), int((~self.lit).sum())


STATES = {"lit": ("a", "lit"), "unlit": ("an", "unlit")}


def _lamp_sentences(words: list[str]) -> list[int]:
    """Indices of the article of every lamp sentence (``a lit table lamp on the ...``) in a description."""
    out, k = [], 0
    while k < len(words):  # sentence starts
        if words[k:k + 2] in (list(STATES["lit"]), list(STATES["unlit"])) and words[k + 3:k + 6] == ["lamp", "on", "the"]:
            out.append(k)
        k = words.index(".", k) + 1 if "." in words[k:] else len(words)
    return out


def decisions(lm: nn.Module, evidence: Evidence) -> Decisions:
    """The decision positions of every lamp sentence of the evidence samples, labelled by the proxy."""
    need(evidence)
    ids, mask, labels = encode_pairs(lm.tokenizer, evidence.captions, evidence.outputs)
    rows, cols, lit = [], [], []
    for b, (text, facts) in enumerate(zip(evidence.outputs, evidence.readings, strict=True)):
        if facts is None:
            continue
        start = int((labels[b] != -100).nonzero()[0])  # index of the description's first token
        words = text.split()
        for k in _lamp_sentences(words):
            place = _place_at(words, k + 6)
            lamp = facts.lamp_at(place) if place else None
            if lamp is not None:
                rows.append(b)
                cols.append(start + k - 1)
                lit.append(lamp.lit)
    return Decisions(ids, mask, labels, torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long),
                     torch.tensor(lit, dtype=torch.bool))


def stated(lm: nn.Module, evidence: Evidence) -> Decisions:
    """The stated position (the kind word after the state word) of every lamp sentence of the evidence
    samples, each read as sampled and with its state flipped; ``lit`` is the state the text states. Every
    flipped copy is cut after the lamp's sentence (nothing later can change the activations there)."""
    need(evidence)
    caps, texts, at, lit = [], [], [], []
    for c, text in zip(evidence.captions, evidence.outputs, strict=True):
        words = text.split()
        for k in _lamp_sentences(words):
            end = words.index(".", k) + 1 if "." in words[k:] else len(words)
            for state in ("lit", "unlit"):
                caps.append(c)
                texts.append(" ".join([*words[:k], *STATES[state], *words[k + 2:end]]))
                at.append(k + 2)
                lit.append(state == "lit")
    if not texts:
        raise MethodError("no evidence sample describes a lamp: there is no state to read activations at")
    ids, mask, labels = encode_pairs(lm.tokenizer, caps, texts)
    start = (labels != -100).float().argmax(1)
    return Decisions(ids, mask, labels, torch.arange(len(texts)), start + torch.tensor(at), torch.tensor(lit))


def unit_direction(acts: Tensor, lit: Tensor, diff: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(unit, sigma, norm): the unit mass-mean direction from lit to unlit activations (N, units) (or of a
    mean difference ``diff`` given), the standard deviation of all activations along it, and the mean
    difference's norm before normalising."""
    if diff is None:
        diff = acts[~lit].mean(0) - acts[lit].mean(0)
    norm = diff.norm()
    unit = diff / norm.clamp_min(1e-12)
    return unit, (acts @ unit).std(), norm


@torch.no_grad()
def activations_at(lm: nn.Module, layers: list[str], d: Decisions) -> dict[str, Tensor]:
    """(N, units) outputs of each hook point at the decision positions."""
    with capture(lm, layers) as acts:
        lm(input_ids=d.ids, attention_mask=d.mask)
    return {name: acts[name][d.rows, d.cols].float() for name in layers}


def proxy_targets(evidence: Evidence, request: EditRequest) -> tuple[list[str], list[str]]:
    """(captions, descriptions): each evidence sample as the proxy reads it, with the request applied (the
    description the edited model should give for that caption); samples the proxy cannot read are left out."""
    need(evidence)
    caps, texts = [], []
    for c, facts in zip(evidence.captions, evidence.readings, strict=True):
        if isinstance(facts, Facts):
            caps.append(c)
            texts.append(render_facts(request.apply_facts(facts)))
    if not caps:
        raise MethodError("no evidence sample could be read to build a target description from")
    return caps, texts


def subject_mask(lm: nn.Module, ids: Tensor, labels: Tensor, previous: str | None = None,
                 exclude: tuple[str, ...] = ()) -> Tensor:
    """(B, T) bool: the last tokens of lamp subjects in the captions (``lamp``/``lamps``), optionally only
    those after the word ``previous`` (``table`` lamp) or not after any of ``exclude``."""
    vocab = lm.tokenizer.get_vocab()
    in_prompt = labels == -100
    out = torch.zeros_like(ids, dtype=torch.bool)
    for w in SUBJECT_WORDS:
        out |= ids == vocab[w]
    out &= in_prompt
    before = torch.cat([torch.full_like(ids[:, :1], -1), ids[:, :-1]], 1)
    if previous is not None:
        out &= before == vocab[previous]
    for w in exclude:
        out &= before != vocab[w]
    return out


def model_hash(lm: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(lm.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


_MOMENTS: dict[tuple[str, int], Tensor] = {}


def key_second_moment(lm: nn.Module, layer: int) -> Tensor:
    """E[k k^T] (float64) of the MLP keys (the inputs of ``h.{layer}.mlp.c_proj``) over every token of
    ``CORPUS_SIZE`` world captions and descriptions. Computed with one thread (the same floats wherever it
    runs) and cached by the model's hash, in memory and under ``$EDITBENCH_CACHE`` (``~/.cache/editbench``)."""
    key = (model_hash(lm), layer)
    if key in _MOMENTS:
        return _MOMENTS[key]
    path = io.cache_dir() / "key_moments" / f"{key[0]}-layer{layer}-n{CORPUS_SIZE}.safetensors"
    if path.exists():
        try:
            _MOMENTS[key] = load_file(str(path))["moment"]
            return _MOMENTS[key]
        except Exception:  # noqa: BLE001 - a corrupt cache file is recomputed
            pass
    with one_thread():
        world = World(WorldConfig())
        scene = world.scenes(CORPUS_SIZE, CORPUS_SEED)
        captions, _ = world.captions(scene, CORPUS_SEED)
        ids, mask, _ = encode_pairs(lm.tokenizer, captions, describe(scene))
        point = f"transformer.h.{layer}.mlp.act"
        total, count = None, 0
        with torch.no_grad():
            for i in range(0, len(ids), 64):
                with capture(lm, [point]) as acts:
                    lm(input_ids=ids[i:i + 64], attention_mask=mask[i:i + 64])
                k = acts[point][mask[i:i + 64].bool()].double()
                total = k.T @ k if total is None else total + k.T @ k
                count += k.shape[0]
        moment = total / count
    try:
        io.write_with(path, lambda p: save_file({"moment": moment.contiguous()}, str(p)))
    except OSError:
        pass  # an unwritable cache only costs the recomputation
    _MOMENTS[key] = moment
    return moment


def regularised_moment(lm: nn.Module, layer: int, ridge: float) -> Tensor:
    """The keys' second moment (:func:`key_second_moment`) plus ``ridge`` times its mean diagonal on the
    diagonal, as ROME and MEMIT here both solve with it. The ridge is needed whatever the corpus size: the
    keys of a 52-word language span few directions, and the moment's condition number is about 3e6 at layer 3
    from 512 texts and still 3e6 from 4,096 (0.1 brings it to about 1.4e3)."""
    C = key_second_moment(lm, layer)
    return C + ridge * C.diagonal().mean() * torch.eye(C.shape[0], dtype=C.dtype)


def finetune_lm(lm: nn.Module, params: list[Tensor], captions: list[str], texts: list[str], epochs: float, lr: float,
                batch_size: int, seed: int, cost: Cost, min_steps: int = 1, max_steps: int = 10**6) -> dict[str, Any]:
    """Train ``params`` of ``lm`` on (caption, description) pairs with the LM loss (AdamW, gradients clipped at
    1) for ``epochs`` epochs of seeded mini-batches (:mod:`._train`), adding the compute to ``cost``; returns the
    schedule and the last loss."""
    if not captions:
        raise MethodError("finetuning needs at least one (caption, description) pair")
    ids, mask, labels = encode_pairs(lm.tokenizer, captions, texts)
    plan = schedule(len(captions), batch_size, epochs, min_steps, max_steps)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    last = float("nan")
    lm.train()
    try:
        for idx in epoch_batches(len(captions), plan.batch, plan.steps, g):
            loss, _ = lm_loss(lm, ids[idx], mask[idx], labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            cost.spend(forward=len(idx), backward=len(idx), steps=1, seen=len(idx))
            last = float(loss.detach())
            if not torch.isfinite(loss):
                raise MethodError(f"finetuning diverged (loss {last})")
    finally:
        lm.eval()
    return {**plan.as_dict(), "last_loss": last}
