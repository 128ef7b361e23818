"""Answerers: the models under audit, behind one small protocol.

Backends live in their own modules (`hf`, ...) and import their heavy dependencies there.
A model is named by a ``kind:name`` string: ``world:target`` (the zoo) or
``hf:/path/to/model-folder`` (any transformers image-text-to-text model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from auditdm.errors import UserError

if TYPE_CHECKING:
    from PIL import Image


class Answerer(Protocol):
    """Something that answers questions about images."""

    name: str

    def answer(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[str]:
        """Answer `questions[i]` about `images[i]`, for every i, in order."""
        ...

    def answer_with_confidence(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[tuple[str, float]]:
        """`answer`, each answer with the model's probability of it, in [0, 1]."""
        ...


BACKENDS = ("world", "hf")


def parse_spec(spec: str) -> tuple[str, str]:
    """``kind:name`` split in two, or a clear error for a string that names no backend."""
    kind, sep, name = spec.partition(":")
    if not sep or kind not in BACKENDS or not name:
        raise UserError(f"unknown model {spec!r}: expected one of " + ", ".join(f"{k}:NAME" for k in BACKENDS))
    return kind, name


def load_answerer(spec: str, **options: object) -> Answerer:
    """The answerer a ``kind:name`` string names; ``options`` go to the backend."""
    kind, name = parse_spec(spec)
    from auditdm.models.hf import HFAnswerer

    if kind == "world":
        from auditdm.world.zoo.zoo import find_model

        # World models are transformers folders: the same backend as any hf: model.
        return HFAnswerer(find_model(name).path, name=spec, **options)  # type: ignore[arg-type]
    return HFAnswerer(name, name=spec, **options)  # type: ignore[arg-type]
