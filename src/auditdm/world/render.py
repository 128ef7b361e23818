"""Render scenes to images, and carry the scene inside the PNG.

Drawing happens at twice the output size and is downsampled, so edges are anti-aliased
the same way on every machine. Randomness (stars, clutter, rain) comes only from
``scene.seed``: the same scene always gives the same pixels.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import IO

from PIL import Image, ImageChops, ImageDraw, ImageFont, PngImagePlugin

from auditdm.errors import UserError
from auditdm.world.scene import (
    CLUTTER_LEVELS,
    COLORS,
    Arrow,
    Clock,
    Item,
    Scene,
    Shape,
    Sign,
    cell_row_col,
)

IMAGE_SIZE = 128
_SCALE = 2
_CANVAS = IMAGE_SIZE * _SCALE
_CELL = _CANVAS / 3
_SIZE_PX = {"tiny": 9, "small": 22, "large": 36}  # at output resolution
_SKY = {"day": (196, 218, 238), "night": (22, 28, 58)}
_SCENE_KEY = "auditdm-scene"


class SceneMissingError(UserError):
    """An image carries no world scene, so the world cannot edit or check it."""


class SceneDamagedError(UserError):
    """An image's world-scene metadata is not a scene the world can draw."""


def render(scene: Scene) -> Image.Image:
    """Draw ``scene`` as a ``IMAGE_SIZE`` x ``IMAGE_SIZE`` RGB image."""
    canvas = Image.new("RGB", (_CANVAS, _CANVAS), _SKY[scene.time_of_day])
    draw = ImageDraw.Draw(canvas)
    # One random stream per concern, so an edit to one cell moves nothing in another.
    if scene.time_of_day == "night":
        rng = random.Random(f"{scene.seed}:stars")
        for _ in range(12):
            x, y = rng.uniform(0, _CANVAS), rng.uniform(0, _CANVAS)
            draw.point((x, y), fill=(200, 200, 170))
    _draw_clutter(draw, random.Random(f"{scene.seed}:clutter"), CLUTTER_LEVELS[scene.clutter])
    for cell, item in scene.items.items():
        _draw_item(canvas, item, _cell_center(cell))
    _draw_weather(canvas, scene.weather, random.Random(f"{scene.seed}:weather"))
    return canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)


def _cell_center(cell: str) -> tuple[float, float]:
    # Items sit at the centre of their cell: cells then align with the patch grids of
    # models whose input side is a multiple of three patches (48, 96, 144 px).
    row, col = cell_row_col(cell)
    return (col + 0.5) * _CELL, (row + 0.5) * _CELL


def _draw_clutter(draw: ImageDraw.ImageDraw, rng: random.Random, strokes: int) -> None:
    palette = list(COLORS.values()) + [(120, 120, 120), (250, 250, 250)]
    for _ in range(strokes):
        x, y = rng.uniform(0, _CANVAS), rng.uniform(0, _CANVAS)
        angle, length = rng.uniform(0, math.pi), rng.uniform(8, 26)
        end = (x + length * math.cos(angle), y + length * math.sin(angle))
        draw.line([(x, y), end], fill=rng.choice(palette), width=2)


def _draw_weather(canvas: Image.Image, weather: str, rng: random.Random) -> None:
    draw = ImageDraw.Draw(canvas)
    if weather == "rainy":
        for _ in range(70):
            x, y = rng.uniform(-20, _CANVAS), rng.uniform(-20, _CANVAS)
            draw.line([(x, y), (x + 6, y + 18)], fill=(150, 170, 200), width=2)
    elif weather == "snowy":
        for _ in range(90):
            x, y = rng.uniform(0, _CANVAS), rng.uniform(0, _CANVAS)
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=(255, 255, 255))
    elif weather == "foggy":
        fog = Image.new("RGB", canvas.size, (185, 185, 190))
        canvas.paste(Image.blend(canvas, fog, 0.45))


def _draw_item(canvas: Image.Image, item: Item, center: tuple[float, float]) -> None:
    if isinstance(item, Shape):
        _draw_shape(canvas, item, center)
    elif isinstance(item, Clock):
        _draw_clock(ImageDraw.Draw(canvas), item, center)
    elif isinstance(item, Sign):
        _draw_sign(ImageDraw.Draw(canvas), item, center)
    else:
        _draw_arrow(ImageDraw.Draw(canvas), item, center)


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r * 1.25), (cx + r * 0.9, cy), (cx, cy + r * 1.25), (cx - r * 0.9, cy)]
    if shape == "triangle":
        return [(cx, cy - r * 1.1), (cx + r * 1.1, cy + r * 0.85), (cx - r * 1.1, cy + r * 0.85)]
    if shape == "star":
        points = []
        for k in range(10):
            radius = r * 1.2 if k % 2 == 0 else r * 0.5
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        return points
    raise ValueError(f"no polygon for {shape!r}")


def _draw_shape(canvas: Image.Image, item: Shape, center: tuple[float, float]) -> None:
    cx, cy = center
    r = _SIZE_PX[item.size] * _SCALE / 2
    mask = Image.new("L", canvas.size, 0)
    mask_draw = ImageDraw.Draw(mask)
    if item.shape == "circle":
        mask_draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        mask_draw.polygon(_shape_polygon(item.shape, cx, cy, r), fill=255)
    canvas.paste(_texture_fill(item, canvas.size, center, r), (0, 0), mask)


def _texture_fill(
    item: Shape, size: tuple[int, int], center: tuple[float, float], r: float
) -> Image.Image:
    """A full-canvas fill of the item's colour and texture, anchored on the item."""
    base = COLORS[item.color]
    accent = tuple(int(c * 0.35 + 255 * 0.65) for c in base)
    fill = Image.new("RGB", size, base)
    if item.texture == "plain":
        return fill
    draw = ImageDraw.Draw(fill)
    x0, y0 = center[0] - r * 1.3, center[1] - r * 1.3
    step = max(6.0, r / 2.2)
    span = int(2.6 * r / step) + 2
    for i in range(span):
        for j in range(span):
            x, y = x0 + i * step, y0 + j * step
            if item.texture == "checkered" and (i + j) % 2 == 0:
                draw.rectangle([x, y, x + step, y + step], fill=accent)
            elif item.texture == "dotted":
                d = step * 0.28
                draw.ellipse([x + step / 2 - d, y + step / 2 - d, x + step / 2 + d, y + step / 2 + d],
                             fill=accent)  # fmt: skip
        if item.texture == "striped" and i % 2 == 0:
            draw.rectangle([x0, y0 + i * step, x0 + span * step, y0 + (i + 0.5) * step], fill=accent)
    return fill


def _draw_clock(draw: ImageDraw.ImageDraw, clock: Clock, center: tuple[float, float]) -> None:
    cx, cy = center
    r = 19 * _SCALE
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(250, 250, 245), outline=(30, 30, 30),
                 width=3)  # fmt: skip
    for tick in range(12):
        a = tick * math.pi / 6
        inner = r * (0.78 if tick % 3 == 0 else 0.86)
        draw.line([(cx + inner * math.sin(a), cy - inner * math.cos(a)),
                   (cx + r * 0.95 * math.sin(a), cy - r * 0.95 * math.cos(a))],
                  fill=(60, 60, 60), width=2)  # fmt: skip
    minute_angle = clock.minute / 60 * 2 * math.pi
    hour_angle = ((clock.hour % 12) + clock.minute / 60) / 12 * 2 * math.pi
    for angle, length, width in ((hour_angle, 0.5, 6), (minute_angle, 0.82, 3)):
        tip = (cx + r * length * math.sin(angle), cy - r * length * math.cos(angle))
        draw.line([(cx, cy), tip], fill=(20, 20, 20), width=width)


_FONT: ImageFont.FreeTypeFont | ImageFont.ImageFont | None = None


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    global _FONT  # one font object for the process; loading it costs more than drawing
    if _FONT is None:
        _FONT = ImageFont.load_default(size=13 * _SCALE)
    return _FONT


def _draw_sign(draw: ImageDraw.ImageDraw, sign: Sign, center: tuple[float, float]) -> None:
    cx, cy = center
    w, h = 17 * _SCALE, 11 * _SCALE
    draw.line([(cx, cy + h), (cx, cy + h + 8 * _SCALE)], fill=(110, 80, 50), width=4)
    draw.rectangle([cx - w, cy - h, cx + w, cy + h], fill=(250, 250, 250), outline=(40, 40, 40),
                   width=3)  # fmt: skip
    draw.text((cx, cy), str(sign.number), fill=(10, 10, 10), font=_font(), anchor="mm")


def _draw_arrow(draw: ImageDraw.ImageDraw, arrow: Arrow, center: tuple[float, float]) -> None:
    cx, cy = center
    s = 15 * _SCALE
    # An arrow pointing right, rotated into place.
    outline = [(-s, -s * 0.3), (s * 0.2, -s * 0.3), (s * 0.2, -s * 0.7), (s, 0),
               (s * 0.2, s * 0.7), (s * 0.2, s * 0.3), (-s, s * 0.3)]  # fmt: skip
    rotation = {"right": 0.0, "down": math.pi / 2, "left": math.pi, "up": -math.pi / 2}
    a = rotation[arrow.direction]
    points = [(cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a))
              for x, y in outline]  # fmt: skip
    draw.polygon(points, fill=COLORS[arrow.color], outline=(20, 20, 20))


def scene_text(scene: Scene) -> dict[str, str]:
    """The PNG text chunk that carries a scene inside a world image."""
    return {_SCENE_KEY: json.dumps(scene.to_dict(), sort_keys=True)}


def save_image(image: Image.Image, scene: Scene, path: str | Path | IO[bytes]) -> None:
    """Write a PNG that carries its scene as text metadata, so the world can edit it later."""
    info = PngImagePlugin.PngInfo()
    for key, value in scene_text(scene).items():
        info.add_text(key, value)
    image.save(path, format="PNG", pnginfo=info)


def scene_of(image: Image.Image, source: str = "the image") -> Scene:
    """The scene stored in a world PNG whose pixels are that scene's render.

    ``SceneMissingError`` for any other image, one edited elsewhere included (its metadata no
    longer says what it shows, so the oracle cannot vouch for it); ``SceneDamagedError`` for
    metadata that is no scene.
    """
    raw = getattr(image, "text", {}).get(_SCENE_KEY) if hasattr(image, "text") else None
    if raw is None:
        raise SceneMissingError(
            f"{source} carries no world scene (only PNGs written by the world renderer do), "
            "so it cannot be edited or checked by the oracle"
        )
    try:
        scene = Scene.from_dict(json.loads(raw))
        drawn = render(scene)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SceneDamagedError(f"{source} carries a damaged world scene ({type(error).__name__}: {error})") from None
    if image.size != drawn.size or ImageChops.difference(image.convert("RGB"), drawn).getbbox() is not None:
        raise SceneMissingError(
            f"{source} carries a world scene, but its pixels are not that scene's (edited elsewhere?), "
            "so it cannot be edited or checked by the oracle"
        )
    return scene
