"""The judge D and the reference consensus: is the target's answer the references' answer?

One scoring function, :func:`score_many`, serves the audit (a verdict per probe) and the
GRPO reward (the verdict's score). A probe the references do not agree on scores 0: with no
consensus we cannot say the target is wrong, so it counts as unanswerable.

A judge that asks a remote model (``openai:``, in ``llm_judge``) can lose a reply: it raises
``ReplyError``, and the probes whose verdict needed that pair get no verdict but the reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from auditdm.embed import embed, sentence_model
from auditdm.errors import UserError
from auditdm.models import CONCURRENCY, ReplyError

_NUMBER_WORDS = {word: str(n) for n, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}  # fmt: skip
_ARTICLES = {"a", "an", "the"}
# Any punctuation, except a colon or point between digits ("3:30", "2.5").
_PUNCTUATION = re.compile(r"(?!(?<=\d)[:.](?=\d))(?:[^\w\s]|_)")
_NUMBER = re.compile(r"\d+(?:[:.]\d+)?")
_SPECS = ("valid judges: 'exact', 'embedding', 'embedding:THRESHOLD' (0 < THRESHOLD <= 1), "
          "'openai:MODEL[@BASE_URL]' (an LLM judge)")


def normalize_answer(text: str) -> str:
    """VQA-style normal form of a short answer: "The Red." -> "red", "Three" -> "3"."""
    text = text.lower().strip()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # thousands separator: "1,000" is one number
    text = re.sub(r"['’]", "", text)  # "o'clock" -> "oclock", not "o clock"
    words = _PUNCTUATION.sub(" ", text).split()
    return " ".join(_NUMBER_WORDS.get(w, w) for w in words if w not in _ARTICLES)


class Judge(Protocol):
    """Decides, in batches, whether two answers mean the same thing."""

    name: str

    def same(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """One bool per pair: do its two answers mean the same thing? (``ReplyError``, with
        None for each pair it could not decide, from a judge that asks a remote model.)"""
        ...


@dataclass(frozen=True)
class Decision:
    """A judge's decision worth keeping (an LLM's: each costs a request): are answers ``a``
    and ``b`` the same, and the judge's own reply that said so."""

    a: str
    b: str
    same: bool
    reply: str


@runtime_checkable
class Remembering(Protocol):
    """A judge whose decisions the run stores, and gives back on resume, so that none is asked twice."""

    name: str

    def recall(self, decisions: Iterable[Decision]) -> None:
        """Take these decisions as made (a resumed run's stored ones)."""
        ...

    def unsaved(self) -> list[Decision]:
        """The decisions made since the last call, for the store."""
        ...


class ExactJudge:
    """Same iff equal after :func:`normalize_answer`."""

    name = "exact"

    def same(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        return [normalize_answer(a) == normalize_answer(b) for a, b in pairs]


class EmbeddingJudge:
    """Same iff equal after normalisation, or MiniLM cosine similarity >= ``threshold``.

    The default 0.8 is above every pair of distinct answers of the embedded world (the closest
    are blue/purple 0.75, yes/no 0.73, red/blue 0.73) and below clear synonyms (sofa/couch
    0.86, car/automobile 0.87, rainy/raining 0.90). MiniLM barely tells numbers apart (2/3 0.87,
    82/85 0.92, 8:00/9:00 0.91), so answers whose numbers differ are never the same.
    """

    name = "embedding"
    _CACHE_LIMIT = 200_000  # ~300 MB of vectors; a long GRPO run sees ever new strings

    def __init__(self, threshold: float = 0.8) -> None:
        if not 0 < threshold <= 1:
            raise UserError(f"embedding judge threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        sentence_model()  # load now: a missing model fails here, not mid-audit
        self._cache: dict[str, Any] = {}

    def same(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        normal = [(normalize_answer(a), normalize_answer(b)) for a, b in pairs]
        verdicts = [_settled(a, b) for a, b in normal]
        self._embed(s for (a, b), v in zip(normal, verdicts) if v is None for s in (a, b))
        return [
            v if v is not None else float(self._cache[a] @ self._cache[b]) >= self.threshold
            for (a, b), v in zip(normal, verdicts)
        ]

    def _embed(self, texts: Iterable[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if not missing:
            return
        if len(self._cache) + len(missing) > self._CACHE_LIMIT:
            self._cache.clear()
        self._cache.update(zip(missing, embed(missing)))


def _settled(a: str, b: str) -> bool | None:
    """The verdict on two normal forms without embeddings, or None where they must decide."""
    if a == b:
        return True
    if not a or not b or _NUMBER.findall(a) != _NUMBER.findall(b):
        return False
    return None


def load_judge(spec: str, concurrency: int = CONCURRENCY) -> Judge:
    """A judge from its spec: ``exact``, ``embedding``, ``embedding:0.75`` (the threshold) or
    ``openai:MODEL[@BASE_URL]`` (an LLM judge, asked ``concurrency`` requests at a time)."""
    kind, colon, threshold = spec.strip().partition(":")
    if kind == "openai":
        from auditdm.llm_judge import load

        return load(threshold, concurrency=concurrency)
    if kind == "exact" and not colon:
        return ExactJudge()
    if kind == "embedding" and not colon:
        return EmbeddingJudge()
    if kind == "embedding":
        try:
            value = float(threshold)
        except ValueError:
            value = float("nan")
        if not 0 < value <= 1:
            raise UserError(f"bad threshold in judge {spec!r}; {_SPECS}")
        return EmbeddingJudge(value)
    raise UserError(f"unknown judge {spec!r}; {_SPECS}")


@dataclass(frozen=True)
class Verdict:
    """The references' consensus on a probe (None: none) and 1 iff the target disagrees with
    it; ``error`` says why there is no verdict (the judge lost a reply it needed)."""

    consensus: str | None
    score: int
    error: str | None = None


def consensus(answers: Sequence[str], judge: Judge, quorum: int | None = None) -> str | None:
    """The answer at least ``quorum`` of ``answers`` agree on (None: all of them), else None.

    Answers are grouped greedily (each joins the first group whose first member the judge
    finds the same); the largest group, the earliest on ties, wins if it reaches the quorum,
    and its most common normalised answer is returned. Empty answers never agree.
    """
    [(agreed, lost)] = _consensus_many([answers], judge, quorum)
    if lost is not None:
        raise UserError(f"{judge.name} gave no answer: {lost}")
    return agreed


def score(target: str, references: Sequence[str], judge: Judge, quorum: int | None = None) -> Verdict:
    """Score 1 iff the references reach a consensus and the target's answer differs from it."""
    return score_many([target], [references], judge, quorum)[0]


def score_many(targets: Sequence[str], references: Sequence[Sequence[str]], judge: Judge,
               quorum: int | None = None) -> list[Verdict]:  # fmt: skip
    """:func:`score` for many probes, with two judge calls in all (a batch is cheaper than many)."""
    if len(targets) != len(references):
        raise ValueError(f"{len(targets)} target answers but {len(references)} reference sets")
    agreed = _consensus_many(references, judge, quorum)
    pairs = [None if c is None else (normalize_answer(t), c) for t, (c, _) in zip(targets, agreed)]
    same, lost = _ask(judge, filter(None, pairs))
    return [Verdict(c, 0, why) if pair is None else Verdict(c, 0, lost[pair]) if pair in lost
            else Verdict(c, int(not same[pair])) for pair, (c, why) in zip(pairs, agreed)]  # fmt: skip


def _consensus_many(answer_sets: Sequence[Sequence[str]], judge: Judge,
                    quorum: int | None) -> list[tuple[str | None, str | None]]:  # fmt: skip
    """Each set's consensus, or None and why the judge could not decide it (else None)."""
    normal = [[normalize_answer(a) for a in answers] for answers in answer_sets]
    for answers in normal:
        if quorum is not None and not 1 <= quorum <= len(answers):
            raise ValueError(f"quorum must be between 1 and {len(answers)} (the number of answers), got {quorum}")
    # Every pair of distinct answers, first-seen order first: group heads always come first.
    distinct = [list(dict.fromkeys(a for a in answers if a)) for answers in normal]
    pairs = [[(d[i], d[j]) for i in range(len(d)) for j in range(i + 1, len(d))] for d in distinct]
    same, lost = _ask(judge, [pair for among in pairs for pair in among])
    found: list[tuple[str | None, str | None]] = []
    for answers, among in zip(normal, pairs):
        why = next((lost[pair] for pair in among if pair in lost), None)  # any lost pair might have mattered
        found.append((None, why) if why else (_agree(answers, same, len(answers) if quorum is None else quorum), None))
    return found


def _agree(answers: list[str], same: dict[tuple[str, str], bool], quorum: int) -> str | None:
    groups: list[list[str]] = []
    for answer in filter(None, answers):
        group = next((g for g in groups if g[0] == answer or same[g[0], answer]), None)
        if group is None:
            groups.append([answer])
        else:
            group.append(answer)
    largest = max(groups, key=len, default=[])
    if not largest or len(largest) < quorum:
        return None
    return Counter(largest).most_common(1)[0][0]  # most_common keeps first-seen order on ties


def _ask(judge: Judge, pairs: Iterable[tuple[str, str]]) -> tuple[dict[tuple[str, str], bool],
                                                                   dict[tuple[str, str], str]]:  # fmt: skip
    """The judge's answer for each pair, asked once per distinct pair in one batch; and why,
    for each pair it lost."""
    distinct = list(dict.fromkeys(pairs))
    answers = {pair: True for pair in distinct if pair[0] == pair[1]}  # equal answers agree under any judge
    asked = [pair for pair in distinct if pair not in answers]
    try:
        return answers | dict(zip(asked, judge.same(asked), strict=True)), {}
    except ReplyError as error:
        lost = {pair: why for pair, why in zip(asked, error.reasons, strict=True) if why is not None}
        return answers | {pair: bool(r) for pair, r in zip(asked, error.replies) if pair not in lost}, lost
