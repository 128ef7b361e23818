"""Which auditor questions are valid probes: the same rule for the audit and the GRPO reward."""

from __future__ import annotations

from auditdm.questions import question_error
from auditdm.records import Picture
from auditdm.world.domain import WORLD


def test_a_world_image_takes_only_questions_in_the_world_grammar() -> None:
    picture = WORLD.images(1, seed=3)[0].picture
    assert question_error("how many circles are there ?", picture) is None
    error = question_error("how many green objects are question at", picture)
    assert error is not None and "outside the world's grammar" in error and "'are there'" in error


def test_any_question_about_an_image_without_a_scene_is_valid_if_not_empty() -> None:
    picture = Picture(WORLD.images(1, seed=3)[0].picture.image)
    assert question_error("what brand is the laptop on the desk?", picture) is None
    assert question_error("  ", picture) == "invalid question: the auditor wrote nothing"
