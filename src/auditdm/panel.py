"""The panel: the target, the references and the judge, which answer probes and score them
(the score s of SPEC section 2: the target's answer against the references' consensus).

One panel serves the audit (each probe's answers and score) and the GRPO reward (the
score): only the models' answers enter it, never the oracle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from auditdm.backends import default_references
from auditdm.errors import UserError
from auditdm.judge import Judge, load_judge, score_many
from auditdm.models import CONCURRENCY, VLM, ReplyError, load_model
from auditdm.records import Answers, Probe

if TYPE_CHECKING:
    from PIL import Image

T = TypeVar("T")


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
    concurrent: bool = False  # ask every model at once: some compute elsewhere (a server, Ray actors)

    def answer(self, probes: Sequence[Probe]) -> tuple[list[Probe], list[Answers | None]]:
        """The probes and the answers and score of every valid one (with a picture and a
        question), in order; None for a failed probe (it scores 0). A valid probe that some
        model, or the judge, could not answer (``ReplyError``) comes back failed, with the
        reason (see :func:`lost_reply`)."""
        valid = [p for p in probes if p.valid]
        if not valid:
            return list(probes), [None] * len(probes)
        images = [p.picture.image for p in valid if p.picture is not None]
        questions = [p.question or "" for p in valid]
        asks: list[tuple[VLM, Callable[[], list[Any]]]] = [(self.target, partial(self.target.generate, images, questions)),
                                                           *((r, partial(self._answers, r, images, questions))
                                                             for r in self.references)]  # fmt: skip
        (targets, *rated), failed = _ask(asks, self.concurrent)
        answered = [i for i in range(len(valid)) if i not in failed]
        rows = [[answers[i] for answers in rated] for i in answered]
        votes = [tuple(a if self.min_confidence is None or p >= self.min_confidence else "" for a, p in row)
                 for row in rows]  # fmt: skip  # an empty answer never agrees: an abstention
        verdicts = score_many([targets[i] for i in answered], votes, self.judge, self.quorum)
        failed |= {i: no_answer(self.judge.name, v.error) for i, v in zip(answered, verdicts) if v.error}
        scored = {i: Answers(targets[i], tuple(a for a, _ in row), v.consensus, v.score)
                  for i, row, v in zip(answered, rows, verdicts) if not v.error}  # fmt: skip
        made: list[Probe] = []
        answers: list[Answers | None] = []
        positions = iter(range(len(valid)))
        for probe in probes:
            i = next(positions) if probe.valid else None
            made.append(dataclasses.replace(probe, error=failed[i]) if i in failed else probe)
            answers.append(None if i is None else scored.get(i))
        return made, answers

    def _answers(self, reference: VLM, images: list[Image.Image], questions: list[str]) -> list[tuple[str, float]]:
        if self.min_confidence is not None:
            return reference.confidences(images, questions)
        try:
            return [(answer, 1.0) for answer in reference.generate(images, questions)]
        except ReplyError as error:  # the replies that came, in the shape of the ones above
            raise ReplyError(reference.name, [None if r is None else (r, 1.0) for r in error.replies],
                             error.reasons) from None  # fmt: skip


def _ask(asks: Sequence[tuple[VLM, Callable[[], list[Any]]]],
         concurrent: bool) -> tuple[list[list[Any]], dict[int, str]]:  # fmt: skip
    """Every model's replies, and why a probe got none (the reason of the first model, in
    order, that gave none; as asked one by one even when asked at once): position -> reason."""
    reasons: list[dict[int, str]] = [{} for _ in asks]
    jobs = [partial(_replies, model, ask, found) for (model, ask), found in zip(asks, reasons)]
    if concurrent:
        with ThreadPoolExecutor(len(jobs)) as pool:
            replies = list(pool.map(lambda job: job(), jobs))
    else:
        replies = [job() for job in jobs]
    failed: dict[int, str] = {}
    for found in reasons:
        for i, reason in found.items():
            failed.setdefault(i, reason)
    return replies, failed


def _replies(model: VLM, ask: Callable[[], list[T]], failed: dict[int, str]) -> list[T]:
    """What ``ask`` returns; where ``model`` gave no reply, why goes into ``failed`` (the
    first reason a probe gets), and the reply is None: that probe is not scored."""
    try:
        return ask()
    except ReplyError as error:
        for i, reason in enumerate(error.reasons):
            if reason is not None:
                failed.setdefault(i, no_answer(model.name, reason))
        replies: list[T] = error.replies
        return replies


def no_answer(name: str, reason: str) -> str:
    """A probe's error when the model or judge ``name`` gave no reply for it."""
    return f"{name} gave no answer: {reason}"


def lost_reply(error: str | None, panel: Panel) -> bool:
    """Whether a probe failed only because a member of ``panel`` lost a reply (a resume asks
    again), not for what the auditor or the synthesizer made of it (which asking again
    cannot change)."""
    names = (panel.target.name, *(r.name for r in panel.references), panel.judge.name)
    return error is not None and any(error.startswith(no_answer(name, "")) for name in names)


def check_min_confidence(value: float | None) -> None:
    """A clear error for a confidence gate outside (0, 1]."""
    if value is not None and not 0 < value <= 1:
        raise UserError(f"--min-confidence {value}: must be above 0 and at most 1")


def load_panel(target: str, references: Sequence[str], judge: str, quorum: int | None,
               min_confidence: float | None = None, load: Callable[..., VLM] = load_model,
               **options: Any) -> Panel:  # fmt: skip
    """Load the judge, the target and the references (none given: the target's kind's
    defaults), first errors first; each model's ``name`` is its spec; ``options`` (device,
    dtype, concurrency) go to every model; ``load`` loads each (elsewhere: ``ray_executor``)."""
    check_min_confidence(min_confidence)
    loaded_judge = load_judge(judge, concurrency=options.get("concurrency") or CONCURRENCY)
    loaded_target = load(target, **options)
    references = tuple(references) or default_references(target)
    if quorum is not None and not 1 <= quorum <= len(references):
        raise UserError(f"--quorum {quorum}: must be between 1 and the {len(references)} references")
    loaded = [load(spec, **options) for spec in references]
    # A model that computes elsewhere (a server, Ray actors) is asked beside the others, not after them:
    # the audit then waits for the slowest server, not for the sum of them.
    remote = any(getattr(model, "remote", False) for model in (loaded_target, *loaded))
    return Panel(loaded_target, loaded, loaded_judge, quorum, min_confidence, concurrent=remote)
