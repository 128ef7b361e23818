"""The panel's confidence gate: a reference unsure of its own answer abstains from the consensus."""

from __future__ import annotations

import pytest

from auditdm.errors import UserError
from auditdm.judge import load_judge, score
from auditdm.models import load_model
from auditdm.panel import Panel, load_panel, lost_reply, no_answer
from auditdm.records import Probe
from auditdm.world.domain import WORLD


def probes(n: int) -> list[Probe]:
    return [Probe(i, i, "question", None, seed=0, picture=s.picture, question=s.question)
            for i, s in enumerate(WORLD.images(n, seed=5))]  # fmt: skip


def test_references_below_the_confidence_abstain() -> None:
    judge = load_judge("exact")
    references = [load_model("world:ref-a"), load_model("world:ref-b")]
    target = load_model("world:target")
    made = probes(28)
    images, questions = [p.picture.image for p in made], [p.question for p in made]
    rated = [r.confidences(images, questions) for r in references]
    threshold = sorted(p for answers in rated for _, p in answers)[len(made)]  # some abstain, most do not
    _, gated = Panel(target, references, judge, min_confidence=threshold).answer(made)
    targets = target.generate(images, questions)
    for i, answers in enumerate(gated):
        votes = [a if p >= threshold else "" for a, p in (rated_answers[i] for rated_answers in rated)]
        assert answers is not None and answers.target == targets[i]
        assert answers.references == tuple(r[i][0] for r in rated)  # stored as answered
        assert (answers.consensus, answers.score) == (score(targets[i], votes, judge).consensus,
                                                      score(targets[i], votes, judge).score)  # fmt: skip
    _, ungated = Panel(target, references, judge).answer(made)
    assert sum(a.consensus is not None for a in gated if a) < sum(a.consensus is not None for a in ungated if a)


def test_failed_probes_get_no_answers() -> None:
    made = probes(2)
    failed = Probe(2, 0, "question", None, seed=0, picture=made[0].picture, question="", error="invalid question")
    panel = Panel(load_model("world:target"), [load_model("world:ref-a")], load_judge("exact"))
    answered, answers = panel.answer([made[0], failed, made[1]])
    assert answered == [made[0], failed, made[1]]
    assert answers[1] is None and answers[0] is not None and answers[2] is not None


@pytest.mark.parametrize("value", [0.0, -0.5, 1.5])
def test_a_confidence_outside_0_to_1_is_refused(value: float) -> None:
    with pytest.raises(UserError, match="--min-confidence"):
        load_panel("world:target", (), "exact", None, min_confidence=value)


def test_only_a_reply_a_panel_member_lost_is_worth_asking_again() -> None:
    panel = Panel(load_model("world:target"), [load_model("world:ref-a")], load_judge("exact"))
    assert lost_reply(no_answer("world:ref-a", "timeout"), panel) and lost_reply(no_answer("exact", "x"), panel)
    assert not lost_reply(f"no question from the auditor: {no_answer('world:ref-a', 'x')}", panel)
    assert not lost_reply(no_answer("openai:another", "x"), panel)
    assert not lost_reply("invalid question: what is", panel) and not lost_reply(None, panel)
