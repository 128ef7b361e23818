"""Oracle verification: checks on hand-built scenes, and the figures of SPEC section 4."""

from __future__ import annotations

import pytest
from factories import probe_record

from auditdm.records import Picture, ProbeRecord
from auditdm.verify import check, majority, verified_figures
from auditdm.world.render import render
from auditdm.world.scene import Clock, Scene, Shape

SCENE = Scene(items={"top left": Shape("circle", "red"), "center": Shape("circle", "blue"),
                     "bottom right": Clock(3, 30)})  # fmt: skip


@pytest.mark.parametrize(
    ("question", "status", "truth", "skill"),
    [
        ("what time does the clock show ?", "answerable", "3:30", "clock"),
        ("what color is the circle ?", "ambiguous", None, "color"),
        ("what color is the star ?", "unanswerable", None, "color"),
        ("why is the sky blue ?", "outside grammar", None, None),
    ],
)
def test_check(question, status, truth, skill) -> None:
    result = check(question, Picture(render(SCENE), SCENE))
    assert result is not None and (result.status, result.truth, result.skill) == (status, truth, skill)


def row(score: int, status: str | None, truth: str | None, consensus: str | None, target: str | None,
        skill: str | None = "clock", world: bool = True, error: str | None = None,
        kind: tuple[str, str | None] = ("question", None)) -> ProbeRecord:  # fmt: skip
    return probe_record(pairing=kind[0], synthesis=kind[1], error=error, target_answer=target, consensus=consensus,
                        score=score, oracle_status=status, truth=truth, skill=skill, verifiable=world)  # fmt: skip


def test_figures() -> None:
    probes = [
        row(1, "answerable", "3:30", "3:30", "4:30"),  # genuine
        row(1, "answerable", "3", "three", "4", skill="counting", kind=("image", "edit")),  # genuine, normalised
        row(1, "answerable", "3:30", "2:30", "4:30"),  # the consensus is wrong: a shared error
        row(1, "ambiguous", None, "red", "blue", skill="color"),
        row(1, "outside grammar", None, "yes", "no", skill=None),
        row(0, "answerable", "3:30", "3:30", "3:30"),
        row(0, None, None, None, None, error="invalid caption"),  # failed probes count in the rate
        row(1, "answerable", "3:30", "3:30", "4:30", world=False),  # not a world image: not checked
    ]
    figures = verified_figures(probes, ["clock", "color", "texture"])
    assert figures is not None
    assert figures.checked == 7 and figures.search_success_rate == pytest.approx(2 / 7)
    precision = figures.precision
    assert (precision.genuine, precision.ambiguous, precision.unanswerable) == pytest.approx((2 / 5, 1 / 5, 2 / 5))
    assert figures.weakness_recall == pytest.approx(1 / 3)  # clock is covered; color and texture are not
    assert figures.genuine_by_kind == {"question": 1, "image+edit": 1}
    assert verified_figures([row(1, None, None, "a", "b", world=False)], ["clock"]) is None
    unknown = verified_figures(probes, None)
    assert unknown is not None and unknown.weakness_recall is None
    # Where the consensus is blind, no audit can find failures: those weak skills leave the recall.
    blind = verified_figures(probes, ["clock", "color", "texture"], blind=["texture"])
    assert blind is not None and blind.weakness_recall == pytest.approx(1 / 2) and blind.consensus_blind == ["texture"]
    assert verified_figures(probes, ["texture"], blind=["texture"]).weakness_recall is None  # type: ignore[union-attr]


def test_the_majority_is_the_audit_consensus_with_a_majority_quorum() -> None:
    # Normalised as the judge normalises ("Three" is "3"); empty answers never agree.
    assert majority([["3", "red", "", "yes"], ["Three", "blue", "", "yes"], ["4", "red", "", "no"]]) == [
        "3", "red", None, "yes"]  # fmt: skip
