"""Models: every vision-language model, whether audited, referenced or auditing, behind one
small protocol.

A model is named by a ``kind:name`` string (``backends.MODELS``): ``world:target`` (the
zoo) or ``hf:/path/or/hub-id`` (any transformers image-text-to-text model). Backends live
in their own modules and import their heavy libraries there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from auditdm.backends import ModelSpec
from auditdm.files import write_text

if TYPE_CHECKING:
    from PIL import Image

CARD = "auditdm.json"
"""A model folder's card: its role (target, reference, auditor), the prompt set an auditor
was trained for, how it was trained, its training curves."""


class VLM(Protocol):
    """A vision-language model: one reply per (image, prompt) pair."""

    name: str  # the spec it was loaded from

    def generate(self, images: Sequence[Image.Image], prompts: Sequence[str], *, max_new_tokens: int | None = None,
                 temperature: float = 0.0, seed: int = 0) -> list[str]:  # fmt: skip
        """The reply to ``prompts[i]`` about ``images[i]``, for every i: greedy at temperature
        0, else sampled reproducibly from ``seed``. Answering a question is a greedy reply."""
        ...

    def confidences(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[tuple[str, float]]:
        """Greedy replies, each with the model's probability of it, in [0, 1]."""
        ...


def load_model(spec: str, **options: Any) -> VLM:
    """The model a ``kind:name`` string names; ``options`` (device, dtype, batch_size,
    progress, ...) go to its backend."""
    parsed = ModelSpec.parse(spec)
    model: VLM = parsed.backend.load(parsed.name, **options)
    return model


def read_card(folder: Path) -> dict[str, Any]:
    """The ``auditdm.json`` card of a model folder; empty for a folder without one."""
    path = folder / CARD
    return json.loads(path.read_text()) if path.is_file() else {}


def write_card(folder: Path, card: dict[str, Any]) -> None:
    """Write a model folder's card (the zoo's trainer and GRPO checkpoints do)."""
    write_text(folder / CARD, json.dumps(card, indent=2) + "\n")
