"""Typed records handed between the audit's stages: pictures, source images, probes and
failure categories.

A probe is one attempt to make the target fail: a question about an image, where the
auditor wrote the question, the image (through a caption or an edit command), or both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from PIL import Image

    from auditdm.world.scene import Scene

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


def probe_kind(pairing: str, synthesis: str | None) -> str:
    """A probe's kind as the summary names it: ``question``, ``both+caption``, ``image+edit``..."""
    return pairing + (f"+{synthesis}" if synthesis else "")


@dataclass(frozen=True)
class Picture:
    """An image, with its world scene when it has one (then E can edit it and the oracle check it)."""

    image: Image.Image
    scene: Scene | None = None


@dataclass(frozen=True)
class SourceImage:
    """An image to audit on, with its original question Q when it has one."""

    name: str
    picture: Picture
    question: str | None = None


@dataclass
class Probe:
    """One probe as it moves through the audit; stored once complete.

    ``error`` says why the probe failed (an invalid auditor output); a failed probe has no
    answers and scores 0. ``check`` is the oracle's verdict on world images, else None.
    """

    index: int
    source: int
    pairing: Pairing
    synthesis: Synthesis | None
    parent_image: str
    seed: int
    instruction: str | None = None  # the caption or edit command the auditor wrote
    question: str | None = None
    picture: Picture | None = None
    image: str | None = None  # content address of the probed image
    error: str | None = None
    target_answer: str | None = None
    reference_answers: tuple[str, ...] = ()
    consensus: str | None = None
    score: int = 0
    check: OracleCheck | None = None


@dataclass(frozen=True)
class OracleCheck:
    """What the world's oracle says of a probe's question on its image.

    ``status`` is answerable, ambiguous, unanswerable, or ``outside grammar`` (a question
    the oracle cannot read); ``truth`` is set only when answerable.
    """

    status: str
    truth: str | None
    skill: str | None


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
