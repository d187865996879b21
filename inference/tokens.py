"""Token counting without a tokenizer at hand.

The stated approximation: one token per word piece, where a word piece is a run
of letters/digits of up to four characters or a single punctuation mark. On
English prose this over-counts slightly against BPE tokenizers (Llama, Mistral,
SmolLM2), which is the safe side for budgeting a context window.
"""

from __future__ import annotations

import re

_PIECE = re.compile(r"\w{1,4}|[^\w\s]", re.UNICODE)


def approx_token_count(text: str) -> int:
    return len(_PIECE.findall(text))
