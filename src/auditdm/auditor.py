"""The auditor A: a vision-language model that writes probes for an image.

Given an image and one of three instruction prompts (``prompts.py``) it writes a question
(p_q), a caption that regenerates the image with small alterations (p_c), or an
image-editing command (p_e). Any model can audit: an auditor is a VLM plus a prompt set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditdm.backends import MODEL_FORMS, ModelSpec
from auditdm.errors import UserError
from auditdm.exploration import form_starts
from auditdm.models import VLM, load_model, read_card
from auditdm.prompts import MAX_NEW_TOKENS, PROMPTS
from auditdm.records import Task

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class Auditor:
    """A VLM prompted with one of the paper's prompt sets, sampling at ``temperature``;
    ``curves`` are its training curves, from its card (the report plots them). A share
    ``explore`` of its texts start with a form drawn from ``forms`` (per task: the forms its
    training saw the references answer together, ``exploration.py``), and it writes the rest."""

    model: VLM
    prompts: str
    temperature: float = 1.0
    curves: dict[str, list[float]] = field(default_factory=dict)
    explore: float = 0.0
    forms: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.prompts not in PROMPTS:
            raise UserError(f"unknown prompt set {self.prompts!r} (have: {', '.join(PROMPTS)})")

    @property
    def name(self) -> str:
        return self.model.name

    def write(self, images: Sequence[Image.Image], task: Task, seed: int) -> list[str]:
        """One text for each image, sampled reproducibly from ``seed``."""
        prompt = PROMPTS[self.prompts][task]
        starts = form_starts(self.forms.get(task, []), self.explore, len(images), seed) if self.explore else ()
        return self.model.generate(images, [prompt] * len(images), max_new_tokens=MAX_NEW_TOKENS[task],
                                   temperature=self.temperature, seed=seed, starts=starts)  # fmt: skip


def auditor_spec(spec: str) -> str:
    """An auditor's model spec: ``world:NAME``, ``hf:PATH``, or a bare path to a folder (a GRPO
    checkpoint, say), which is read as ``hf:PATH``."""
    if ":" not in spec and Path(spec).is_dir():
        return f"hf:{spec}"
    try:
        ModelSpec.parse(spec)
    except UserError:
        raise UserError(f"unknown auditor {spec!r}: expected one of {MODEL_FORMS}, or a model folder") from None
    return spec


def auditor_card(spec: str) -> dict[str, Any]:
    """The card of an auditor's folder (prompts, training settings and curves); empty for a
    hub id or a folder without one."""
    source = ModelSpec.parse(auditor_spec(spec)).resolve()
    return read_card(source) if isinstance(source, Path) else {}


def training_curves(card: dict[str, Any]) -> dict[str, list[float]]:
    """The training curves a card carries, by name."""
    curves = {"supervised warm-start loss": card["loss_curve"]} if card.get("loss_curve") else {}
    return {**curves, **card.get("curves", {})}


def load_auditor(spec: str, prompts: str | None = None, temperature: float = 1.0,
                 load: Callable[..., VLM] = load_model, explore: float = 0.0, **options: Any) -> Auditor:  # fmt: skip
    """The auditor a ``kind:name`` string (or a folder) names.

    The prompt set is ``prompts`` if given, else the one the folder's card says it was
    trained for (``world:baseline``: baseline), else ``auditdm``. A model whose card gives
    it another role (a target, a reference) is refused. ``load`` loads the model. With
    ``explore``, that share of its texts start with a form its card lists.
    """
    try:
        card = auditor_card(spec)
    except UserError as error:
        raise UserError(f"--auditor {spec}: {error}") from None
    if card.get("role", "auditor") != "auditor":
        raise UserError(f"{spec} is a {card['role']} model, not an auditor")
    if not 0 <= explore <= 1:
        raise UserError(f"--explore {explore}: a share of the auditor's texts, between 0 and 1")
    forms = card.get("forms", {})
    if explore and not any(forms.values()):
        raise UserError(f"--explore: {spec} lists no forms to start its texts with (an auditor trained by "
                        "train-auditor with --explore above 0, the default, does); "
                        "audit it with --explore 0")  # fmt: skip
    model = load(auditor_spec(spec), **options)
    model.name = spec  # as the user named it: a bare folder stays a folder in the store
    return Auditor(model, prompts or card.get("prompts") or "auditdm", temperature, training_curves(card), explore,
                   forms)  # fmt: skip
