"""Verification of an audit by a domain's oracle (SPEC section 4), and the weak-skill
benchmark the weakness recall is measured against.

Only images from an embedded domain can be checked: their scene is known, so the oracle
says whether a flagged probe is a genuine target failure. None of this feeds the audit
score; it measures how far the consensus of reference models can be trusted as a stand-in
for the truth. Answers are compared as everywhere else: ``judge.normalize_answer``, and a
majority is ``judge.consensus`` with a majority quorum.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from auditdm.backends import domain_of
from auditdm.judge import ExactJudge, consensus, normalize_answer
from auditdm.records import (
    Category,
    Labelled,
    OracleCheck,
    Picture,
    Precision,
    ProbeRecord,
    VerifiedFigures,
)

if TYPE_CHECKING:
    from auditdm.models import VLM

# A weak skill counts as covered when at least this share of the genuine failures test it.
COVERAGE_SHARE = 0.02
# A skill is weak for the target when it is this far below the reference majority.
WEAK_MARGIN = 0.10
# Below this, the reference majority is no stand-in for the truth on a skill: it is blind there.
BLIND_BELOW = 0.85


def check(question: str, picture: Picture) -> OracleCheck | None:
    """The oracle's verdict on a question about a picture; None off the embedded domains."""
    if picture.scene is None:
        return None
    return domain_of(picture.scene).check(question, picture.scene)


def is_right(answer: str | None, check: OracleCheck | None) -> bool:
    """An answer the oracle confirms: the question is answerable and the answer is the truth."""
    if check is None or check.status != "answerable" or answer is None or check.truth is None:
        return False
    return normalize_answer(answer) == normalize_answer(check.truth)


def is_genuine(consensus: str | None, target_answer: str | None, check: OracleCheck | None) -> bool:
    """A real target failure: answerable, the consensus is the truth, the target's answer is not."""
    return is_right(consensus, check) and not is_right(target_answer, check)


def oracle_check(probe: ProbeRecord) -> OracleCheck | None:
    """The oracle's check of a stored probe; None where there was none."""
    return OracleCheck(probe.oracle_status, probe.truth, probe.skill) if probe.oracle_status else None


def category_purity(probes: Sequence[ProbeRecord], categories: Sequence[Category]) -> float | None:
    """Normalised mutual information between the categories of the flagged probes and the
    oracle's skills for them (flagged verifiable probes with a skill); None with fewer than two."""
    from sklearn.metrics import normalized_mutual_info_score

    category_of = {probe: i for i, c in enumerate(categories) for probe in c.members}
    pairs = [(category_of[p.idx], p.skill) for p in probes
             if p.verifiable and p.skill is not None and p.idx in category_of]  # fmt: skip
    if len(pairs) < 2:
        return None
    found, skills = zip(*pairs)
    return float(normalized_mutual_info_score(skills, found))


def verified_figures(
    probes: Sequence[ProbeRecord], weak_skills: Sequence[str] | None, categories: Sequence[Category] = (),
    blind: Sequence[str] | None = None,
) -> VerifiedFigures | None:
    """Search success rate, failure precision and weakness recall over stored probes.

    None when no probe could be checked (no domain images). Only verifiable probes count,
    failed ones included; the rates are over those. ``weak_skills`` None (unknown) leaves
    the recall out; recall counts only the weak skills not in ``blind`` (SPEC section 4:
    where the consensus is blind, no audit can be asked to find failures).
    """
    checked = [p for p in probes if p.verifiable]
    if not checked:
        return None
    flagged = [p for p in checked if p.score == 1]
    kinds: Counter[str] = Counter()
    genuine_skills: Counter[str] = Counter()
    genuine_kinds: Counter[str] = Counter()
    for p in flagged:
        if is_genuine(p.consensus, p.target_answer, oracle_check(p)):
            kinds["genuine"] += 1
            genuine_skills[p.skill or ""] += 1
            genuine_kinds[p.kind] += 1
        else:
            kinds["ambiguous" if p.oracle_status == "ambiguous" else "unanswerable"] += 1
    genuine = kinds["genuine"]
    recall = None
    if weak_skills is not None:
        visible = [s for s in weak_skills if s not in (blind or ())]
        covered = [s for s in visible if genuine and genuine_skills[s] / genuine >= COVERAGE_SHARE]
        recall = len(covered) / len(visible) if visible else None
    return VerifiedFigures(
        checked=len(checked),
        search_success_rate=genuine / len(checked),
        precision=Precision(*(kinds[k] / len(flagged) if flagged else 0.0
                              for k in ("genuine", "ambiguous", "unanswerable"))),  # fmt: skip
        weakness_recall=recall,
        weak_skills=None if weak_skills is None else list(weak_skills),
        consensus_blind=None if blind is None else list(blind),
        genuine_by_skill=dict(genuine_skills.most_common()),
        genuine_by_kind=dict(genuine_kinds),
        category_purity=category_purity(probes, categories) if categories else None,
    )


def accuracy_by_skill(examples: Sequence[Labelled], answers: Sequence[str | None]) -> dict[str, float]:
    """Share of right answers per skill, skills in the order they first appear (None is wrong)."""
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for example, given in zip(examples, answers, strict=True):
        total[example.skill] += 1
        right[example.skill] += given is not None and normalize_answer(given) == normalize_answer(example.answer)
    return {skill: right[skill] / total[skill] for skill in total}


def majority(answer_sets: Sequence[Sequence[str]]) -> list[str | None]:
    """Per question, the answer more than half the models gave (the audit's consensus rule
    with a majority quorum, exact judge), else None."""
    judge = ExactJudge()
    per_question = list(zip(*answer_sets, strict=True))
    return [consensus(answers, judge, quorum=len(answers) // 2 + 1) for answers in per_question]


def weak_skills(target: dict[str, float], reference: dict[str, float]) -> list[str]:
    """Skills where the target is at least ``WEAK_MARGIN`` below the reference majority."""
    return [s for s in target if target[s] <= reference[s] - WEAK_MARGIN + 1e-9]


def consensus_blind(reference: dict[str, float]) -> list[str]:
    """Skills where the reference majority is right less than ``BLIND_BELOW`` of the time."""
    return [s for s in reference if reference[s] < BLIND_BELOW]


def weak_and_blind(target: VLM, references: Sequence[VLM], examples: Sequence[Labelled]) -> tuple[list[str], list[str]]:
    """The skills where ``target`` is weak against the references' majority on ``examples``
    (a domain's held-out benchmark), and those where that majority is blind."""
    images = [e.image for e in examples]
    questions = [e.question for e in examples]
    votes = accuracy_by_skill(examples, majority([reference.generate(images, questions) for reference in references]))
    return weak_skills(accuracy_by_skill(examples, target.generate(images, questions)), votes), consensus_blind(votes)
