"""The world editor's semantics: apply an edit command to a scene.

An edit changes exactly what it names: the other items, their places and the random
seed stay, so the edited image differs from the original only where the command says.
"""

from __future__ import annotations

import random
from dataclasses import replace

from auditdm.errors import UserError
from auditdm.world.grammar import Edit, Ref, article
from auditdm.world.oracle import resolve
from auditdm.world.sampling import realize
from auditdm.world.scene import Arrow, Clock, Item, Scene, Shape, Sign


class EditError(UserError):
    """A well-formed command that cannot apply to this scene (no or several referents, ...)."""


def _target(ref: Ref | None, scene: Scene, command: str) -> tuple[str, Item]:
    if ref is None:
        raise EditError(f"{command!r} names nothing to edit")
    found = resolve(ref, scene)
    if not found:
        raise EditError(f"{command!r}: there is no {ref.words()} in the image")
    if len(found) > 1:
        raise EditError(f"{command!r}: {len(found)} items match '{ref.text()}', so it is ambiguous")
    return found[0]


def apply_edit(scene: Scene, edit: Edit, rng: random.Random | None = None) -> Scene:
    """The scene after ``edit``; ``rng`` fills what an added or replacing item leaves unsaid."""
    rng = rng or random.Random(scene.seed)
    command = edit.text()
    if edit.action == "time_of_day":
        return replace(scene, time_of_day=str(edit.value))
    if edit.action == "weather":
        return replace(scene, weather=str(edit.value))
    if edit.action == "clutter":
        return replace(scene, clutter=str(edit.value))
    items = dict(scene.items)
    if edit.action == "add":
        assert edit.new is not None and edit.cell is not None
        if edit.cell in items:
            raise EditError(f"{command!r}: the {edit.cell} is already taken")
        items[edit.cell] = realize(edit.new, rng)
        return scene.with_items(items)
    cell, item = _target(edit.target, scene, command)
    if edit.action == "remove":
        del items[cell]
    elif edit.action == "replace":
        assert edit.new is not None
        items[cell] = realize(edit.new, rng)
    elif edit.action == "move":
        assert edit.cell is not None
        if edit.cell != cell and edit.cell in items:
            raise EditError(f"{command!r}: the {edit.cell} is already taken")
        items[edit.cell] = items.pop(cell)
    else:
        items[cell] = _changed(item, edit, command)
    return scene.with_items(items)


def _changed(item: Item, edit: Edit, command: str) -> Item:
    value = str(edit.value)
    if edit.action == "recolor" and isinstance(item, (Shape, Arrow)):
        return replace(item, color=value)
    if edit.action == "resize" and isinstance(item, Shape):
        return replace(item, size=value)
    if edit.action == "retexture" and isinstance(item, Shape):
        return replace(item, texture=value)
    if edit.action == "turn" and isinstance(item, Arrow):
        return replace(item, direction=value)
    if edit.action == "set_clock" and isinstance(item, Clock):
        hour, minute = (int(p) for p in value.split(":"))
        return Clock(hour, minute)
    if edit.action == "set_sign" and isinstance(item, Sign):
        return Sign(int(value))
    raise EditError(f"{command!r}: {article(item.noun)} {item.noun} cannot be changed that way")
