import itertools
import random

import pytest

from auditdm.world.grammar import LEXICON
from auditdm.world.oracle import SKILLS
from auditdm.world.parse import ParseError, parse_caption, parse_edit, parse_question, tokenize
from auditdm.world.sampling import random_scene, sample_caption, sample_edit
from auditdm.world.skills import dialogues, sample_example


@pytest.mark.parametrize("skill", SKILLS)
def test_every_skill_round_trips_through_generate_and_parse(skill: str) -> None:
    rng = random.Random(skill)
    for _ in range(40):
        question = sample_example(rng, skill).question
        assert parse_question(question.text()) == question


def test_captions_and_edits_round_trip() -> None:
    rng = random.Random(1)
    for _ in range(100):
        caption = sample_caption(rng)
        assert parse_caption(caption.text()) == caption
        edit = sample_edit(rng, random_scene(rng))
        assert edit is not None and parse_edit(edit.text()) == edit


def test_lexicon_covers_every_generated_word() -> None:
    rng, vocab = random.Random(2), set(LEXICON)
    for _ in range(200):
        texts = [sample_example(rng, rng.choice(SKILLS)).question.text(), sample_caption(rng).text()]
        edit = sample_edit(rng, random_scene(rng))
        texts.append(edit.text() if edit else "")
        for text in texts:
            assert set(tokenize(text)) <= vocab, text


def test_parsing_is_tolerant_of_case_and_punctuation() -> None:
    assert parse_question("What color is the Red Circle?") == parse_question("what color is the red circle")


@pytest.mark.parametrize(
    ("parse", "text", "position", "fragment"),
    [
        (parse_question, "what color is the bananas ?", 4, "a noun"),
        (parse_question, "why is the sky blue", 0, "the start of a question"),
        (parse_question, "what time does the clock show it", 6, "the end of the sentence"),
        (parse_question, "is the clock bigger than the circle", 1, "a shape or 'object'"),
        (parse_caption, "a red circle at the moon", 5, "a place"),
        (parse_caption, "a clock showing 13:00 at the center", 3, "a clock time"),
        (parse_caption, "a clock showing :30 at the center", 3, "a clock time"),  # a GRPO auditor wrote this
        (parse_edit, "set the clock to :30", 4, "a clock time"),
        (parse_edit, "paint the circle red", 0, "an edit verb"),
        (parse_edit, "make the circle", 3, "a colour, size or texture"),
    ],
)
def test_malformed_text_gives_a_typed_error_that_says_where(parse, text, position, fragment) -> None:
    with pytest.raises(ParseError) as error:
        parse(text)
    assert error.value.position == position
    assert fragment in str(error.value) and text in str(error.value)


def test_arbitrary_text_never_crashes() -> None:
    rng = random.Random(3)
    words = [*LEXICON, "banana", "!!", "", "12:99", "3:", ":30", "1:2:3", "-1", "é", "\n", "<script>"]
    for _ in range(2000):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
        for parse in (parse_question, parse_caption, parse_edit):
            try:
                parse(text)
            except ParseError:
                pass


def test_existence_and_count_questions_name_things_in_every_way() -> None:
    rng = random.Random(3)
    examples = [sample_example(rng, "hallucination") for _ in range(300)]
    refs = [e.question.subject for e in examples]
    for attribute in ("size", "color", "texture"):
        assert any(getattr(ref, attribute) for ref in refs), attribute
    assert any(ref.noun == "object" for ref in refs)
    assert 120 < sum(e.answer == "yes" for e in examples) < 180  # still balanced
    counts = [e for turns in itertools.islice(dialogues(4, turns=8), 200) for e in turns if e.skill == "counting"]
    assert any(e.question.subject.texture or e.question.subject.size for e in counts)
