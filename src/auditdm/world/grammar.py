"""The world's English subset: typed questions, captions and edit commands.

Every sentence the world understands is one of the records below; ``.text()`` writes it
and ``parse.py`` reads it back. Grammar terms:

- a *reference* names one item: ``the [size] [color] [texture] NOUN`` where NOUN is a
  shape, ``object`` (any shape), ``clock``, ``sign`` or ``arrow``. Only shapes are
  "objects"; clocks, signs and arrows are named by their own nouns.
- cells are the nine places of a 3x3 grid (``top left`` ... ``bottom right``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    format_time,
)

NOUNS = (*SHAPES, "object", "clock", "sign", "arrow")
PLURALS = {noun: noun + "s" for noun in NOUNS}
SPATIAL_RELATIONS = ("left of", "right of", "above", "below")
SIZE_RELATIONS = ("bigger", "smaller")
ANSWER_NOTHING = "nothing"  # what stands in an empty neighbouring cell


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


@dataclass(frozen=True)
class Ref:
    """A description of items: a noun and optional attributes."""

    noun: str
    size: str | None = None
    color: str | None = None
    texture: str | None = None

    def words(self) -> str:
        return " ".join(w for w in (self.size, self.color, self.texture, self.noun) if w)

    def text(self) -> str:
        return f"the {self.words()}"


QuestionForm = Literal[
    "color", "shape", "count", "compare_size", "spatial", "exists", "number", "time",
    "pattern", "weather", "day_night", "direction", "relation",
]  # fmt: skip


@dataclass(frozen=True)
class Question:
    """A question about a scene. ``relation`` is set for the comparing forms."""

    form: QuestionForm
    subject: Ref | None = None
    other: Ref | None = None
    relation: str | None = None

    def text(self) -> str:
        s, o = self.subject, self.other
        match self.form:
            case "color":
                return f"what color is {_ref(s)} ?"
            case "shape":
                return f"what shape is {_ref(s)} ?"
            case "count":
                plural = PLURALS[_ref_of(s).noun]
                adjectives = _ref_of(s).words().rsplit(" ", 1)[:-1]
                return f"how many {' '.join([*adjectives, plural])} are there ?"
            case "compare_size":
                return f"is {_ref(s)} {self.relation} than {_ref(o)} ?"
            case "spatial":
                return f"is {_ref(s)} {self.relation} {_ref(o)} ?"
            case "exists":
                words = _ref_of(s).words()
                return f"is there {article(words)} {words} ?"
            case "number":
                return f"what number is on {_ref(s)} ?"
            case "time":
                return f"what time does {_ref(s)} show ?"
            case "pattern":
                return f"what pattern is on {_ref(s)} ?"
            case "weather":
                return "what is the weather ?"
            case "day_night":
                return "is it day or night ?"
            case "direction":
                return f"which way does {_ref(s)} point ?"
            case "relation":
                return f"what is directly {self.relation} {_ref(s)} ?"
        raise ValueError(f"unknown question form {self.form!r}")


def _ref_of(ref: Ref | None) -> Ref:
    if ref is None:
        raise ValueError("this question form needs a reference")
    return ref


def _ref(ref: Ref | None) -> str:
    return _ref_of(ref).text()


@dataclass(frozen=True)
class ItemSpec:
    """An item as a caption or edit describes it; unspecified attributes are left to G."""

    noun: str
    size: str | None = None
    color: str | None = None
    texture: str | None = None
    time: str | None = None  # clocks: "h:mm"
    number: int | None = None  # signs
    direction: str | None = None  # arrows

    def text(self) -> str:
        if self.noun == "clock":
            return "a clock" + (f" showing {self.time}" if self.time else "")
        if self.noun == "sign":
            return "a sign" + (f" reading {self.number}" if self.number is not None else "")
        words = " ".join(w for w in (self.size, self.color, self.texture, self.noun) if w)
        pointing = f" pointing {self.direction}" if self.direction else ""
        return f"{article(words)} {words}{pointing}"


@dataclass(frozen=True)
class Caption:
    """A description of a whole scene, from which the world generator G draws an image."""

    placements: tuple[tuple[str, ItemSpec], ...]
    time_of_day: str | None = None
    weather: str | None = None
    clutter: str | None = None

    def text(self) -> str:
        parts = [f"{spec.text()} at the {cell}" for cell, spec in self.placements]
        text = ", ".join(parts) if parts else "an empty scene"
        if self.time_of_day or self.weather:
            words = " ".join(w for w in (self.weather, self.time_of_day or "scene") if w)
            text += f" on {article(words)} {words}"
        if self.clutter and self.clutter != "none":
            text += f" with {self.clutter} clutter"
        return text + " ."


EditAction = Literal[
    "replace", "add", "remove", "recolor", "resize", "retexture", "move", "time_of_day",
    "weather", "set_clock", "set_sign", "turn", "clutter",
]  # fmt: skip


@dataclass(frozen=True)
class Edit:
    """An image-editing command for the world editor E."""

    action: EditAction
    target: Ref | None = None
    new: ItemSpec | None = None
    cell: str | None = None
    value: str | None = None

    def text(self) -> str:
        t = self.target.text() if self.target else ""
        match self.action:
            case "replace":
                return f"replace {t} with {_spec(self.new)}"
            case "add":
                return f"add {_spec(self.new)} at the {self.cell}"
            case "remove":
                return f"remove {t}"
            case "recolor" | "resize" | "retexture":
                return f"make {t} {self.value}"
            case "move":
                return f"move {t} to the {self.cell}"
            case "time_of_day" | "weather":
                return f"make it {self.value}"
            case "set_clock":
                return f"set {t} to {self.value}"
            case "set_sign":
                return f"change {t} to {self.value}"
            case "turn":
                return f"make {t} point {self.value}"
            case "clutter":
                return "remove the clutter" if self.value == "none" else f"add {self.value} clutter"
        raise ValueError(f"unknown edit action {self.action!r}")


def _spec(spec: ItemSpec | None) -> str:
    if spec is None:
        raise ValueError("this edit needs an item")
    return spec.text()


TIMES = tuple(format_time(h, m) for h in HOURS for m in MINUTES)
ANSWER_WORDS = (
    *COLORS, *SHAPES, "clock", "sign", "arrow", ANSWER_NOTHING, "yes", "no", *TEXTURES,
    *WEATHERS, *TIMES_OF_DAY, *DIRECTIONS, *(str(n) for n in SIGN_NUMBERS), *TIMES,
)  # fmt: skip
_FUNCTION_WORDS = (
    "what", "color", "is", "the", "shape", "how", "many", "are", "there", "than", "a", "an",
    "number", "on", "time", "does", "show", "pattern", "weather", "it", "or", "which", "way",
    "point", "directly", "of", "at", "showing", "reading", "pointing", "with", "and",
    "clutter", "scene", "empty", "replace", "add", "remove", "make", "move", "to", "set",
    "change", "?", ",", ".",
)  # fmt: skip
LEXICON: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            *_FUNCTION_WORDS, *ANSWER_WORDS, *NOUNS, *PLURALS.values(), *SIZES,
            *(w for rel in (*SPATIAL_RELATIONS, *SIZE_RELATIONS) for w in rel.split()),
            *(w for cell in CELLS for w in cell.split()), *CLUTTER_LEVELS,
        ]  # fmt: skip
    )
)
"""Every word the grammar can write; the world models' vocabulary is built from it."""
