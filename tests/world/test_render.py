from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from auditdm.world.render import IMAGE_SIZE, SceneMissingError, render, save_image, scene_of
from auditdm.world.scene import Arrow, Clock, Scene, Shape, Sign

SCENE = Scene(
    items={"top left": Shape("star", "red", "large", "striped"), "center": Clock(3, 30),
           "bottom right": Sign(42), "middle left": Arrow("up", "blue")},
    time_of_day="night", weather="rainy", clutter="light", seed=7,
)  # fmt: skip


def test_render_is_deterministic_and_sized() -> None:
    first, second = render(SCENE), render(SCENE)
    assert first.size == (IMAGE_SIZE, IMAGE_SIZE) and first.mode == "RGB"
    assert first.tobytes() == second.tobytes()


def test_seed_and_content_change_pixels() -> None:
    base = np.asarray(render(SCENE))
    assert not np.array_equal(base, np.asarray(render(replace(SCENE, seed=8))))
    other_clock = SCENE.with_items({**SCENE.items, "center": Clock(4, 30)})
    assert not np.array_equal(base, np.asarray(render(other_clock)))


def test_png_carries_its_scene(tmp_path) -> None:
    path = tmp_path / "scene.png"
    save_image(render(SCENE), SCENE, path)
    with Image.open(path) as image:
        assert scene_of(image) == SCENE
        assert image.convert("RGB").tobytes() == render(SCENE).tobytes()


def test_image_without_scene_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "photo.png"
    Image.new("RGB", (32, 32)).save(path)
    with pytest.raises(SceneMissingError, match="photo.png carries no world scene"):
        with Image.open(path) as image:
            scene_of(image, str(path))
