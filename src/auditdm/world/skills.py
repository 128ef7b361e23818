"""Labelled examples for each skill: the data world models learn from and are tested on.

``sample_example(rng, skill)`` draws a scene and a question that exercises ``skill``, with
answers balanced where the form allows (yes/no, counts). Every example is checked by the
oracle: it is answerable and ``skill_of`` agrees with the skill it was drawn for.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from PIL import Image

from auditdm.world.grammar import ANSWER_NOTHING, SIZE_RELATIONS, SPATIAL_RELATIONS, Question, Ref
from auditdm.world.oracle import SKILLS, answer, matches, resolve, skill_of
from auditdm.world.render import render
from auditdm.world.sampling import random_item, random_scene, random_shape, unique_ref
from auditdm.world.scene import CELLS, COLORS, SHAPES, SIZES, TEXTURES, Arrow, Clock, Scene, Shape, Sign


@dataclass(frozen=True)
class Example:
    """A scene, a question about it, the oracle's answer and the skill it tests."""

    scene: Scene
    question: Question
    answer: str
    skill: str

    def image(self) -> Image.Image:
        return render(self.scene)


def _with(scene: Scene, cell: str, item: object) -> Scene:
    items = dict(scene.items)
    items[cell] = item  # type: ignore[assignment]
    return scene.with_items(items)


def _shape_cells(scene: Scene, tiny: bool) -> list[str]:
    return [c for c, i in scene.items.items() if isinstance(i, Shape) and (i.size == "tiny") == tiny]


def _attribute(rng: random.Random, scene: Scene, form: str, tiny: bool) -> Question | None:
    cells = _shape_cells(scene, tiny)
    if not cells:
        return None
    skip = {"color": "color", "shape": "shape", "pattern": "texture"}[form]
    ref = unique_ref(rng.choice(cells), scene, rng, skip=skip)
    if ref is None:
        return None
    # A tiny referent is named as tiny: the question is about finding the tiny thing.
    return Question(form, replace(ref, size="tiny") if tiny else ref)  # type: ignore[arg-type]


_SHAPE_ATTRIBUTES: dict[str, tuple[str, ...]] = {"size": SIZES, "color": tuple(COLORS), "texture": TEXTURES}


def _description(rng: random.Random, item: Shape) -> Ref:
    """A random description of a shape: its noun or "object", and any of its attributes.

    Questions name things in every way the grammar allows, so that no way of asking (an
    auditor's "is there a blue dotted star?") is one that no model has seen.
    """
    noun = item.shape if rng.random() < 0.7 else "object"
    attributes = {k: getattr(item, k) for k in _SHAPE_ATTRIBUTES if rng.random() < 0.4}
    if noun == "object" and not attributes:
        attributes["color"] = item.color
    return Ref(noun, **attributes)


def _counting(rng: random.Random, scene: Scene) -> Question:
    shapes = [item for item in scene.items.values() if isinstance(item, Shape)]
    if shapes and rng.random() < 0.5:
        return Question("count", _description(rng, rng.choice(shapes)))
    return Question("count", rng.choice([Ref(rng.choice(SHAPES)), Ref("object", color=rng.choice(list(COLORS)))]))


def _pair(rng: random.Random, scene: Scene, form: str) -> Question | None:
    cells = _shape_cells(scene, True) + _shape_cells(scene, False) if form == "compare_size" else list(scene.items)
    if len(cells) < 2:
        return None
    a, b = rng.sample(cells, 2)
    ref_a, ref_b = unique_ref(a, scene, rng), unique_ref(b, scene, rng)
    relations = SIZE_RELATIONS if form == "compare_size" else SPATIAL_RELATIONS
    return Question(form, ref_a, ref_b, rng.choice(relations)) if ref_a and ref_b else None  # type: ignore[arg-type]


def _hallucination(rng: random.Random, scene: Scene) -> Question | None:
    shapes = [item for item in scene.items.values() if isinstance(item, Shape)]
    if not shapes:
        return None
    item = rng.choice(shapes)
    ref = _description(rng, item)
    if rng.random() < 0.5:  # a near miss: one part of a real object's description, changed
        changed = [k for k in _SHAPE_ATTRIBUTES if getattr(ref, k) is not None]
        if ref.noun != "object":
            changed.append("noun")
        key = rng.choice(changed)
        values = SHAPES if key == "noun" else _SHAPE_ATTRIBUTES[key]
        ref = replace(ref, **{key: rng.choice([v for v in values if v != getattr(ref, key)])})
    return Question("exists", ref)


def _about(kind: type, form: str) -> Callable[[random.Random, Scene], Question | None]:
    def ask(rng: random.Random, scene: Scene) -> Question | None:
        cells = [c for c, i in scene.items.items() if isinstance(i, kind)]
        ref = unique_ref(rng.choice(cells), scene, rng) if cells else None
        return Question(form, ref) if ref else None  # type: ignore[arg-type]

    return ask


def _relationship(rng: random.Random, scene: Scene) -> Question | None:
    ref = unique_ref(rng.choice(list(scene.items)), scene, rng) if scene.items else None
    return Question("relation", ref, relation=rng.choice(SPATIAL_RELATIONS)) if ref else None


_ASK: dict[str, Callable[[random.Random, Scene], Question | None]] = {
    "color": lambda rng, scene: _attribute(rng, scene, "color", tiny=False),
    "shape": lambda rng, scene: _attribute(rng, scene, "shape", tiny=False),
    "texture": lambda rng, scene: _attribute(rng, scene, "pattern", tiny=False),
    "small_object": lambda rng, scene: _attribute(rng, scene, rng.choice(("color", "shape")), tiny=True),
    "distraction": lambda rng, scene: _attribute(rng, scene, rng.choice(("color", "shape")), tiny=False),
    "counting": _counting,
    "size": lambda rng, scene: _pair(rng, scene, "compare_size"),
    "spatial": lambda rng, scene: _pair(rng, scene, "spatial"),
    "hallucination": _hallucination,
    "weather": lambda rng, scene: Question(rng.choice(("weather", "day_night"))),
    "text": _about(Sign, "number"),
    "clock": _about(Clock, "time"),
    "direction": _about(Arrow, "direction"),
    "relationship": _relationship,
}
"""For each skill, a question of that skill about a given scene (None if it has no fit)."""
assert set(_ASK) == set(SKILLS)


def _prepare(rng: random.Random, skill: str) -> Scene:
    """A random scene in which ``skill`` can be asked about."""
    if skill == "distraction":
        return replace(random_scene(rng, n_items=(3, 7)), clutter="heavy")
    scene = random_scene(rng, n_items=(3, 7) if skill == "relationship" else (2, 6))
    needs = {"text": "sign", "clock": "clock", "direction": "arrow"}
    cell = rng.choice(CELLS)
    if skill in needs:
        return _with(scene, cell, random_item(rng, needs[skill]))
    if skill == "small_object":
        return _with(scene, cell, random_shape(rng, ("tiny",)))
    if skill in ("color", "shape", "texture"):
        return _with(scene, cell, random_shape(rng, ("small", "large")))
    return scene


def _counting_scene(rng: random.Random) -> tuple[Scene, Ref]:
    """A scene with 0 to 5 items of one kind, so that counts come out balanced."""
    target = rng.choice([Ref(rng.choice(SHAPES)), Ref("object", color=rng.choice(list(COLORS)))])
    count = rng.randint(0, 5)
    items = {}
    for i, cell in enumerate(rng.sample(CELLS, rng.randint(max(count, 2), 7))):
        while True:
            item = random_shape(rng, ("small", "large")) if rng.random() < 0.8 else random_item(rng)
            if i < count and isinstance(item, Shape):
                if target.noun in SHAPES:
                    item = replace(item, shape=target.noun)
                else:
                    item = replace(item, color=target.color or item.color)
            if (i < count) == matches(target, item):
                break
        items[cell] = item
    return random_scene(rng, n_items=(0, 0)).with_items(items), target


def ask(rng: random.Random, scene: Scene, skill: str) -> tuple[Question, str] | None:
    """A question of ``skill`` about ``scene`` and its answer, or None if none fits."""
    question = _ASK[skill](rng, scene)
    if question is None:
        return None
    truth = answer(question, scene)
    if truth.answer is None or skill_of(question, scene) != skill:
        return None
    return question, truth.answer


_BALANCED = {"size": ("yes", "no"), "spatial": ("yes", "no"), "hallucination": ("yes", "no")}


def sample_example(rng: random.Random, skill: str) -> Example:
    """One checked example of ``skill``; yes/no skills are balanced between the answers."""
    if skill == "counting":  # built around its question, so that counts come out balanced
        scene, target = _counting_scene(rng)
        question = Question("count", target)
        return Example(scene, question, str(len(resolve(target, scene))), skill)
    wanted = rng.choice(_BALANCED[skill]) if skill in _BALANCED else None
    for _ in range(200):
        scene = _prepare(rng, skill)
        asked = ask(rng, scene, skill)
        if asked is None or (wanted is not None and asked[1] != wanted):
            continue
        if skill == "relationship" and asked[1] == ANSWER_NOTHING and rng.random() < 0.75:
            continue  # keep "nothing" to about a third of relationship answers
        return Example(scene, asked[0], asked[1], skill)
    raise RuntimeError(f"could not sample an example of skill {skill!r}")


def _skill_chooser(rng: random.Random, weights: dict[str, float] | None) -> Callable[[], str]:
    skills = list(SKILLS)
    w = [(weights or {}).get(skill, 1.0) for skill in skills]
    return lambda: rng.choices(skills, weights=w)[0]


def dialogues(seed: int, turns: int, weights: dict[str, float] | None = None) -> Iterator[list[Example]]:
    """An endless stream of conversations: up to ``turns`` examples about one scene each.

    The first turn is a balanced example of a skill drawn by ``weights``; later turns ask about the
    same scene, with skills drawn by the same ``weights``. Rendering the image and encoding
    it once for several questions gives several times the supervision per step.
    """
    rng = random.Random(seed)
    choose = _skill_chooser(rng, weights)
    while True:
        first = sample_example(rng, choose())
        conversation, asked = [first], {first.question}
        for _ in range(3 * turns):
            if len(conversation) == turns:
                break
            skill = choose()
            found = ask(rng, first.scene, skill)
            if found is not None and found[0] not in asked:
                asked.add(found[0])
                conversation.append(Example(first.scene, found[0], found[1], skill))
        yield conversation


def benchmark(per_skill: int, seed: int = 2026) -> list[Example]:
    """A fixed held-out set: ``per_skill`` examples of every skill, drawn from ``seed``.

    Training streams use other seeds; the benchmark's seed is never used for training.
    """
    rng = random.Random(f"benchmark:{seed}")
    return [sample_example(rng, skill) for skill in SKILLS for _ in range(per_skill)]
