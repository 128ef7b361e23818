"""Read the world's English subset back into typed sentences.

A small recursive-descent parser over words. Any text that is not in the grammar raises
``ParseError`` naming the word where reading stopped and what was expected there; no
other exception escapes, whatever the input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from auditdm.errors import UserError

from auditdm.world.grammar import (
    NOUNS,
    PLURALS,
    SIZE_RELATIONS,
    SPATIAL_RELATIONS,
    Caption,
    Edit,
    ItemSpec,
    Question,
    Ref,
)
from auditdm.world.scene import (
    CELLS,
    CLUTTER_LEVELS,
    COLORS,
    DIRECTIONS,
    HOURS,
    MINUTES,
    SIGN_NUMBERS,
    SIZES,
    TEXTURES,
    TIMES_OF_DAY,
    WEATHERS,
)

_WORD = re.compile(r"\d+:\d+|\w+|[^\w\s]")
_SINGULAR = {plural: noun for noun, plural in PLURALS.items()}
T = TypeVar("T")


class ParseError(UserError):
    """Text outside the world grammar. ``position`` is the 0-based index of the bad word."""

    def __init__(self, text: str, position: int, expected: str, found: str | None) -> None:
        self.text, self.position, self.expected, self.found = text, position, expected, found
        where = f"word {position + 1} ({found!r})" if found is not None else "the end"
        super().__init__(f"expected {expected} at {where} in: {text!r}")


def tokenize(text: str) -> list[str]:
    """Lower-case words, numbers, times and punctuation marks."""
    return _WORD.findall(text.lower())


class _Reader:
    """A cursor over the words of one sentence; trailing punctuation is ignored."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.words = [w for w in tokenize(text) if w != ","]
        while self.words and self.words[-1] in {"?", "."}:
            self.words.pop()
        self.pos = 0

    def peek(self, ahead: int = 0) -> str | None:
        i = self.pos + ahead
        return self.words[i] if i < len(self.words) else None

    def fail(self, expected: str) -> ParseError:
        return ParseError(self.text, self.pos, expected, self.peek())

    def accept(self, *words: str) -> bool:
        """Consume ``words`` if the text continues with exactly them."""
        if [self.peek(i) for i in range(len(words))] == list(words):
            self.pos += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            raise self.fail(repr(" ".join(words)))

    def choose(self, options: tuple[str, ...], what: str) -> str:
        """Consume the longest option (options may span several words)."""
        for option in sorted(options, key=lambda o: -len(o.split())):
            if self.accept(*option.split()):
                return option
        raise self.fail(what)

    def end(self) -> None:
        if self.peek() is not None:
            raise self.fail("the end of the sentence")


def _guarded(parse: Callable[[_Reader], T]) -> Callable[[str], T]:
    """Turn a reader function into a text parser that only ever raises ParseError."""

    def run(text: str) -> T:
        if not isinstance(text, str):
            raise ParseError(repr(text), 0, "text", None)
        reader = _Reader(text)
        if reader.peek() is None:
            raise reader.fail("a sentence")
        result = parse(reader)
        reader.end()
        return result

    run.__doc__ = parse.__doc__
    return run


def _adjectives(r: _Reader) -> dict[str, str]:
    found: dict[str, str] = {}
    groups = {"size": SIZES, "color": tuple(COLORS), "texture": TEXTURES}
    while True:
        word = r.peek()
        group = next((g for g, words in groups.items() if word in words), None)
        if group is None or group in found:
            return found
        found[group] = r.choose(groups[group], group)


def _ref_words(r: _Reader, nouns: tuple[str, ...] = NOUNS) -> Ref:
    adjectives = _adjectives(r)
    noun = r.choose(nouns, "a noun (" + ", ".join(nouns) + ")")
    return _checked_ref(r, Ref(noun=noun, **adjectives))


def _checked_ref(r: _Reader, ref: Ref) -> Ref:
    if ref.noun in ("clock", "sign") and (ref.size or ref.color or ref.texture):
        raise r.fail(f"no adjectives before {ref.noun!r}")
    if ref.noun == "arrow" and (ref.size or ref.texture):
        raise r.fail("only a colour before 'arrow'")
    return ref


def _ref(r: _Reader, nouns: tuple[str, ...] = NOUNS) -> Ref:
    r.expect("the")
    return _ref_words(r, nouns)


def _question(r: _Reader) -> Question:
    """Parse a question about a scene."""
    if r.accept("what", "color", "is"):
        return Question("color", _ref(r))
    if r.accept("what", "shape", "is"):
        return Question("shape", _ref(r))
    if r.accept("what", "pattern", "is", "on"):
        return Question("pattern", _ref(r))
    if r.accept("what", "number", "is", "on"):
        return Question("number", _ref(r, ("sign",)))
    if r.accept("what", "time", "does"):
        ref = _ref(r, ("clock",))
        r.expect("show")
        return Question("time", ref)
    if r.accept("what", "is", "the", "weather"):
        return Question("weather")
    if r.accept("what", "is", "directly"):
        relation = r.choose(SPATIAL_RELATIONS, "a relation (" + ", ".join(SPATIAL_RELATIONS) + ")")
        return Question("relation", _ref(r), relation=relation)
    if r.accept("how", "many"):
        adjectives = _adjectives(r)
        plural = r.choose(tuple(_SINGULAR), "a plural noun")
        r.expect("are", "there")
        return Question("count", _checked_ref(r, Ref(noun=_SINGULAR[plural], **adjectives)))
    if r.accept("is", "it", "day", "or", "night"):
        return Question("day_night")
    if r.accept("which", "way", "does"):
        ref = _ref(r, ("arrow",))
        r.expect("point")
        return Question("direction", ref)
    if r.accept("is", "there"):
        r.choose(("a", "an"), "'a' or 'an'")
        return Question("exists", _ref_words(r))
    if r.peek() == "is":
        r.expect("is")
        subject = _ref(r, (*NOUNS,))
        if r.peek() in SIZE_RELATIONS:
            relation = r.choose(SIZE_RELATIONS, "'bigger' or 'smaller'")
            r.expect("than")
            shapes = tuple(n for n in NOUNS if n not in ("clock", "sign", "arrow"))
            if subject.noun not in shapes:
                raise ParseError(r.text, 1, "a shape or 'object' to compare sizes", subject.noun)
            return Question("compare_size", subject, _ref(r, shapes), relation)
        relation = r.choose(SPATIAL_RELATIONS, "'bigger than', 'smaller than' or a relation")
        return Question("spatial", subject, _ref(r), relation)
    raise r.fail("the start of a question (what, how many, is, which way)")


def _time(r: _Reader) -> str:
    found = re.fullmatch(r"(\d{1,2}):(\d{2})", r.peek() or "")  # an auditor wrote ":30", where int("") failed
    if found:
        hour, minute = int(found.group(1)), int(found.group(2))
        if hour in HOURS and minute in MINUTES:
            r.pos += 1
            return f"{hour}:{minute:02d}"
    raise r.fail("a clock time such as 3:30 (hours 1-12, minutes 00 or 30)")


def _number(r: _Reader) -> int:
    word = r.peek()
    if word is not None and word.isdigit() and int(word) in SIGN_NUMBERS:
        r.pos += 1
        return int(word)
    raise r.fail(f"a number from {SIGN_NUMBERS[0]} to {SIGN_NUMBERS[-1]}")


def _item_spec(r: _Reader) -> ItemSpec:
    r.choose(("a", "an"), "'a' or 'an'")
    adjectives = _adjectives(r)
    noun = r.choose(NOUNS, "a noun (" + ", ".join(NOUNS) + ")")
    ref = _checked_ref(r, Ref(noun=noun, **adjectives))
    spec = ItemSpec(noun=ref.noun, size=ref.size, color=ref.color, texture=ref.texture)
    if noun == "clock" and r.accept("showing"):
        return ItemSpec(noun, time=_time(r))
    if noun == "sign" and r.accept("reading"):
        return ItemSpec(noun, number=_number(r))
    if noun == "arrow" and r.accept("pointing"):
        return ItemSpec(noun, color=ref.color, direction=r.choose(DIRECTIONS, "a direction"))
    return spec


def _cell(r: _Reader) -> str:
    return r.choose(CELLS, "a place (" + ", ".join(CELLS) + ")")


def _caption(r: _Reader) -> Caption:
    """Parse a scene caption for the world generator."""
    placements: list[tuple[str, ItemSpec]] = []
    if not r.accept("an", "empty", "scene"):
        while True:
            spec = _item_spec(r)
            r.expect("at", "the")
            placements.append((_cell(r), spec))
            if not r.accept("and") and r.peek() not in ("a", "an"):
                break
    time_of_day = weather = clutter = None
    if r.accept("on"):
        r.choose(("a", "an"), "'a' or 'an'")
        if r.peek() in WEATHERS:
            weather = r.choose(WEATHERS, "a weather")
        if not r.accept("scene"):
            time_of_day = r.choose(TIMES_OF_DAY, "'day', 'night' or 'scene'")
    if r.accept("with"):
        clutter = r.choose(tuple(CLUTTER_LEVELS), "a clutter level")
        r.expect("clutter")
    return Caption(tuple(placements), time_of_day, weather, clutter)


def _edit(r: _Reader) -> Edit:
    """Parse an image-editing command for the world editor."""
    if r.accept("replace"):
        target = _ref(r)
        r.expect("with")
        return Edit("replace", target, new=_item_spec(r))
    if r.accept("add"):
        if r.peek() in CLUTTER_LEVELS:
            level = r.choose(tuple(CLUTTER_LEVELS), "a clutter level")
            r.expect("clutter")
            return Edit("clutter", value=level)
        spec = _item_spec(r)
        r.expect("at", "the")
        return Edit("add", new=spec, cell=_cell(r))
    if r.accept("remove", "the", "clutter"):
        return Edit("clutter", value="none")
    if r.accept("remove"):
        return Edit("remove", _ref(r))
    if r.accept("move"):
        target = _ref(r)
        r.expect("to", "the")
        return Edit("move", target, cell=_cell(r))
    if r.accept("set"):
        target = _ref(r, ("clock",))
        r.expect("to")
        return Edit("set_clock", target, value=_time(r))
    if r.accept("change"):
        target = _ref(r, ("sign",))
        r.expect("to")
        return Edit("set_sign", target, value=str(_number(r)))
    if r.accept("make", "it"):
        if r.peek() in TIMES_OF_DAY:
            return Edit("time_of_day", value=r.choose(TIMES_OF_DAY, "day or night"))
        return Edit("weather", value=r.choose(WEATHERS, "a time of day or a weather"))
    if r.accept("make"):
        target = _ref(r)
        if target.noun == "arrow" and r.accept("point"):
            return Edit("turn", target, value=r.choose(DIRECTIONS, "a direction"))
        for action, values in (("recolor", tuple(COLORS)), ("resize", SIZES), ("retexture", TEXTURES)):
            if r.peek() in values:
                return Edit(action, target, value=r.choose(values, action))  # type: ignore[arg-type]
        raise r.fail("a colour, size or texture")
    raise r.fail("an edit verb (replace, add, remove, make, move, set, change)")


parse_question = _guarded(_question)
parse_caption = _guarded(_caption)
parse_edit = _guarded(_edit)
