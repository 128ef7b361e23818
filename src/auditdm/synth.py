"""Image synthesis: the generator G (caption -> image) and editor E (image, command -> image).

The paper uses FLUX.1-dev and FLUX.1-Kontext through diffusers; the embedded world uses its
renderer, whose images carry their scene. A backend is named by a string (``world``).
Text the backend cannot turn into an image raises ``SynthesisError``: the audit records it
as a failed probe with this reason, it never crashes.
"""

from __future__ import annotations

from typing import Protocol

from auditdm.errors import UserError
from auditdm.records import Picture


class SynthesisError(UserError):
    """A caption or edit command that cannot become an image; the message says why."""


class Synthesizer(Protocol):
    """Makes new images from a caption, or from an image and an edit command."""

    name: str

    def generate(self, caption: str, seed: int) -> Picture:
        """G: the image a caption describes."""
        ...

    def edit(self, picture: Picture, command: str, seed: int) -> Picture:
        """E: the image after an edit command."""
        ...


class WorldSynthesizer:
    """The world's G and E: parse the text, then render the scene it describes."""

    name = "world"

    def generate(self, caption: str, seed: int) -> Picture:
        from auditdm.world.synth import generate

        try:
            image, scene = generate(caption, seed=seed)
        except UserError as error:  # ParseError, GenerationError
            raise SynthesisError(str(error)) from None
        return Picture(image, scene)

    def edit(self, picture: Picture, command: str, seed: int) -> Picture:
        from auditdm.world.render import render
        from auditdm.world.synth import edit_scene

        if picture.scene is None:
            raise SynthesisError("the world editor can only edit world images (this one carries no scene)")
        try:
            scene = edit_scene(picture.scene, command, seed=seed)
        except UserError as error:  # ParseError, EditError
            raise SynthesisError(str(error)) from None
        return Picture(render(scene), scene)


BACKENDS = ("world",)


def load_synthesizer(spec: str) -> Synthesizer:
    """The synthesizer a name gives; ``world`` is the only built-in backend."""
    if spec == "world":
        return WorldSynthesizer()
    raise UserError(f"unknown image synthesis backend {spec!r} (have: {', '.join(BACKENDS)})")
