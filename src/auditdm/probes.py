"""The one probe maker: from the auditor's text and a source image to a probe, for the
audit, the GRPO reward and the benchmarks alike.

A probe is planned (which image, which pairing and synthesis, which seed), then made: the
auditor's caption or edit command becomes a new picture through the synthesizer, and its
question is checked (``questions.py``). Whatever cannot become a probe is kept as a failed
probe with its reason, never dropped and never a crash.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from auditdm.errors import SynthesisError, UserError
from auditdm.models import ReplyError
from auditdm.questions import question_error
from auditdm.records import SYNTHESES, Pairing, Probe, SourceImage, Synthesis, Task
from auditdm.synth import Synthesizer

if TYPE_CHECKING:
    from PIL import Image


class Writer(Protocol):
    """What writes a probe's text: an auditor (``auditor.Auditor``)."""

    def write(self, images: Sequence[Image.Image], task: Task, seed: int) -> list[str]: ...


def derive_seed(*parts: object) -> int:
    """A seed of its own for every part of a run (a probe, a batch's questions, ...)."""
    return zlib.crc32(":".join(map(str, parts)).encode())


NO_QUESTION = "(Q, I*) probes ask each image's original question, and none of these images has one"


def inapplicable_pairings(pairings: Sequence[Pairing], sources: Sequence[SourceImage]) -> dict[Pairing, str]:
    """The pairings that apply to none of ``sources``, each with why."""
    if "image" in pairings and all(source.question is None for source in sources):
        return {"image": NO_QUESTION}
    return {}


def probe_kinds(pairings: Sequence[Pairing], syntheses: Sequence[Synthesis],
                source: SourceImage) -> list[tuple[Pairing, Synthesis | None]]:  # fmt: skip
    """The (pairing, synthesis) kinds of probe an image allows, in a fixed order; an error
    naming the image when it allows none."""
    kinds: list[tuple[Pairing, Synthesis | None]] = []
    for pairing in pairings:
        if pairing == "question":
            kinds.append(("question", None))
        elif pairing == "both" or source.question is not None:  # (Q, I*) needs an original question
            kinds += [(pairing, synthesis) for synthesis in syntheses]
    if not kinds:
        raise UserError(f"{source.name}: none of the pairings {', '.join(pairings)} applies "
                        "to an image without an original question; include 'question' or 'both'")  # fmt: skip
    return kinds


def plan_probe(sources: Sequence[SourceImage], pairings: Sequence[Pairing], syntheses: Sequence[Synthesis],
               seed: int, index: int, parents: Sequence[str] = ()) -> Probe:  # fmt: skip
    """Probe ``index``: images in turn; each image's kinds of probe in turn, starting at a
    different kind for each image, so that a single pass over the images mixes every kind.
    ``parents`` are the source images' addresses in the run store."""
    count = len(sources)
    source = sources[index % count]
    kinds = probe_kinds(pairings, syntheses, source)
    pairing, synthesis = kinds[(index // count + index % count) % len(kinds)]
    return Probe(index, index % count, pairing, synthesis, derive_seed(seed, "probe", index),
                 parents[index % count] if parents else "", source.picture,
                 source.question if pairing == "image" else None)  # fmt: skip


def with_instruction(probe: Probe, text: str, synthesizer: Synthesizer) -> Probe:
    """The probe with the auditor's caption or edit command: its new picture, or why none."""
    synthesis = probe.synthesis
    assert synthesis is not None and probe.picture is not None
    made = dataclasses.replace(probe, instruction=text, picture=None)
    if not text.strip():
        return dataclasses.replace(made, error=f"invalid {synthesis}: the auditor wrote nothing")
    try:
        if synthesis == "caption":
            picture = synthesizer.generate(text, probe.seed)
        else:
            picture = synthesizer.edit(probe.picture, text, probe.seed)
    except SynthesisError as error:
        return dataclasses.replace(made, error=f"invalid {synthesis}: {error}")
    return dataclasses.replace(made, picture=picture)


def with_question(probe: Probe, text: str) -> Probe:
    """The probe with the auditor's question (Q*), or why it is no valid one."""
    return dataclasses.replace(probe, question=text, error=question_error(text, probe.picture))


def make_probes(planned: Sequence[Probe], auditor: Writer, synthesizer: Synthesizer, *seed: object) -> list[Probe]:
    """Make a batch of planned probes: the auditor writes captions and commands from the
    original images, the synthesizer draws them, then the auditor writes the questions
    (the paper's Q* = A(I', p_q)) about the images each probe ends up with.

    ``seed`` parts fix every sample of the batch (one auditor call per task)."""
    made = {p.index: p for p in planned}
    for synthesis in SYNTHESES:
        group = [p for p in planned if p.synthesis == synthesis]
        for probe, text in zip(group, _write(auditor, group, synthesis, derive_seed(*seed, synthesis))):
            made[probe.index] = (with_instruction(probe, text, synthesizer) if isinstance(text, str) else
                                 dataclasses.replace(probe, picture=None, error=text.reason))  # fmt: skip
    asking = [p for p in made.values() if p.pairing != "image" and p.error is None]
    for probe, text in zip(asking, _write(auditor, asking, "question", derive_seed(*seed, "question"))):
        made[probe.index] = with_question(probe, text) if isinstance(text, str) else (
            dataclasses.replace(probe, error=text.reason))  # fmt: skip
    return [made[p.index] for p in planned]


@dataclass(frozen=True)
class _NoText:
    """The auditor (a remote model) gave no text for a probe: why."""

    reason: str


def _write(auditor: Writer, probes: Sequence[Probe], task: Task, seed: int) -> list[str | _NoText]:
    if not probes:
        return []
    try:
        return list(auditor.write([p.picture.image for p in probes if p.picture is not None], task, seed))
    except ReplyError as error:
        return [_NoText(f"no {task} from the auditor: {reason}") if reason else text
                for text, reason in zip(error.replies, error.reasons)]  # fmt: skip
