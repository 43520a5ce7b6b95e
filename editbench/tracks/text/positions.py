"""Where the lamp LM states a lamp's state, for the methods that read or write it there: teacher-forced
batches of the evidence, the positions, activations there, the subjects ROME and MEMIT edit.

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

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from editbench.core import Evidence, MethodError, capture
from editbench.world.descriptions import PLACES

from .train import encode_pairs

SUBJECT_WORDS = ("lamp", "lamps")  # the last token of every lamp subject a caption names


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
    evidence.need("samples")
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
    evidence.need("samples")
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


