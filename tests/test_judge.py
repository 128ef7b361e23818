from collections.abc import Sequence

import pytest

from auditdm.errors import UserError
from auditdm.judge import (
    EmbeddingJudge,
    ExactJudge,
    Judge,
    Verdict,
    consensus,
    load_judge,
    normalize_answer,
    score,
    score_many,
)

EXACT = ExactJudge()


class SynonymJudge:
    """A toy semantic judge: sofa and couch mean the same; counts its calls."""

    name = "synonym"

    def __init__(self) -> None:
        self.calls = 0

    def same(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        self.calls += 1
        canon = {"sofa": "couch"}
        return [canon.get(a, a) == canon.get(b, b) for a, b in pairs]


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("The Red.", "red"),
        ("Three", "3"),
        ("twenty", "20"),
        ("3:30", "3:30"),
        ("3:30.", "3:30"),
        ("2.5", "2.5"),
        ("1,000", "1000"),
        ("  a  blue   circle!", "blue circle"),
        ("An apple", "apple"),
        ("there", "there"),  # articles are words, not prefixes
        ("Yes, it is.", "yes it is"),
        ("o'clock", "oclock"),
        ("left-hand", "left hand"),
        ("red: dark", "red dark"),  # a colon not between digits is punctuation
        ("The!", ""),
    ],
)
def test_normalize_answer(raw: str, normal: str) -> None:
    assert normalize_answer(raw) == normal
    assert normalize_answer(normal) == normal  # idempotent


def test_exact_judge_compares_normal_forms() -> None:
    pairs = [("The Red.", "red"), ("three", "3"), ("red", "blue"), ("3:30", "330"), ("", "nothing"), ("", "")]
    assert EXACT.same(pairs) == [True, True, False, False, False, True]
    assert EXACT.same([]) == []


@pytest.mark.parametrize(
    ("answers", "quorum", "expected"),
    [
        (["red", "Red.", "the red"], None, "red"),  # all agree
        (["red", "red", "blue"], 2, "red"),
        (["blue", "red", "red"], 2, "red"),  # the majority need not come first
        (["red", "red", "blue"], None, None),  # default quorum: all must agree
        (["red", "blue", "green"], 2, None),
        (["red", "blue"], 1, "red"),  # tie between groups: the earliest
        (["", "", "red"], 2, None),  # empty answers never agree
        (["", "red", "red"], 2, "red"),
        (["", "red", "red"], None, None),
        (["", ""], 1, None),
        ([], None, None),
    ],
)
def test_consensus(answers: list[str], quorum: int | None, expected: str | None) -> None:
    assert consensus(answers, EXACT, quorum) == expected


def test_consensus_groups_by_the_judge_and_returns_the_commonest_answer() -> None:
    assert consensus(["sofa", "couch", "the couch"], SynonymJudge()) == "couch"
    assert consensus(["sofa", "couch"], SynonymJudge()) == "sofa"  # tie: first seen
    assert consensus(["sofa", "couch", "chair"], EXACT, 2) is None


@pytest.mark.parametrize("quorum", [0, -1, 4])
def test_consensus_rejects_a_quorum_out_of_range(quorum: int) -> None:
    with pytest.raises(ValueError, match="quorum"):
        consensus(["red", "red", "blue"], EXACT, quorum)


def test_score() -> None:
    references = ["red", "red", "blue"]
    assert score("The red.", references, EXACT, 2) == Verdict("red", 0)  # target right
    assert score("blue", references, EXACT, 2) == Verdict("red", 1)  # target wrong
    assert score("", references, EXACT, 2) == Verdict("red", 1)  # no answer is a wrong answer
    assert score("blue", references, EXACT) == Verdict(None, 0)  # no consensus: unanswerable
    assert score("blue", ["red"], EXACT) == Verdict("red", 1)  # single reference
    assert score("Red", ["red"], EXACT) == Verdict("red", 0)
    assert score("red", [""], EXACT) == Verdict(None, 0)


def test_score_many_matches_score_in_two_judge_calls() -> None:
    targets = ["couch", "red", "blue", "x"]
    references = [["sofa", "couch", "couch"], ["red", "red"], ["red", "red"], ["a", "b"]]
    judge = SynonymJudge()
    verdicts = score_many(targets, references, judge)
    assert verdicts == [Verdict("couch", 0), Verdict("red", 0), Verdict("red", 1), Verdict(None, 0)]
    assert judge.calls <= 2
    assert verdicts == [score(t, r, SynonymJudge()) for t, r in zip(targets, references)]
    with pytest.raises(ValueError):
        score_many(["red"], [], EXACT)


def test_load_judge() -> None:
    judge: Judge = load_judge("exact")
    assert isinstance(judge, ExactJudge) and judge.name == "exact"


@pytest.mark.parametrize(
    "spec", ["", "exakt", "exact:1", "embeddings", "embedding:", "embedding:high", "embedding:0", "embedding:1.5"]
)
def test_load_judge_rejects_bad_specs_in_one_line(spec: str) -> None:
    with pytest.raises(UserError) as error:
        load_judge(spec)
    message = str(error.value)
    assert "\n" not in message and "'exact'" in message and "embedding:THRESHOLD" in message


@pytest.fixture(scope="module")
def minilm() -> EmbeddingJudge:
    return EmbeddingJudge()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("a dog", "dog", True),
        ("Three", "3", True),
        ("rainy", "raining", True),  # cosine 0.90
        ("sofa", "couch", True),  # 0.86
        ("red", "blue", False),  # 0.73
        ("blue", "purple", False),  # 0.75, the closest pair of distinct world answers
        ("yes", "no", False),  # 0.73
        ("2", "3", False),  # 0.87: numbers are compared exactly
        ("8:00", "9:00", False),  # 0.91
        ("", "nothing", False),
    ],
)
def test_embedding_judge(minilm: EmbeddingJudge, a: str, b: str, same: bool) -> None:
    assert minilm.name == "embedding" and minilm.threshold == 0.8
    assert minilm.same([(a, b), (b, a)]) == [same, same]


@pytest.mark.slow
def test_embedding_judge_respects_its_threshold(minilm: EmbeddingJudge) -> None:
    pair = [("it is raining", "rainy")]  # cosine 0.77
    assert minilm.same(pair) == [False]
    loose = load_judge("embedding:0.7")
    assert isinstance(loose, EmbeddingJudge) and loose.threshold == 0.7
    assert loose.same(pair) == [True]
    assert loose.same([("red", "blue")]) == [True]  # 0.73: why the default is higher
    assert load_judge("embedding:0.95").same([("rainy", "raining")]) == [False]


@pytest.mark.slow
def test_embedding_judge_in_consensus_and_score(minilm: EmbeddingJudge) -> None:
    assert consensus(["sofa", "couch", "a couch"], minilm) == "couch"
    verdicts = score_many(["raining", "snowy", "red"], [["rainy"] * 3, ["rainy", "raining"], ["2", "3"]], minilm)
    assert verdicts == [Verdict("rainy", 0), Verdict("rainy", 1), Verdict(None, 0)]
