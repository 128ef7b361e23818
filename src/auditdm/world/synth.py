"""The world's image generator G (caption -> image) and editor E (image, command -> image).

They stand in for FLUX.1-dev and FLUX.1-Kontext: text in, picture out, and, like them,
they fill in whatever the text leaves unsaid. Unlike them, the result's scene is known.
``WorldSynthesizer`` is the pair as the audit's ``Synthesizer``; ``check`` and ``load`` make
it the ``world`` synthesis backend (``backends.SYNTHESIZERS``), in either role.
"""

from __future__ import annotations

import random
import zlib

from PIL import Image

from auditdm.errors import SynthesisError, UserError
from auditdm.records import Picture
from auditdm.synth import Role, SynthesisOptions
from auditdm.world.edit import apply_edit
from auditdm.world.parse import parse_caption, parse_edit
from auditdm.world.render import render, scene_of
from auditdm.world.sampling import realize
from auditdm.world.scene import Scene


class GenerationError(UserError):
    """A caption that parses but describes an impossible scene (two items in one place)."""


def _rng(text: str, seed: int) -> random.Random:
    return random.Random(zlib.crc32(" ".join(text.lower().split()).encode()) ^ seed)


def scene_from_caption(caption: str, seed: int = 0) -> Scene:
    """Parse ``caption`` and fill what it leaves unsaid, deterministically from ``seed``."""
    parsed = parse_caption(caption)
    rng = _rng(caption, seed)
    items = {}
    for cell, spec in parsed.placements:
        if cell in items:
            raise GenerationError(f"{caption!r} puts two items at the {cell}")
        items[cell] = realize(spec, rng)
    return Scene(
        time_of_day=parsed.time_of_day or rng.choice(("day", "night")),
        weather=parsed.weather or "clear",
        clutter=parsed.clutter or "none",
        seed=rng.randrange(2**31),
    ).with_items(items)


def generate(caption: str, seed: int = 0) -> tuple[Image.Image, Scene]:
    """G: draw the image a caption describes."""
    scene = scene_from_caption(caption, seed)
    return render(scene), scene


def edit_scene(scene: Scene, command: str, seed: int = 0) -> Scene:
    """E on scenes: apply a parsed edit command."""
    return apply_edit(scene, parse_edit(command), _rng(command, seed ^ scene.seed))


def edit(image: Image.Image, command: str, seed: int = 0, source: str = "image") -> tuple[Image.Image, Scene]:
    """E: apply an editing command to a world image (one that carries its scene)."""
    scene = edit_scene(scene_of(image, source), command, seed)
    return render(scene), scene


class WorldSynthesizer:
    """The world's G and E as a synthesizer: text the world cannot draw is a SynthesisError."""

    name = "world"

    def generate(self, caption: str, seed: int) -> Picture:
        try:
            image, scene = generate(caption, seed=seed)
        except UserError as error:  # ParseError, GenerationError
            raise SynthesisError(str(error)) from None
        return Picture(image, scene)

    def edit(self, picture: Picture, command: str, seed: int) -> Picture:
        if not isinstance(picture.scene, Scene):
            raise SynthesisError("the world editor can only edit world images (this one carries no scene)")
        try:
            scene = edit_scene(picture.scene, command, seed=seed)
        except UserError as error:  # ParseError, EditError
            raise SynthesisError(str(error)) from None
        return Picture(render(scene), scene)


def check(name: str, role: Role) -> None:
    """The world backend is one renderer: it takes no name."""
    if name:
        raise UserError(f"--{role} world:{name}: the world's renderer takes no name (give --{role} world)")


def load(name: str, role: Role, options: SynthesisOptions) -> WorldSynthesizer:
    """The renderer as G or E; it runs on the CPU in no time, so ``options`` change nothing."""
    check(name, role)
    return WorldSynthesizer()
