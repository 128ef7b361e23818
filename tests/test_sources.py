"""Image files as the audit reads them: every mode intact, bombs refused, scenes trusted only
when the pixels are theirs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from auditdm.errors import UserError
from auditdm.sources import folder_images, read_picture
from auditdm.world.render import save_image, scene_text
from auditdm.world.synth import generate

GRADIENT = np.tile(np.linspace(0, 1, 64), (32, 1))  # dark on the left, light on the right


def gradient(mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray((GRADIENT * 65535).astype(np.uint16))
    if mode == "I":
        return Image.fromarray((GRADIENT * 65535).astype(np.int32), "I")
    if mode == "F":
        return Image.fromarray(GRADIENT.astype(np.float32), "F")
    gray = Image.fromarray((GRADIENT * 255).astype(np.uint8), "L")
    if mode == "LAB":
        return Image.merge("LAB", (gray, Image.new("L", gray.size, 128), Image.new("L", gray.size, 128)))
    if mode == "PA":
        return gray.convert("P").convert("PA")
    return gray.convert(mode)


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("1", "PNG"), ("L", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("PA", "TIFF"), ("RGB", "PNG"), ("RGBA", "PNG"),
     ("CMYK", "TIFF"), ("YCbCr", "TIFF"), ("LAB", "TIFF"), ("I", "TIFF"), ("I;16", "PNG"), ("F", "TIFF")],
)  # fmt: skip
def test_every_image_mode_reaches_the_models_intact(tmp_path, mode, fmt) -> None:
    path = tmp_path / f"image.{fmt.lower()}"
    gradient(mode).save(path, format=fmt)
    assert Image.open(path).mode == mode
    rgb = np.asarray(read_picture(path).image, dtype=float)
    assert rgb.shape == (32, 64, 3)
    assert rgb[:, :8].mean() < 30 and rgb[:, -8:].mean() > 225  # scaled, not clipped to white or black


def test_transparency_is_laid_on_white(tmp_path) -> None:
    path = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(path)
    assert np.asarray(read_picture(path).image).min() == 255


def test_a_decompression_bomb_is_named_not_decoded(tmp_path) -> None:
    path = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(path)  # 48 KB on disk, 400 M pixels
    with pytest.raises(UserError, match="bomb.png: over .* pixels, Pillow's limit against decompression bombs"):
        read_picture(path)


def world_png(path, **changes) -> None:
    image, scene = generate("a large red circle at the top left, a clock showing 3:30 at the center")
    info = PngImagePlugin.PngInfo()
    text = json.loads(scene_text(scene)["auditdm-scene"])
    info.add_text("auditdm-scene", changes.get("raw") or json.dumps({**text, **changes.get("scene", {})}))
    changes.get("draw", lambda im: None)(image)
    image.save(path, pnginfo=info)


def test_a_world_scene_is_trusted_only_with_its_own_pixels(tmp_path) -> None:
    image, scene = generate("a large red circle at the top left on a clear day")
    save_image(image, scene, tmp_path / "world.png")
    assert read_picture(tmp_path / "world.png").scene == scene
    painted = tmp_path / "painted.png"
    world_png(painted, draw=lambda im: im.putpixel((40, 40), (1, 2, 3)))  # one pixel changed elsewhere
    assert read_picture(painted).scene is None  # an ordinary image now: not verified by the oracle
    other = tmp_path / "other.png"
    world_png(other, scene={"weather": "snowy"})  # metadata that says something the pixels do not show
    assert read_picture(other).scene is None


@pytest.mark.parametrize("raw", ["{not json", json.dumps({"items": {"center": {"kind": "dragon"}}})])
def test_a_damaged_scene_is_named(tmp_path, raw) -> None:
    world_png(tmp_path / "damaged.png", raw=raw)
    with pytest.raises(UserError, match="damaged.png: the image carries a damaged world scene"):
        folder_images(tmp_path)
