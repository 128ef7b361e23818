"""The scorer's confidence gate: a reference unsure of its own answer abstains from the consensus."""

from __future__ import annotations

import pytest

from auditdm.errors import UserError
from auditdm.judge import load_judge, score
from auditdm.models import load_answerer
from auditdm.records import Probe
from auditdm.scoring import Scorer, load_scorer
from auditdm.sources import world_images


def probes(n: int) -> list[Probe]:
    return [Probe(i, i, "question", None, parent_image="", seed=0, picture=s.picture, question=s.question)
            for i, s in enumerate(world_images(n, seed=5))]  # fmt: skip


def test_references_below_the_confidence_abstain() -> None:
    judge = load_judge("exact")
    references = [load_answerer("world:ref-a"), load_answerer("world:ref-b")]
    target = load_answerer("world:target")
    made = probes(28)
    images, questions = [p.picture.image for p in made], [p.question for p in made]
    rated = [r.answer_with_confidence(images, questions) for r in references]
    threshold = sorted(p for answers in rated for _, p in answers)[len(made)]  # some abstain, most do not
    Scorer(target, references, judge, min_confidence=threshold).score(made)
    targets = target.answer(images, questions)
    for i, probe in enumerate(made):
        votes = [a if p >= threshold else "" for a, p in (answers[i] for answers in rated)]
        assert probe.reference_answers == tuple(answers[i][0] for answers in rated)  # stored as answered
        assert (probe.consensus, probe.score) == (score(targets[i], votes, judge).consensus,
                                                  score(targets[i], votes, judge).score)  # fmt: skip
    ungated = probes(28)
    Scorer(target, references, judge).score(ungated)
    assert sum(p.consensus is not None for p in made) < sum(p.consensus is not None for p in ungated)


@pytest.mark.parametrize("value", [0.0, -0.5, 1.5])
def test_a_confidence_outside_0_to_1_is_refused(value: float) -> None:
    with pytest.raises(UserError, match="--min-confidence"):
        load_scorer("world:target", (), "exact", None, min_confidence=value)
