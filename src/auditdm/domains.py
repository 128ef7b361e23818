"""What an embedded domain gives the core: images whose content is known, the grammar its
models read, an oracle that checks probes, and a held-out benchmark.

The embedded world is one (``world.domain``); the core reaches it only through this
protocol and ``backends.DOMAINS``, so a second domain is one more module and one line there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from auditdm.records import Labelled, OracleCheck, Scene, SourceImage

if TYPE_CHECKING:
    from PIL import Image


class Domain(Protocol):
    """An embedded domain, as the audit, its verification and GRPO use it."""

    name: str
    synthesizer: str  # the name of its synthesizer in backends.SYNTHESIZERS

    def images(self, count: int, seed: int) -> list[SourceImage]:
        """``count`` images, each with its scene and an original question; the same for the
        same seed, and apart from training data and the held-out benchmark."""
        ...

    def question_error(self, question: str) -> str | None:
        """Why ``question`` is outside what the domain's models and oracle read, or None."""
        ...

    def check(self, question: str, scene: Scene) -> OracleCheck:
        """The oracle's verdict on a question about a scene."""
        ...

    def benchmark(self, per_skill: int) -> list[Labelled]:
        """The fixed held-out benchmark: ``per_skill`` labelled examples of every skill."""
        ...

    def recipe_data(self, card: dict[str, Any], seed: int) -> Iterator[Labelled] | None:
        """The training data of a model one of the domain's recipes trained, as its card
        records it (fresh draws, reproducible by seed); None for a model they did not train."""
        ...

    def references(self, card: dict[str, Any]) -> tuple[str, ...] | None:
        """The references that audit a model one of the domain's recipes trained (its card);
        None for a model they did not train."""
        ...

    def png_text(self, scene: Scene) -> Mapping[str, str]:
        """The PNG text chunks that carry ``scene`` inside an image file."""
        ...

    def scene_in(self, image: Image.Image) -> Scene | None:
        """The scene a PNG carries (from ``png_text``), or None for any other image."""
        ...
