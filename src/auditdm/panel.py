"""The panel: the target, the references and the judge, which answer probes and score them
(the score s of SPEC section 2: the target's answer against the references' consensus).

One panel serves the audit (each probe's answers and score) and the GRPO reward (the
score): only the models' answers enter it, never the oracle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from auditdm.backends import default_references
from auditdm.errors import UserError
from auditdm.judge import Judge, load_judge, score_many
from auditdm.models import VLM, load_model
from auditdm.records import Answers, Probe

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class Panel:
    """The target, the references and the judge.

    With ``min_confidence``, a reference whose probability of its own answer is below it
    abstains: its answer is kept but does not vote, so with every reference required (the
    default quorum) an unsure reference leaves the probe without a consensus. References
    agree confidently on what they know and by chance, near 50 %, on yes/no questions they
    cannot answer (BENCHMARKS.md).
    """

    target: VLM
    references: Sequence[VLM]
    judge: Judge
    quorum: int | None = None
    min_confidence: float | None = None

    def answer(self, probes: Sequence[Probe]) -> list[Answers | None]:
        """The answers and score of every valid probe (one with a picture and a question),
        in order; None for a failed probe (it scores 0)."""
        valid = [p for p in probes if p.valid]
        if not valid:
            return [None] * len(probes)
        images = [p.picture.image for p in valid if p.picture is not None]
        questions = [p.question or "" for p in valid]
        targets = self.target.generate(images, questions)
        rated = [self._answers(reference, images, questions) for reference in self.references]
        per_probe = [tuple(answer for answer, _ in answers) for answers in zip(*rated)]
        votes = [tuple(a if self.min_confidence is None or p >= self.min_confidence else "" for a, p in answers)
                 for answers in zip(*rated)]  # fmt: skip  # an empty answer never agrees: an abstention
        verdicts = score_many(targets, votes, self.judge, self.quorum)
        answered = iter([Answers(t, refs, v.consensus, v.score) for t, refs, v in zip(targets, per_probe, verdicts)])
        return [next(answered) if p.valid else None for p in probes]

    def _answers(self, reference: VLM, images: list[Image.Image], questions: list[str]) -> list[tuple[str, float]]:
        if self.min_confidence is None:
            return [(answer, 1.0) for answer in reference.generate(images, questions)]
        return reference.confidences(images, questions)


def check_min_confidence(value: float | None) -> None:
    """A clear error for a confidence gate outside (0, 1]."""
    if value is not None and not 0 < value <= 1:
        raise UserError(f"--min-confidence {value}: must be above 0 and at most 1")


def load_panel(target: str, references: Sequence[str], judge: str, quorum: int | None,
               min_confidence: float | None = None, **options: object) -> Panel:  # fmt: skip
    """Load the judge, the target and the references (none given: the target's kind's
    defaults), first errors first; each model's ``name`` is its spec; ``options`` (device,
    dtype) go to every model."""
    check_min_confidence(min_confidence)
    loaded_judge = load_judge(judge)
    loaded_target = load_model(target, **options)
    references = tuple(references) or default_references(target)
    if quorum is not None and not 1 <= quorum <= len(references):
        raise UserError(f"--quorum {quorum}: must be between 1 and the {len(references)} references")
    return Panel(loaded_target, [load_model(spec, **options) for spec in references], loaded_judge, quorum,
                 min_confidence)  # fmt: skip
