"""The oracle: exact answers to grammar questions, computed from the scene.

It also says when a question has no single right answer: *ambiguous* when a reference
matches several items, *unanswerable* when it matches none (or names an item that lacks
the property asked about). The oracle trains the world models and verifies audits; it is
never part of the audit score or the GRPO reward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from auditdm.world.grammar import ANSWER_NOTHING, Question, Ref
from auditdm.world.scene import (
    SIZES,
    Arrow,
    Item,
    Scene,
    Shape,
    cell_at,
    cell_row_col,
)

Status = Literal["answerable", "ambiguous", "unanswerable"]

SKILLS = (
    "color", "shape", "counting", "size", "spatial", "small_object", "text", "clock",
    "texture", "hallucination", "weather", "direction", "distraction", "relationship",
)  # fmt: skip
_FORM_SKILL = {
    "color": "color", "shape": "shape", "count": "counting", "compare_size": "size",
    "spatial": "spatial", "exists": "hallucination", "number": "text", "time": "clock",
    "pattern": "texture", "weather": "weather", "day_night": "weather",
    "direction": "direction", "relation": "relationship",
}  # fmt: skip


@dataclass(frozen=True)
class OracleAnswer:
    """The true answer (None unless answerable) and why there may be none."""

    answer: str | None
    status: Status
    reason: str = ""


def matches(ref: Ref, item: Item) -> bool:
    """Whether ``item`` fits the description ``ref``."""
    if isinstance(item, Shape):
        noun_ok = ref.noun in (item.shape, "object")
        return noun_ok and all(
            want is None or want == have
            for want, have in ((ref.size, item.size), (ref.color, item.color), (ref.texture, item.texture))
        )
    if isinstance(item, Arrow):
        return ref.noun == "arrow" and ref.color in (None, item.color) and not (ref.size or ref.texture)
    return ref.noun == item.noun and not (ref.size or ref.color or ref.texture)


def resolve(ref: Ref, scene: Scene) -> list[tuple[str, Item]]:
    """The (cell, item) pairs that ``ref`` describes, in cell order."""
    return [(cell, item) for cell, item in scene.items.items() if matches(ref, item)]


class _NoAnswer(Exception):
    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _unique(ref: Ref | None, scene: Scene) -> tuple[str, Item]:
    if ref is None:
        raise _NoAnswer("unanswerable", "the question names nothing")
    found = resolve(ref, scene)
    if not found:
        raise _NoAnswer("unanswerable", f"there is no {ref.words()}")
    if len(found) > 1:
        raise _NoAnswer("ambiguous", f"{len(found)} items match '{ref.text()}'")
    return found[0]


def _attribute(item: Item, name: str) -> str:
    value = getattr(item, name, None)
    if value is None:
        raise _NoAnswer("unanswerable", f"a {item.noun} has no {name}")
    return str(value)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _spatial(relation: str, a: str, b: str) -> bool:
    (ra, ca), (rb, cb) = cell_row_col(a), cell_row_col(b)
    return {"left of": ca < cb, "right of": ca > cb, "above": ra < rb, "below": ra > rb}[relation]


def _neighbour(relation: str, cell: str) -> str | None:
    row, col = cell_row_col(cell)
    dr, dc = {"left of": (0, -1), "right of": (0, 1), "above": (-1, 0), "below": (1, 0)}[relation]
    return cell_at(row + dr, col + dc)


def _pair(question: Question, scene: Scene) -> tuple[tuple[str, Item], tuple[str, Item]]:
    first, second = _unique(question.subject, scene), _unique(question.other, scene)
    if first[0] == second[0]:
        raise _NoAnswer("unanswerable", "both references name the same item")
    return first, second


def _solve(q: Question, scene: Scene) -> str:
    match q.form:
        case "color" | "shape" | "pattern":
            attribute = {"color": "color", "shape": "shape", "pattern": "texture"}[q.form]
            return _attribute(_unique(q.subject, scene)[1], attribute)
        case "number":
            return _attribute(_unique(q.subject, scene)[1], "number")
        case "time":
            return _attribute(_unique(q.subject, scene)[1], "time")
        case "direction":
            return _attribute(_unique(q.subject, scene)[1], "direction")
        case "count":
            assert q.subject is not None
            return str(len(resolve(q.subject, scene)))
        case "exists":
            assert q.subject is not None
            return _yes(bool(resolve(q.subject, scene)))
        case "compare_size":
            (_, a), (_, b) = _pair(q, scene)
            ra, rb = SIZES.index(_attribute(a, "size")), SIZES.index(_attribute(b, "size"))
            return _yes(ra > rb if q.relation == "bigger" else ra < rb)
        case "spatial":
            assert q.relation is not None
            (cell_a, _), (cell_b, _) = _pair(q, scene)
            return _yes(_spatial(q.relation, cell_a, cell_b))
        case "relation":
            assert q.relation is not None
            cell, _ = _unique(q.subject, scene)
            neighbour = _neighbour(q.relation, cell)
            item = scene.items.get(neighbour) if neighbour else None
            return item.noun if item is not None else ANSWER_NOTHING
        case "weather":
            return scene.weather
        case "day_night":
            return scene.time_of_day
    raise ValueError(f"unknown question form {q.form!r}")


def answer(question: Question, scene: Scene) -> OracleAnswer:
    """Answer ``question`` about ``scene`` exactly, or say why it has no single answer."""
    try:
        return OracleAnswer(_solve(question, scene), "answerable")
    except _NoAnswer as no:
        return OracleAnswer(None, no.status, no.reason)


def skill_of(question: Question, scene: Scene) -> str:
    """The skill a question exercises on a scene (SPEC section 3).

    The question form decides, except for attribute questions about one shape: a tiny
    referent makes it small-object detection, and heavy clutter makes it distraction.
    """
    skill = _FORM_SKILL[question.form]
    if question.form in ("color", "shape", "pattern") and question.subject is not None:
        found = resolve(question.subject, scene)
        if len(found) == 1 and isinstance(found[0][1], Shape) and found[0][1].size == "tiny":
            return "small_object"
        if question.form != "pattern" and scene.clutter == "heavy":
            return "distraction"
    return skill

