"""The auditor A: a vision-language model that writes probes for an image.

Given an image and one of three instruction prompts it writes a question (p_q), a caption
that regenerates the image with small alterations (p_c), or an image-editing command (p_e).
The prompts are the paper's (arXiv 2512.16921, appendix A.1), both the ones AuditDM trains
with and the prompt-engineering baseline's. Any VLM can audit: ``world:NAME`` (a zoo
auditor) and ``hf:PATH`` go through the same transformers code as the answerers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from auditdm.errors import UserError
from auditdm.records import Task

if TYPE_CHECKING:
    from PIL import Image

PROMPTS: dict[str, dict[Task, str]] = {
    "auditdm": {
        "caption": "You are given an image. Produce a detailed, literal caption that would allow a model to "
        "regenerate the image, but also introduce small alterations to certain visual attributes. Return a "
        "single final caption describing the modified version only.",
        "edit": "You are given an image. Generate a single image-editing command that describes how to modify "
        "the image. The modification must remain plausible in the real world. The command should be specific, "
        "actionable, and unambiguous. Return the editing command only.",
        "question": "You are given an image. Generate a single question that can be answered solely based on "
        "its visible content. Return the question only.",
    },
    "baseline": {
        "caption": "You are given an image. Produce a detailed, literal caption that would allow a model to "
        "regenerate the image, but introduce small changes that are easy for models to get wrong. Return a "
        "single caption describing the modified version only.",
        "edit": "You are given an image. Generate a single image-editing command that makes a realistic change "
        "but is challenging for vision models. The modification must remain plausible in the real world. The "
        "command should be specific, actionable, and unambiguous. Return the editing command only.",
        "question": "You are given an image. Generate a single question answerable from its visible content "
        "but challenging for vision-language models. Return the question only.",
    },
}
"""The instruction prompts by set: ``auditdm`` (p_q, p_c, p_e) and ``baseline`` (p^b)."""

# Room for the longest world caption (six items and the atmosphere) with a margin.
MAX_NEW_TOKENS: dict[Task, int] = {"question": 32, "caption": 96, "edit": 32}


class Auditor(Protocol):
    """Writes one text per image for a task (a question, a caption or an edit command)."""

    name: str
    prompts: str  # the prompt set in use

    def write(self, images: Sequence[Image.Image], task: Task, seed: int) -> list[str]:
        """One text for each image, sampled reproducibly from ``seed``."""
        ...


class VLMAuditor:
    """A transformers VLM prompted with the paper's instructions, sampling at ``temperature``."""

    def __init__(self, path: str, *, name: str, prompts: str, temperature: float = 1.0,
                 **options: Any) -> None:  # fmt: skip
        from auditdm.models.hf import HFAnswerer

        if prompts not in PROMPTS:
            raise UserError(f"unknown prompt set {prompts!r} (have: {', '.join(PROMPTS)})")
        self.name, self.prompts, self.temperature = name, prompts, temperature
        self.model = HFAnswerer(path, name=name, **options)  # device, dtype, batch_size, progress
        self.curves = training_curves(Path(path))

    def write(self, images: Sequence[Image.Image], task: Task, seed: int) -> list[str]:
        prompt = PROMPTS[self.prompts][task]
        return self.model.generate(images, [prompt] * len(images), max_new_tokens=MAX_NEW_TOKENS[task],
                                   temperature=self.temperature, seed=seed)  # fmt: skip


def auditor_card(folder: Path) -> dict[str, Any]:
    """The ``auditdm.json`` card of a model folder (prompts, training settings and curves);
    empty for a folder without one."""
    path = folder / "auditdm.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def training_curves(folder: Path) -> dict[str, list[float]]:
    """The training curves an auditor folder's card carries, by name (the report plots
    them); none for a folder without a card."""
    card = auditor_card(folder)
    curves = {"supervised warm-start loss": card["loss_curve"]} if card.get("loss_curve") else {}
    return {**curves, **card.get("curves", {})}


BACKENDS = ("world", "hf")


def auditor_folder(spec: str) -> Path:
    """The model folder of an auditor: ``world:NAME`` (a zoo auditor), ``hf:PATH``, or a bare
    path to a folder (a GRPO checkpoint, say)."""
    kind, sep, name = spec.partition(":")
    if not sep and Path(spec).is_dir():
        return Path(spec)
    if not sep or kind not in BACKENDS or not name:
        raise UserError(f"unknown auditor {spec!r}: expected one of " + ", ".join(f"{k}:NAME" for k in BACKENDS)
                        + ", or a model folder")  # fmt: skip
    if kind == "world":
        from auditdm.world.zoo.zoo import find_model

        model = find_model(name)
        if model.role != "auditor":
            raise UserError(f"world:{name} is a {model.role} model, not an auditor")
        return model.path
    return Path(name)


def load_auditor(spec: str, prompts: str | None = None, **options: object) -> VLMAuditor:
    """The auditor a ``kind:name`` string (or a folder) names.

    The prompt set is ``prompts`` if given, else the one the folder's ``auditdm.json`` card
    says it was trained for (``world:baseline``: baseline), else ``auditdm``.
    """
    folder = auditor_folder(spec)
    default = auditor_card(folder).get("prompts")
    return VLMAuditor(str(folder), name=spec, prompts=prompts or default or "auditdm", **options)  # type: ignore[arg-type]
