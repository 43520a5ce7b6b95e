"""Caption encoder shared by the generator and its discriminator."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CaptionEncoder(nn.Module):
    """Token embeddings + a small pre-norm transformer; masked mean pooling to one vector.

    ``forward(tokens, mask)``: tokens (B, T) long, mask (B, T) bool -> (B, out_dim).
    """

    def __init__(self, vocab_size: int, max_tokens: int, dim: int, layers: int, out_dim: int, heads: int = 4):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.zeros(1, max_tokens, dim))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        T = tokens.shape[1]
        h = self.embed(tokens) + self.pos[:, :T]
        h = self.encoder(h, src_key_padding_mask=~mask)
        h = self.norm(h)
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.proj(pooled)
