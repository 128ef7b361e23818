"""The images to probe: an embedded domain's images, or a folder of the user's own; and
image files that carry a domain's scene.

A domain's images come with their scene (so the oracle can verify probes) and an original
question Q. A folder's images have neither, unless they are PNGs a domain wrote: only the
pairings with a new question apply to them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from auditdm.backends import DOMAINS, domain_of, load_domain
from auditdm.errors import UserError
from auditdm.records import Picture, Scene, SourceImage

if TYPE_CHECKING:
    from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def load_sources(folder: str | Path | None, domain: str, count: int, seed: int,
                 limit: int | None = None) -> list[SourceImage]:  # fmt: skip
    """The images of ``folder`` (at most ``limit``), or else ``count`` images of ``domain``
    drawn from ``seed``."""
    if folder is not None:
        return folder_images(Path(folder), limit)
    return load_domain(domain).images(count, seed)


def scene_in(image: Image.Image) -> Scene | None:
    """The scene an image file carries, by whichever domain wrote it; None for a plain image."""
    if not getattr(image, "text", None):  # only PNG text chunks carry scenes
        return None
    for name in DOMAINS:
        scene = load_domain(name).scene_in(image)
        if scene is not None:
            return scene
    return None


def open_image(path: Path) -> Image.Image:
    """The image file at ``path``, decoded, as stored (its mode, its PNG text); one line
    naming the file for a missing one, one that is no image, or one too large to decode safely."""
    return _decode(path, str(path))


def decode_image(data: bytes, name: str) -> Image.Image:
    """An image held in memory (a dataset's cell), decoded as ``open_image`` decodes a file;
    errors name it as ``name``."""
    return _decode(io.BytesIO(data), name)


def _decode(source: Path | IO[bytes], name: str) -> Image.Image:
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow only warns between its limit and twice it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as opened:
                opened.load()
                return opened
    except FileNotFoundError:
        raise UserError(f"{name}: no such file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"{name}: over {Image.MAX_IMAGE_PIXELS:,} pixels, Pillow's limit against decompression "
                        "bombs; downscale it") from None  # fmt: skip
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"{name}: not a readable image ({error})") from None


def read_picture(path: Path) -> Picture:
    """The image at ``path`` as RGB, with its scene when a domain wrote it (errors as
    ``open_image``'s, and for a damaged scene)."""
    image = open_image(path)
    try:
        return Picture(to_rgb(image), scene_in(image))
    except UserError as error:
        raise UserError(f"{path}: {error}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """An image of any mode Pillow opens as 8-bit RGB with its content intact: 16-bit and
    float images scaled (not clipped) to 0-255, transparent ones laid on white."""
    from PIL import Image

    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64)
        low, high = min(float(values.min()), 0.0), float(values.max())
        if image.mode.startswith("I;16") or 255 < high <= 65535:
            low, high = 0.0, 65535.0
        elif image.mode == "F" and high <= 1.0:
            high = 1.0
        elif high <= 255:
            high = 255.0
        scaled = (values - low) / max(high - low, 1e-12) * 255
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def png_bytes(picture: Picture) -> bytes:
    """A picture as PNG, carrying its scene when it has one (so it can be read back whole)."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if picture.scene is not None:
        for key, value in domain_of(picture.scene).png_text(picture.scene).items():
            info.add_text(key, value)
    buffer = io.BytesIO()
    picture.image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def folder_images(folder: Path, limit: int | None = None) -> list[SourceImage]:
    """Every image in ``folder`` (not recursive), in name order; the first ``limit`` only,
    the rest not even opened.

    A file that is not a readable image is an error naming it: an audit should not quietly
    skip part of what it was given. PNGs a domain wrote keep their scene and can be verified.
    """
    if folder.is_file():
        raise UserError(f"{folder} is a file: --images takes a folder of images")
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    broken = sorted(p.name for p in folder.iterdir() if p.is_symlink() and not p.exists())
    if broken:
        raise UserError(f"{folder / broken[0]}: a link to nothing (the audit would silently skip it)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))[:limit]
    if not files:
        raise UserError(f"{folder}: the folder has no files (expected images: {', '.join(IMAGE_SUFFIXES)})")
    sources = []
    for path in files:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{path}: not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})")
        sources.append(SourceImage(path.name, read_picture(path)))
    return sources
