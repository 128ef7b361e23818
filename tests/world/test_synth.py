import pytest
from PIL import Image

from auditdm.world.oracle import answer
from auditdm.world.parse import ParseError, parse_question
from auditdm.world.render import SceneMissingError, render, save_image
from auditdm.world.synth import GenerationError, edit, generate

CAPTION = ("a large red striped circle at the top left, a clock showing 3:30 at the center "
           "and a sign reading 42 at the bottom right on a rainy night with light clutter.")  # fmt: skip


def test_generated_image_shows_what_the_caption_says() -> None:
    image, scene = generate(CAPTION)
    assert image.size == (128, 128)
    for question, expected in [
        ("what color is the circle", "red"), ("what pattern is on the circle", "striped"),
        ("what time does the clock show", "3:30"), ("what number is on the sign", "42"),
        ("what is the weather", "rainy"), ("is it day or night", "night"),
        ("how many objects are there", "1"),
    ]:  # fmt: skip
        assert answer(parse_question(question), scene).answer == expected
    assert scene.clutter == "light"


def test_generation_fills_the_unsaid_deterministically() -> None:
    first, second = generate("a circle at the center"), generate("a circle at the center")
    assert first[1] == second[1] and first[0].tobytes() == second[0].tobytes()
    colors = {generate("a circle at the center", seed=s)[1].items["center"].color for s in range(20)}
    assert len(colors) > 1


def test_bad_captions_fail_clearly() -> None:
    with pytest.raises(ParseError):
        generate("a photo of a cat")
    with pytest.raises(GenerationError, match="two items at the center"):
        generate("a circle at the center and a square at the center")


def test_edit_works_on_world_pngs_only(tmp_path) -> None:
    image, scene = generate(CAPTION)
    path = tmp_path / "world.png"
    save_image(image, scene, path)
    with Image.open(path) as loaded:
        edited, new_scene = edit(loaded, "set the clock to 9:00")
    assert new_scene.items["center"].time == "9:00"
    assert edited.tobytes() == render(new_scene).tobytes()
    with pytest.raises(SceneMissingError):
        edit(Image.new("RGB", (64, 64)), "make it day")
