"""Typed records handed between stages, all frozen: pictures, source images, probes, their
answers and oracle checks, stored probes, failure categories and the run summary.

A probe is one attempt to make the target fail: a question about an image, where the
auditor wrote the question, the image (through a caption or an edit command), or both.
Stages return new records instead of filling shared ones, so a batch can be made in one
place and answered in another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from PIL import Image

Pairing = Literal["question", "image", "both"]
"""(Q*, I): a new question about the original image; (Q, I*): the original question about a
new image; (Q*, I*): a new question about a new image."""
PAIRINGS: tuple[Pairing, ...] = ("question", "image", "both")

Synthesis = Literal["caption", "edit"]
"""How a new image is made: regenerated from an auditor caption (G), or edited by an auditor
command (E)."""
SYNTHESES: tuple[Synthesis, ...] = ("caption", "edit")

Task = Literal["question", "caption", "edit"]
"""What the auditor is asked to write: the paper's p_q, p_c and p_e."""
TASKS: tuple[Task, ...] = ("question", "caption", "edit")


def probe_kind(pairing: str, synthesis: str | None) -> str:
    """A probe's kind as the summary names it: ``question``, ``both+caption``, ``image+edit``..."""
    return pairing + (f"+{synthesis}" if synthesis else "")


class Scene(Protocol):
    """What an embedded domain knows an image contains; ``domain`` names the domain (in
    ``backends.DOMAINS``) that can edit the image and check questions about it."""

    domain: ClassVar[str]

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Picture:
    """An image, with its scene when it comes from an embedded domain (then that domain can
    edit it and its oracle check questions about it)."""

    image: Image.Image
    scene: Scene | None = None


@dataclass(frozen=True)
class SourceImage:
    """An image to audit on, with its original question Q when it has one, and the answer
    its dataset gives to Q when it has one (a dataset's label: no oracle's truth)."""

    name: str
    picture: Picture
    question: str | None = None
    answer: str | None = None


@dataclass(frozen=True)
class Labelled:
    """A held-out example of an embedded domain: an image, a question, its true answer and
    the skill it tests (the weak-skill benchmark and `auditdm world eval` use them)."""

    image: Image.Image
    question: str
    answer: str
    skill: str


@dataclass(frozen=True)
class Probe:
    """A probe as made: what was asked about which picture, or why it failed.

    ``error`` says why the auditor's output is no valid probe (then it has no answers and
    scores 0). ``source`` is the index of the source image; ``parent_image`` its address in
    the run store.
    """

    index: int
    source: int
    pairing: Pairing
    synthesis: Synthesis | None
    seed: int
    parent_image: str = ""
    picture: Picture | None = None
    question: str | None = None
    instruction: str | None = None  # the caption or edit command the auditor wrote
    error: str | None = None

    @property
    def valid(self) -> bool:
        """A probe that can be answered: no error, a picture and a question."""
        return self.error is None and self.picture is not None and self.question is not None


@dataclass(frozen=True)
class Answers:
    """The panel's answers to a probe: the target's, each reference's, their consensus
    (None: none) and the score s (1 iff the target disagrees with the consensus)."""

    target: str
    references: tuple[str, ...]
    consensus: str | None
    score: int


@dataclass(frozen=True)
class OracleCheck:
    """What a domain's oracle says of a probe's question on its image.

    ``status`` is answerable, ambiguous, unanswerable, or ``outside grammar`` (a question
    the oracle cannot read); ``truth`` is set only when answerable.
    """

    status: str
    truth: str | None
    skill: str | None


@dataclass(frozen=True)
class ProbeRecord:
    """A probe as the run store holds it (one row of ``probes``, named as its columns).

    ``answers`` maps every model to its answer; ``verifiable`` is true when its source
    image comes from an embedded domain, so the oracle checked it (``oracle_status``, ...).
    """

    idx: int
    source: int
    pairing: str
    synthesis: str | None
    auditor: str
    prompts: str
    seed: int
    parent_image: str
    instruction: str | None
    question: str | None
    image: str | None
    error: str | None
    target_answer: str | None
    consensus: str | None
    score: int
    oracle_status: str | None
    truth: str | None
    skill: str | None
    verifiable: bool
    answers: dict[str, str]

    @property
    def kind(self) -> str:
        return probe_kind(self.pairing, self.synthesis)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def distinct_probes(probes: Sequence[ProbeRecord]) -> list[ProbeRecord]:
    """The probes less repeats: a valid probe that asks an earlier one's question of the same
    image (images are stored by content) adds nothing; every failed probe counts."""
    seen: set[tuple[str | None, str | None]] = set()
    kept = []
    for probe in probes:
        key = (probe.image, probe.question)
        if probe.error is None and key in seen:
            continue
        seen.add(key)
        kept.append(probe)
    return kept


@dataclass(frozen=True)
class Category:
    """A weakness category: its name, what it holds, and its most telling probes."""

    name: str
    description: str
    size: int  # flagged probes in it
    probes: int  # valid probes nearest to it, flagged or not
    flag_rate: float
    examples: tuple[int, ...]  # probe indices, most typical first
    members: tuple[int, ...]  # every flagged probe in it


@dataclass(frozen=True)
class Precision:
    """Of the flagged probes, the shares that are genuine target failures, ambiguous, and
    unanswerable or a shared error."""

    genuine: float
    ambiguous: float
    unanswerable: float


@dataclass(frozen=True)
class VerifiedFigures:
    """The oracle's figures of an audit (SPEC section 4), over probes on domain images."""

    checked: int
    search_success_rate: float
    precision: Precision
    weakness_recall: float | None
    weak_skills: list[str] | None
    consensus_blind: list[str] | None  # skills the references cannot vouch for: left out of the recall
    genuine_by_skill: dict[str, int]
    genuine_by_kind: dict[str, int]
    category_purity: float | None


@dataclass(frozen=True)
class KindCounts:
    """Probes of one kind: made, flagged, and (verifiable runs) genuine failures."""

    probes: int
    flagged: int
    genuine: int | None


@dataclass(frozen=True)
class DatasetAccuracy:
    """How often each model, and the references' consensus, answered the original images'
    own questions as their dataset does (normalised exact match, VQA-style): the dataset's
    labels, not an oracle's check. No answer, or no consensus, counts as wrong."""

    questions: int
    target: float
    references: dict[str, float]
    consensus: float


@dataclass(frozen=True)
class RunSummary:
    """The run summary of SPEC section 6; ``to_dict()`` is the ``--json`` object."""

    run_dir: str
    target: str
    references: list[str]
    auditor: str
    prompts: str
    judge: str
    probes: int
    failed: int
    flagged: int  # every flagged probe, repeats included
    distinct_flagged: int  # flagged image-question pairs
    repeats: int  # valid probes that ask an earlier probe's question of the same image
    flag_rate: float  # over distinct probes
    by_kind: dict[str, KindCounts]
    seconds: float
    probes_per_second: float | None
    outside_model_share: float | None
    verified: VerifiedFigures | None
    categories: list[Category]
    dropped_pairings: dict[str, str]  # pairing -> why the audit made none of it
    dataset_accuracy: DatasetAccuracy | None  # on the original images, when their dataset has answers

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["categories"] = [
            {"name": c.name, "size": c.size, "probes": c.probes, "flag_rate": round(c.flag_rate, 4),
             "description": c.description, "examples": list(c.examples)}
            for c in self.categories
        ]  # fmt: skip
        return data
