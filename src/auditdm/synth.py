"""Image synthesis: the generator G (caption -> image) and editor E (image, command -> image).

The paper uses FLUX.1-dev and FLUX.1-Kontext through diffusers; the embedded world uses its
renderer, whose images carry their scene. Backends are named in ``backends.SYNTHESIZERS``
and loaded with ``backends.load_synthesizer``. Text a backend cannot turn into an image
raises ``SynthesisError``: the audit records it as a failed probe with this reason, it
never crashes.
"""

from __future__ import annotations

from typing import Protocol

from auditdm.records import Picture


class Synthesizer(Protocol):
    """Makes new images from a caption, or from an image and an edit command."""

    name: str

    def generate(self, caption: str, seed: int) -> Picture:
        """G: the image a caption describes."""
        ...

    def edit(self, picture: Picture, command: str, seed: int) -> Picture:
        """E: the image after an edit command."""
        ...
