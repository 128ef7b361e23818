"""The images an audit probes: a fixed set of world images, or a folder of the user's own.

World images come with their scene (so the oracle can verify probes) and an original
question Q drawn evenly over the skills. A folder's images have neither: only the pairings
with a new question apply to them.
"""

from __future__ import annotations

import random
from pathlib import Path

from auditdm.errors import UserError
from auditdm.records import Picture, SourceImage

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def world_images(count: int, seed: int = 0) -> list[SourceImage]:
    """``count`` world images, each with an original question, the same for the same seed.

    Drawn from a stream of their own, apart from training data and the held-out benchmark.
    """
    from auditdm.world.oracle import SKILLS
    from auditdm.world.skills import sample_example

    rng = random.Random(f"audit-images:{seed}")
    examples = [sample_example(rng, SKILLS[i % len(SKILLS)]) for i in range(count)]
    return [
        SourceImage(f"world-{seed}-{i:04d}", Picture(e.image(), e.scene), e.question.text())
        for i, e in enumerate(examples)
    ]


def read_picture(path: Path) -> Picture:
    """The image at ``path`` as RGB, with its world scene when it is a world PNG.

    Raises PIL's ``UnidentifiedImageError`` or ``OSError`` for a file that is no image.
    """
    from PIL import Image

    from auditdm.world.render import SceneMissingError, scene_of

    with Image.open(path) as opened:
        opened.load()
        try:
            scene = scene_of(opened, str(path))
        except SceneMissingError:
            scene = None
        return Picture(opened.convert("RGB"), scene)


def folder_images(folder: Path) -> list[SourceImage]:
    """Every image in ``folder`` (not recursive), in name order.

    A file that is not a readable image is an error naming it: an audit should not quietly
    skip part of what it was given. World PNGs keep their scene and can be verified.
    """
    from PIL import UnidentifiedImageError

    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise UserError(f"{folder}: the folder has no files (expected images: {', '.join(IMAGE_SUFFIXES)})")
    sources = []
    for path in files:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{path}: not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})")
        try:
            sources.append(SourceImage(path.name, read_picture(path)))
        except (UnidentifiedImageError, OSError) as error:
            raise UserError(f"{path}: not a readable image ({error})") from None
    return sources
