from dataclasses import replace

import numpy as np
import pytest

from auditdm.world.render import render
from auditdm.world.scene import CELLS, Arrow, Clock, Scene, Shape, Sign, cell_row_col
from auditdm.world.synth import edit_scene

SCENE = Scene(
    items={
        "top left": Shape("circle", "red", "large", "striped"),
        "top right": Clock(3, 0),
        "center": Shape("star", "yellow", "small"),
        "middle right": Sign(12),
        "bottom left": Arrow("up", "blue"),
    },
    seed=5,
)  # fmt: skip


def cell_pixels(scene: Scene, cell: str) -> np.ndarray:
    """The inside of a cell, away from its borders (resampling blurs a few pixels across)."""
    row, col = cell_row_col(cell)
    size = 128 / 3
    top, left = int(row * size) + 5, int(col * size) + 5
    return np.asarray(render(scene))[top : top + int(size) - 10, left : left + int(size) - 10]


@pytest.mark.parametrize(
    ("command", "changed_cells", "expected"),
    [
        ("make the circle blue", {"top left"}, {"top left": Shape("circle", "blue", "large", "striped")}),
        ("make the circle small", {"top left"}, {"top left": Shape("circle", "red", "small", "striped")}),
        ("make the circle dotted", {"top left"}, {"top left": Shape("circle", "red", "large", "dotted")}),
        ("remove the star", {"center"}, {"center": None}),
        ("move the star to the bottom right", {"center", "bottom right"},
         {"center": None, "bottom right": Shape("star", "yellow", "small")}),
        ("replace the star with a green small square", {"center"}, {"center": Shape("square", "green", "small")}),
        ("add a tiny purple diamond at the bottom middle", {"bottom middle"},
         {"bottom middle": Shape("diamond", "purple", "tiny")}),
        ("set the clock to 9:30", {"top right"}, {"top right": Clock(9, 30)}),
        ("change the sign to 77", {"middle right"}, {"middle right": Sign(77)}),
        ("make the arrow point left", {"bottom left"}, {"bottom left": Arrow("left", "blue")}),
    ],
)  # fmt: skip
def test_item_edits_change_what_they_say_and_nothing_else(command, changed_cells, expected) -> None:
    after = edit_scene(SCENE, command)
    for cell in CELLS:
        if cell in expected:
            assert after.items.get(cell) == expected[cell]
        else:
            assert after.items.get(cell) == SCENE.items.get(cell)
    assert (after.time_of_day, after.weather, after.clutter, after.seed) == (
        SCENE.time_of_day, SCENE.weather, SCENE.clutter, SCENE.seed)  # fmt: skip
    for cell in CELLS:
        same = np.array_equal(cell_pixels(SCENE, cell), cell_pixels(after, cell))
        assert same == (cell not in changed_cells), cell


@pytest.mark.parametrize(
    ("command", "field", "value"),
    [("make it night", "time_of_day", "night"), ("make it foggy", "weather", "foggy"),
     ("add heavy clutter", "clutter", "heavy"), ("remove the clutter", "clutter", "none")],
)  # fmt: skip
def test_atmosphere_edits_keep_every_item(command, field, value) -> None:
    start = replace(SCENE, clutter="light")
    after = edit_scene(start, command)
    assert getattr(after, field) == value and after.items == start.items


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("remove the triangle", "there is no triangle"),
        ("make the object green", "2 items match"),
        ("add a red circle at the center", "already taken"),
        ("move the star to the top left", "already taken"),
        ("make the arrow large", "an arrow cannot be changed that way"),
        ("make the clock red", "a clock cannot be changed that way"),
    ],
)
def test_edits_that_cannot_apply_say_why(command, message) -> None:
    with pytest.raises(ValueError, match=message):
        edit_scene(SCENE, command)

