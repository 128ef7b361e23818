"""The embedded world as a ``Domain`` of the core (``backends.DOMAINS``): its audit images,
its grammar, its oracle, its held-out benchmark and its PNG scenes."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

from PIL import Image

from auditdm.records import Labelled, OracleCheck, Picture, SourceImage
from auditdm.records import Scene as AnyScene
from auditdm.world.oracle import SKILLS, answer, skill_of
from auditdm.world.parse import ParseError, parse_question
from auditdm.world.render import SceneMissingError, scene_of, scene_text
from auditdm.world.scene import Scene
from auditdm.world.skills import benchmark, sample_example


class WorldDomain:
    """The world: images rendered from scenes, checked exactly by the oracle."""

    name = "world"
    synthesizer = "world"

    def images(self, count: int, seed: int) -> list[SourceImage]:
        """World images with an original question each, drawn evenly over the skills from a
        stream of their own, apart from training data and the held-out benchmark."""
        rng = random.Random(f"audit-images:{seed}")
        examples = [sample_example(rng, SKILLS[i % len(SKILLS)]) for i in range(count)]
        return [
            SourceImage(f"world-{seed}-{i:04d}", Picture(e.image(), e.scene), e.question.text())
            for i, e in enumerate(examples)
        ]

    def question_error(self, question: str) -> str | None:
        try:
            parse_question(question)
        except ParseError as error:
            return f"outside the world's grammar ({error})"
        return None

    def check(self, question: str, scene: AnyScene) -> OracleCheck:
        assert isinstance(scene, Scene)
        try:
            parsed = parse_question(question)
        except ParseError:
            return OracleCheck("outside grammar", None, None)
        truth = answer(parsed, scene)
        return OracleCheck(truth.status, truth.answer, skill_of(parsed, scene))

    def benchmark(self, per_skill: int) -> list[Labelled]:
        return [Labelled(e.image(), e.question.text(), e.answer, e.skill) for e in benchmark(per_skill)]

    def recipe_data(self, card: dict[str, Any], seed: int) -> Iterator[Labelled] | None:
        from auditdm.world.zoo.cards import is_answering_recipe, recipe_examples

        return recipe_examples(card, seed) if is_answering_recipe(card) else None

    def references(self, card: dict[str, Any]) -> tuple[str, ...] | None:
        from auditdm.world.zoo.cards import default_references, is_answering_recipe

        return default_references() if is_answering_recipe(card) else None

    def png_text(self, scene: AnyScene) -> Mapping[str, str]:
        assert isinstance(scene, Scene)
        return scene_text(scene)

    def scene_in(self, image: Image.Image) -> Scene | None:
        try:
            return scene_of(image)
        except SceneMissingError:
            return None


WORLD = WorldDomain()
