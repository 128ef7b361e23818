"""Random scenes, and the captions and edit commands that describe or change them.

Used to make training data for world models and the auditor's warm start, and by the
world generator to fill in what a caption leaves unsaid.
"""

from __future__ import annotations

import random

from auditdm.world.grammar import Caption, Edit, ItemSpec, Ref
from auditdm.world.oracle import resolve
from auditdm.world.scene import (
    CELLS,
    CLUTTER_LEVELS,
    COLORS,
    DIRECTIONS,
    HOURS,
    MINUTES,
    SHAPES,
    SIGN_NUMBERS,
    SIZES,
    TEXTURES,
    TIMES_OF_DAY,
    WEATHERS,
    Arrow,
    Clock,
    Item,
    Scene,
    Shape,
    Sign,
    format_time,
)

_KIND_WEIGHTS = {"shape": 0.7, "clock": 0.1, "sign": 0.1, "arrow": 0.1}
_SHAPE_SIZES = {"tiny": 0.2, "small": 0.4, "large": 0.4}


def random_shape(rng: random.Random, sizes: tuple[str, ...] | None = None) -> Shape:
    size = rng.choice(sizes) if sizes else _weighted(rng, _SHAPE_SIZES)
    return Shape(rng.choice(SHAPES), rng.choice(list(COLORS)), size, rng.choice(TEXTURES))


def random_item(rng: random.Random, kind: str | None = None) -> Item:
    kind = kind or _weighted(rng, _KIND_WEIGHTS)
    if kind == "clock":
        return Clock(rng.choice(HOURS), rng.choice(MINUTES))
    if kind == "sign":
        return Sign(rng.choice(SIGN_NUMBERS))
    if kind == "arrow":
        return Arrow(rng.choice(DIRECTIONS), rng.choice(list(COLORS)))
    return random_shape(rng)


def random_scene(
    rng: random.Random,
    n_items: tuple[int, int] = (2, 6),
    clutter: tuple[str, ...] = ("none", "none", "light"),
) -> Scene:
    """A scene with ``n_items`` random items in random cells and a random atmosphere."""
    cells = rng.sample(CELLS, rng.randint(*n_items))
    items = {cell: random_item(rng) for cell in cells}
    return Scene(
        time_of_day=rng.choice(TIMES_OF_DAY),
        weather=rng.choice(WEATHERS),
        clutter=rng.choice(clutter),
        seed=rng.randrange(2**31),
    ).with_items(items)


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def realize(spec: ItemSpec, rng: random.Random) -> Item:
    """An item that fits ``spec``, with what it leaves unsaid drawn from ``rng``."""
    if spec.noun == "clock":
        hour, minute = (int(p) for p in spec.time.split(":")) if spec.time else (None, None)
        return Clock(hour or rng.choice(HOURS), minute if minute is not None else rng.choice(MINUTES))
    if spec.noun == "sign":
        return Sign(spec.number if spec.number is not None else rng.choice(SIGN_NUMBERS))
    if spec.noun == "arrow":
        return Arrow(spec.direction or rng.choice(DIRECTIONS), spec.color or rng.choice(list(COLORS)))
    return Shape(
        shape=spec.noun if spec.noun in SHAPES else rng.choice(SHAPES),
        color=spec.color or rng.choice(list(COLORS)),
        size=spec.size or rng.choice(SIZES),
        texture=spec.texture or "plain",
    )


def spec_of(item: Item) -> ItemSpec:
    """The full description of an item."""
    if isinstance(item, Clock):
        return ItemSpec("clock", time=item.time)
    if isinstance(item, Sign):
        return ItemSpec("sign", number=item.number)
    if isinstance(item, Arrow):
        return ItemSpec("arrow", color=item.color, direction=item.direction)
    texture = None if item.texture == "plain" else item.texture
    return ItemSpec(item.shape, size=item.size, color=item.color, texture=texture)


def describe(scene: Scene) -> Caption:
    """A caption that says everything the oracle can be asked about ``scene``."""
    return Caption(
        placements=tuple((cell, spec_of(item)) for cell, item in scene.items.items()),
        time_of_day=scene.time_of_day,
        weather=scene.weather,
        clutter=None if scene.clutter == "none" else scene.clutter,  # G's default
    )


def unique_ref(cell: str, scene: Scene, rng: random.Random, skip: str | None = None) -> Ref | None:
    """A shortest-first random reference that picks out exactly the item in ``cell``.

    ``skip`` names an attribute the reference must not use (the one being asked about).
    """
    item = scene.items[cell]
    if isinstance(item, Shape):
        nouns = [item.shape, "object"] if skip != "shape" else ["object"]
        options = {"size": item.size, "color": item.color, "texture": item.texture}
    elif isinstance(item, Arrow):
        nouns, options = ["arrow"], {"color": item.color}
    else:
        nouns, options = [item.noun], {}
    options.pop(skip or "", None)
    candidates = []
    for noun in nouns:
        for mask in range(2 ** len(options)):
            chosen = {k: v for i, (k, v) in enumerate(options.items()) if mask >> i & 1}
            ref = Ref(noun=noun, **chosen)
            if resolve(ref, scene) == [(cell, item)]:
                candidates.append((len(chosen), ref))
    if not candidates:
        return None
    fewest = min(n for n, _ in candidates)
    # Mostly the shortest description, sometimes a longer one, as people write.
    pool = [r for n, r in candidates if n == fewest] if rng.random() < 0.7 else [r for _, r in candidates]
    return rng.choice(pool)


def sample_caption(rng: random.Random) -> Caption:
    """A random caption: a full description of a random scene."""
    return describe(random_scene(rng))


def sample_edit(rng: random.Random, scene: Scene) -> Edit | None:
    """A random edit command that applies cleanly to ``scene`` (None if none was found)."""
    actions = ["add", "time_of_day", "weather", "clutter"]
    if scene.items:
        actions += ["replace", "remove", "recolor", "resize", "retexture", "move", "set_clock",
                    "set_sign", "turn"]  # fmt: skip
    for _ in range(20):
        edit = _try_edit(rng, scene, rng.choice(actions))
        if edit is not None:
            return edit
    return None


def _try_edit(rng: random.Random, scene: Scene, action: str) -> Edit | None:
    if action == "add":
        free = scene.free_cells()
        return Edit("add", new=spec_of(random_item(rng)), cell=rng.choice(free)) if free else None
    if action == "time_of_day":
        return Edit("time_of_day", value=next(t for t in TIMES_OF_DAY if t != scene.time_of_day))
    if action == "weather":
        return Edit("weather", value=rng.choice([w for w in WEATHERS if w != scene.weather]))
    if action == "clutter":
        return Edit("clutter", value=rng.choice([c for c in CLUTTER_LEVELS if c != scene.clutter]))
    kinds = {"set_clock": Clock, "set_sign": Sign, "turn": Arrow}
    wanted = kinds.get(action, Shape if action in ("recolor", "resize", "retexture") else object)
    cells = [c for c, item in scene.items.items() if isinstance(item, wanted)]
    if not cells:
        return None
    cell = rng.choice(cells)
    target = unique_ref(cell, scene, rng)
    if target is None:
        return None
    item = scene.items[cell]
    if action == "replace":
        return Edit("replace", target, new=spec_of(random_item(rng)))
    if action == "remove":
        return Edit("remove", target)
    if action == "move":
        free = scene.free_cells()
        return Edit("move", target, cell=rng.choice(free)) if free else None
    if action == "set_clock":
        return Edit("set_clock", target, value=format_time(rng.choice(HOURS), rng.choice(MINUTES)))
    if action == "set_sign":
        return Edit("set_sign", target, value=str(rng.choice(SIGN_NUMBERS)))
    attribute, values = {
        "recolor": ("color", tuple(COLORS)), "resize": ("size", SIZES),
        "retexture": ("texture", TEXTURES), "turn": ("direction", DIRECTIONS),
    }[action]  # fmt: skip
    value = rng.choice([v for v in values if v != getattr(item, attribute)])
    return Edit(action, target, value=value)  # type: ignore[arg-type]
