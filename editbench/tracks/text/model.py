"""The lamp LM: a transformers ``GPT2LMHeadModel`` (GPT-2 on purpose: ROME and MEMIT were made for its
MLP layout) that describes a room for a caption, with declared hook points and paired sampling.

* ``hook_points()``: ``embed`` (token plus position embeddings), per block ``h.{i}`` (the residual
  stream after the block), ``h.{i}.attn.heads`` (every head's output before the output projection,
  n_head x head_dim units), ``h.{i}.mlp.act`` (MLP neurons after the activation) and ``h.{i}.mlp``
  (the MLP's output); every output is (B, T, units), units on the last axis.
* ``generate(captions, noise)``: sampling with the noise drawn up front (:func:`make_noise`: Gumbel noise
  per step and vocabulary entry), so the edited and the unedited model sample with the same randomness,
  as the image track pairs on the same latent. ``argmax(logits + gumbel)`` is an exact sample of the
  softmax at temperature 1.

The module layout and parameter names are GPT-2's own (the head hook is a parameter-free module inside
the output projection), so the saved folder loads in a plain ``GPT2LMHeadModel`` too (``lm_eval --model hf``).
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import Tensor, nn
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from transformers.pytorch_utils import Conv1D

from editbench.core.hooks import HookPoint

from .tokenizer import build_tokenizer, prompt_text

#: every Conv1D of the blocks (attention in and out, MLP in and out): where LoRA adapters go on the lamp LM
CONV1D_MODULES = r"transformer\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)"
MAX_NEW_TOKENS = 128  # the longest description of the world has 110 words
MIN_P = 0.05  # sampling keeps the words whose probability is at least MIN_P times the likeliest one's


class ProjectionWithHeads(Conv1D):
    """GPT-2's attention output projection with a hook point (``heads``) on its input: the heads' outputs
    concatenated, (B, T, n_head * head_dim). Same parameters as the Conv1D it replaces."""

    def __init__(self, nf: int, nx: int):
        super().__init__(nf, nx)
        self.heads = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(self.heads(x))


# the key/value cache's argument and output field: ``cache`` in transformers 5, ``past_key_values`` before
CACHE_ARG = "cache" if "cache" in inspect.signature(GPT2LMHeadModel.forward).parameters else "past_key_values"


def make_noise(n: int, seed: int, vocab_size: int, steps: int = MAX_NEW_TOKENS) -> Tensor:
    """(n, steps, vocab) standard Gumbel noise from ``seed``: the randomness of n samples, drawn up front."""
    g = torch.Generator().manual_seed(int(seed))
    u = torch.rand(n, steps, vocab_size, generator=g, dtype=torch.float64).clamp_(1e-12, 1 - 1e-12)
    return (-torch.log(-torch.log(u))).float()


class LampLM(GPT2LMHeadModel):
    """GPT-2 with the lamp world's tokenizer, hook points and paired sampling."""

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        for block in self.transformer.h:
            old = block.attn.c_proj
            new = ProjectionWithHeads(old.nf, old.weight.shape[0])
            new.load_state_dict(old.state_dict())
            block.attn.c_proj = new
        self._tokenizer: PreTrainedTokenizerFast | None = None
        self.min_p = MIN_P

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        if self._tokenizer is None:
            self._tokenizer = build_tokenizer()
        return self._tokenizer

    # -- hook points ---------------------------------------------------------------------------------------
    def hook_points(self) -> dict[str, HookPoint]:
        c = self.config
        d, heads = c.n_embd, c.n_head
        inner = c.n_inner or 4 * d
        out = {"transformer.drop": HookPoint("transformer.drop", d, -1, (), "token plus position embeddings")}
        for i in range(c.n_layer):
            p = f"transformer.h.{i}"
            about = f"block {i}: {heads} heads x {d // heads} dims before the output projection"
            out[f"{p}.attn.c_proj.heads"] = HookPoint(f"{p}.attn.c_proj.heads", d, -1, (), about)
            out[f"{p}.mlp.act"] = HookPoint(f"{p}.mlp.act", inner, -1, (), f"block {i}: MLP neurons after the activation")
            out[f"{p}.mlp"] = HookPoint(f"{p}.mlp", d, -1, (), f"block {i}: MLP output")
            out[p] = HookPoint(p, d, -1, (), f"block {i}: residual stream after the block")
        return out

    # -- prompts and sampling -------------------------------------------------------------------------------
    def encode_prompts(self, captions: list[str]) -> tuple[Tensor, Tensor]:
        """``<bos> caption <sep>``, left-padded: (B, T) ids and attention mask."""
        tok = self.tokenizer
        texts = [prompt_text(c) for c in captions]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def make_noise(self, n: int, seed: int, scale: float = 1.0) -> Tensor:
        """Sampling noise for n descriptions (``scale`` multiplies it: 0 is greedy decoding)."""
        return make_noise(n, seed, self.config.vocab_size) * scale

    @torch.no_grad()
    def generate_ids(self, captions: list[str], noise: Tensor, batch_size: int = 256) -> Tensor:
        """(B, MAX_NEW_TOKENS) description ids sampled with ``noise``, padded after ``<eos>``."""
        outs = []
        for i in range(0, len(captions), batch_size):
            outs.append(self._sample_paired(captions[i:i + batch_size], noise[i:i + batch_size]))
        return torch.cat(outs) if outs else torch.zeros(0, noise.shape[1], dtype=torch.long)

    def _sample_paired(self, captions: list[str], noise: Tensor) -> Tensor:
        tok = self.tokenizer
        ids, mask = self.encode_prompts(captions)
        B, steps = len(captions), noise.shape[1]
        position = (mask.cumsum(1) - 1).clamp_min(0)
        out = torch.full((B, steps), tok.pad_token_id, dtype=torch.long, device=self.device)
        done = torch.zeros(B, dtype=torch.bool, device=self.device)
        cache = None
        step_ids, step_pos = ids, position
        for t in range(steps):
            res = self(input_ids=step_ids, attention_mask=mask, position_ids=step_pos, **{CACHE_ARG: cache},
                       use_cache=True)
            cache = getattr(res, CACHE_ARG)
            logits = res.logits[:, -1].float()
            if self.min_p > 0:  # min-p sampling: drop the tail of words far less likely than the likeliest
                logp = logits.log_softmax(-1)
                logits = logits.masked_fill(logp < logp.max(-1, keepdim=True).values + math.log(self.min_p), -math.inf)
            nxt = (logits + noise[:, t].to(logits.device)).argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, tok.pad_token_id), nxt)
            out[:, t] = nxt
            done |= nxt == tok.eos_token_id
            if bool(done.all()):
                break
            step_ids = nxt[:, None]
            step_pos = step_pos[:, -1:] + 1
            mask = torch.cat([mask, torch.ones(B, 1, dtype=mask.dtype, device=mask.device)], 1)
        return out

    def decode(self, ids: Tensor) -> list[str]:
        """Description ids -> text (up to ``<eos>``; special tokens dropped)."""
        tok = self.tokenizer
        vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
        out = []
        for row in ids.tolist():
            words = []
            for t in row:
                if t == tok.eos_token_id:
                    break
                if t != tok.pad_token_id:
                    words.append(vocab[t])
            out.append(" ".join(words))
        return out

    def generate(self, captions: list[str], noise: Tensor | None = None, seed: int = 0) -> list[str]:
        """Descriptions for ``captions`` with sampling ``noise`` (or ``make_noise(len, seed)``)."""
        noise = self.make_noise(len(captions), seed) if noise is None else noise
        return self.decode(self.generate_ids(captions, noise))


def lm_config(n_layer: int = 4, n_embd: int = 128, n_head: int = 4, n_positions: int = 192) -> GPT2Config:
    """The GPT-2 config of a lamp LM of the given shape over the lamp world's vocabulary."""
    tok = build_tokenizer()
    return GPT2Config(vocab_size=len(tok), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, architectures=["GPT2LMHeadModel"])
