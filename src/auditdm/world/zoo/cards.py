"""Where zoo models live, what each one is, and the ``world:`` model backend.

A zoo is a folder with one transformers model folder per model; each holds an
``auditdm.json`` card (role, recipe, training figures) beside the safetensors weights.
The shipped zoo is inside the package; ``AUDITDM_ZOO`` or ``--zoo`` point elsewhere.
``world:NAME`` (``backends.MODELS``) loads a zoo model through the transformers backend,
the same code as any ``hf:`` model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditdm.errors import UserError
from auditdm.models import CARD, read_card
from auditdm.models.hf import HFModel
from auditdm.records import Labelled

SHIPPED_ZOO = Path(__file__).resolve().parent.parent / "weights"


@dataclass(frozen=True)
class ZooModel:
    """One trained model of the zoo."""

    name: str
    role: str  # "target", "reference" or "auditor"
    path: Path
    card: dict[str, Any]


def zoo_dir(override: Path | str | None = None) -> Path:
    """The zoo folder in use: ``override``, else ``$AUDITDM_ZOO``, else the shipped one."""
    return Path(override or os.environ.get("AUDITDM_ZOO") or SHIPPED_ZOO)


def list_zoo(override: Path | str | None = None) -> list[ZooModel]:
    """Every model of a zoo, targets first, then references, each group by name."""
    folder = zoo_dir(override)
    cards = sorted(folder.glob(f"*/{CARD}")) if folder.is_dir() else []
    if not cards:
        raise UserError(f"{folder}: no zoo models here (train them with `auditdm world train --out {folder}`)")
    models = []
    for card_path in cards:
        card = read_card(card_path.parent)
        models.append(ZooModel(card_path.parent.name, card["role"], card_path.parent, card))
    order = {"target": 0, "reference": 1, "auditor": 2}
    return sorted(models, key=lambda m: (order.get(m.role, 3), m.name))


def find_model(name: str, override: Path | str | None = None) -> ZooModel:
    """The zoo model called ``name``, or a clear error listing the ones there are."""
    models = list_zoo(override)
    for model in models:
        if model.name == name:
            return model
    raise UserError(f"no world model named {name!r} (have: {', '.join(m.name for m in models)})")


def resolve(name: str) -> Path:
    """``world:NAME``: the folder of the zoo model ``name``."""
    return find_model(name).path


def load(name: str, **options: Any) -> HFModel:
    """``world:NAME``: the zoo model ``name``, through the transformers backend."""
    return HFModel(resolve(name), name=f"world:{name}", **options)


def is_answering_recipe(card: dict[str, Any]) -> bool:
    """Whether ``card`` is that of a model `auditdm world train` taught to answer (any folder, any name)."""
    return card.get("task") == "answer" and "train" in card and "weights" in card


def recipe_examples(card: dict[str, Any], seed: int) -> Iterator[Labelled]:
    """Fresh draws, one question at a time, from the skill mix of the recipe ``card`` records."""
    from auditdm.world.skills import dialogues

    for (example,) in dialogues(seed=seed, turns=1, weights=card.get("weights") or None):
        yield Labelled(example.image(), example.question.text(), example.answer, example.skill)


def default_references() -> tuple[str, ...]:
    """A world target's references when none are named: every reference of the zoo."""
    return tuple(f"world:{m.name}" for m in list_zoo() if m.role == "reference")
