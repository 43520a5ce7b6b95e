"""The lamp LM's tokenizer: a ``PreTrainedTokenizerFast`` over the fixed word-level vocabulary of captions
and descriptions (:data:`editbench.world.descriptions.TEXT_VOCAB`), built here, saved with the model.

A training sequence is ``<bos> caption <sep> description <eos>``; a prompt is ``<bos> caption <sep>``.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerFast

from editbench.world.captions import BOS, EOS, PAD, UNK
from editbench.world.descriptions import SEP, TEXT_VOCAB


def build_tokenizer() -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel

    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(TEXT_VOCAB)}, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
                                   sep_token=SEP, padding_side="left", model_max_length=256)


def prompt_text(caption: str) -> str:
    """The LM's prompt for a caption as text: ``<bos> caption <sep>``."""
    return f"{BOS} {normalise(caption)} {SEP}"


def normalise(caption: str) -> str:
    """A caption as the tokenizer reads it (lower case, commas as words)."""
    return " ".join(caption.lower().replace(",", " , ").split())


def unknown_words(caption: str) -> list[str]:
    vocab = set(TEXT_VOCAB)
    return sorted({w for w in normalise(caption).split() if w not in vocab})
