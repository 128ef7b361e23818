"""The score s of probes: the target's answer against the references' consensus (SPEC section 2).

One scorer serves the audit (each probe's verdict) and the GRPO reward (its score): only the
models' answers enter it, never the oracle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from auditdm.errors import UserError
from auditdm.judge import Judge, load_judge, score_many
from auditdm.models import Answerer, load_answerer, parse_spec
from auditdm.records import Probe

if TYPE_CHECKING:
    from PIL import Image

T = TypeVar("T")


@dataclass
class Scorer:
    """The target, the references and the judge; ``model_seconds`` adds up time in model calls.

    With ``min_confidence``, a reference whose probability of its own answer is below it
    abstains: its answer is kept but does not vote, so with every reference required (the
    default quorum) an unsure reference leaves the probe without a consensus. References
    agree confidently on what they know and by chance, near 50 %, on yes/no questions they
    cannot answer (BENCHMARKS.md).
    """

    target: Answerer
    references: list[Answerer]
    judge: Judge
    quorum: int | None = None
    min_confidence: float | None = None
    model_seconds: float = 0.0

    def timed(self, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.model_seconds += time.perf_counter() - started

    def score(self, probes: Sequence[Probe]) -> None:
        """Answer every valid probe (with a picture and a question) and set its answers,
        consensus and score in place; failed probes keep score 0."""
        valid = [p for p in probes if p.error is None and p.picture is not None and p.question is not None]
        if not valid:
            return
        images = [p.picture.image for p in valid if p.picture is not None]
        questions = [p.question or "" for p in valid]
        targets = self.timed(lambda: self.target.answer(images, questions))
        rated = [self.timed(lambda: self._answers(reference, images, questions)) for reference in self.references]
        per_probe = [tuple(answer for answer, _ in answers) for answers in zip(*rated)]
        votes = [tuple(a if self.min_confidence is None or p >= self.min_confidence else "" for a, p in answers)
                 for answers in zip(*rated)]  # fmt: skip  # an empty answer never agrees: an abstention
        for probe, target, references, verdict in zip(valid, targets, per_probe,
                                                       score_many(targets, votes, self.judge, self.quorum)):  # fmt: skip
            probe.target_answer, probe.reference_answers = target, references
            probe.consensus, probe.score = verdict.consensus, verdict.score

    def _answers(self, reference: Answerer, images: list[Image.Image], questions: list[str]) -> list[tuple[str, float]]:
        if self.min_confidence is None:
            return [(answer, 1.0) for answer in reference.answer(images, questions)]
        return reference.answer_with_confidence(images, questions)


def resolve_references(target: str, references: Sequence[str]) -> tuple[str, ...]:
    """The references as given, or for a world target every reference of the world zoo."""
    if references:
        return tuple(references)
    if parse_spec(target)[0] != "world":
        raise UserError("name the reference models with --references (the world's are the default only "
                        "for a world target)")  # fmt: skip
    from auditdm.world.zoo.zoo import list_zoo

    return tuple(f"world:{m.name}" for m in list_zoo() if m.role == "reference")


def check_min_confidence(value: float | None) -> None:
    """A clear error for a confidence gate outside (0, 1]."""
    if value is not None and not 0 < value <= 1:
        raise UserError(f"--min-confidence {value}: must be above 0 and at most 1")


def load_scorer(target: str, references: Sequence[str], judge: str, quorum: int | None,
                min_confidence: float | None = None, **options: object) -> Scorer:  # fmt: skip
    """Load the judge, the target and the references (none given: the world's), first errors
    first; each answerer's ``name`` is its spec; ``options`` (device, dtype) go to every model."""
    check_min_confidence(min_confidence)
    loaded_judge = load_judge(judge)
    loaded_target = load_answerer(target, **options)
    references = resolve_references(target, references)
    if quorum is not None and not 1 <= quorum <= len(references):
        raise UserError(f"--quorum {quorum}: must be between 1 and the {len(references)} references")
    return Scorer(loaded_target, [load_answerer(spec, **options) for spec in references], loaded_judge, quorum,
                  min_confidence)  # fmt: skip
