"""The zoo's recipes, as code: one per model, each a size, a data mix and a schedule.

The roles mirror the paper: ``target`` is PaliGemma2-3B, ``target-large`` its 28B
sibling (same recipe, several times the parameters), and the references are an ensemble
of different sizes, seeds and data mixes. Weaknesses come only from capacity (model size,
input resolution) and data (how often each skill is seen), never from code.

Rebuild the shipped zoo (timings in BENCHMARKS.md):
    auditdm world train --out src/auditdm/world/weights
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from typing import Any

from auditdm.errors import UserError
from auditdm.world.oracle import SKILLS
from auditdm.world.zoo.build import VLMSize
from auditdm.world.zoo.sft import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """How to train one zoo model from scratch."""

    name: str
    role: str  # "target" or "reference"
    description: str
    size: VLMSize
    train: TrainConfig
    weights: dict[str, float] = field(default_factory=dict)  # per-skill data weight, 1 if absent
    turns: int = 8  # questions per image in a training conversation
    vision_pretrain_steps: int = 1000  # dense scene-label pretraining of the vision tower first
    vision_pretrain_lr: float = 5e-4
    # "answer": answer world questions (targets, references); "audit": write questions,
    # captions and edit commands under the auditor prompts (the auditor's warm start).
    task: str = "answer"
    prompts: str | None = None  # the auditor prompt set an audit uses with this model by default
    # Then, as in LLaVA, the pretrained tower stays fixed while the projector and text model
    # learn to answer: it already separates what every cell holds, and steps run ~2x faster.
    freeze_vision: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Input resolution is a capacity: at 48 px a cell is one 16 px patch, and small digits,
# clock hands and tiny objects blur; at 96 px a cell is one 32 px patch of full detail.
# Either way one image token covers one cell of the grid (see pretrain.py).
_LOW_RES = dict(image_size=48, patch_size=16)
_HIGH_RES = dict(image_size=96, patch_size=32)
_SMALL = VLMSize(vision_hidden=96, vision_layers=3, vision_heads=4, text_hidden=128, text_layers=2,
                 text_heads=4, **_LOW_RES)  # fmt: skip
_LARGE = VLMSize(vision_hidden=192, vision_layers=4, vision_heads=6, text_hidden=256, text_layers=3,
                 text_heads=8, **_LOW_RES)  # fmt: skip
_REFERENCE = VLMSize(vision_hidden=128, vision_layers=4, vision_heads=4, text_hidden=128, text_layers=2,
                     text_heads=4, **_HIGH_RES)  # fmt: skip
# With the tower pretrained and frozen, and the text model started wide (build.TEXT_INIT_STD),
# 1e-3 learns fastest (ref-a, 600 steps, 30 held-out questions per skill: 48 % at 1e-3
# against 35 % at 3e-4 with the usual 0.02 start; 27 % at 1e-3 with it).
_TRAIN = TrainConfig(steps=2500, batch_size=16, lr=1e-3)
# References train longer, on more of the relational skills (comparing, counting, naming a
# neighbour): these need two hops through the text model and are the last to be learnt
# (ref-a, 40 held-out questions per skill: comparing sizes 50 % at 2,500 uniform steps,
# 60-68 % at 4,000 steps of this mix). Consensus is only worth what the references know.
_REFERENCE_TRAIN = replace(_TRAIN, steps=4000)
_REFERENCE_MIX = {"counting": 2.0, "relationship": 2.0, "spatial": 1.5, "size": 1.5}
# The target's pretraining mix, like a generalist's: little counting and relationship data.
_TARGET_MIX = {"counting": 0.3, "relationship": 0.3}

ZOO: tuple[Recipe, ...] = (
    Recipe("target", "target", "small generalist at low resolution (the paper's 3B)",
           _SMALL, replace(_TRAIN, seed=11), _TARGET_MIX),
    Recipe("target-large", "target", "the target's recipe with several times the parameters (the 28B)",
           _LARGE, replace(_TRAIN, seed=11), _TARGET_MIX),
    Recipe("ref-a", "reference", "high-resolution reference, more relational data",
           _REFERENCE, replace(_REFERENCE_TRAIN, seed=21), _REFERENCE_MIX),
    Recipe("ref-b", "reference", "wider high-resolution reference, another seed",
           replace(_REFERENCE, vision_hidden=160, text_hidden=160), replace(_REFERENCE_TRAIN, seed=22), _REFERENCE_MIX),
    Recipe("ref-c", "reference", "deeper text model, most relational data",
           replace(_REFERENCE, text_layers=3), replace(_REFERENCE_TRAIN, seed=23),
           {"counting": 3.0, "relationship": 3.0, "spatial": 2.0, "size": 2.0}),
    # The untrained auditor (the paper's prompt-engineering baseline): supervised on valid
    # questions, captions and commands only, three per image; GRPO starts from it.
    Recipe("baseline", "auditor", "auditor warm start: valid world questions, captions and edit commands",
           _REFERENCE, replace(_TRAIN, steps=1200, lr=3e-4, seed=31), turns=3, vision_pretrain_steps=500, task="audit",
           prompts="baseline"),
)  # fmt: skip


def smoke(recipe: Recipe) -> Recipe:
    """The same recipe shrunk to seconds: for tests and for checking the pipeline."""
    size = VLMSize(vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=32, text_layers=1,
                   text_heads=2, image_size=48, patch_size=16)  # fmt: skip
    return replace(recipe, size=size, train=replace(recipe.train, steps=3, batch_size=4), vision_pretrain_steps=2)


def _coerce(current: Any, raw: str, key: str) -> Any:
    try:
        return type(current)(raw) if not isinstance(current, bool) else raw.lower() in ("1", "true", "yes")
    except ValueError:
        raise UserError(f"--set {key}={raw}: expected a {type(current).__name__}") from None


def override(recipe: Recipe, assignment: str) -> Recipe:
    """Apply one ``KEY=VALUE``: ``steps=3000``, ``size.image_size=96``, ``weights.clock=0.2``."""
    key, sep, raw = assignment.partition("=")
    if not sep:
        raise UserError(f"--set {assignment}: expected KEY=VALUE")
    group, _, name = key.rpartition(".")
    if group == "weights":
        if name not in SKILLS:
            raise UserError(f"--set {assignment}: unknown skill {name!r} (skills: {', '.join(SKILLS)})")
        return replace(recipe, weights={**recipe.weights, name: _coerce(1.0, raw, key)})
    if key in ("turns", "vision_pretrain_steps", "vision_pretrain_lr", "freeze_vision"):
        return replace(recipe, **{key: _coerce(getattr(recipe, key), raw, key)})
    if group == "size":
        target: Any = recipe.size
    elif group in ("", "train"):
        target = recipe.train
    else:
        raise UserError(f"--set {assignment}: unknown group {group!r} (size., weights. or a training field)")
    if name not in {f.name for f in dataclasses.fields(target)}:
        fields = ", ".join(f.name for f in dataclasses.fields(target))
        raise UserError(f"--set {assignment}: unknown field {name!r} (fields: {fields})")
    changed = replace(target, **{name: _coerce(getattr(target, name), raw, key)})
    return replace(recipe, size=changed) if group == "size" else replace(recipe, train=changed)


def select_recipes(
    only: list[str] | None, assignments: list[str], smoke_run: bool = False, rename: str | None = None
) -> list[Recipe]:
    """The recipes to train: the zoo, or the named ones, with overrides applied."""
    known = {r.name: r for r in ZOO}
    unknown = [name for name in only or [] if name not in known]
    if unknown:
        raise UserError(f"no recipe named {', '.join(unknown)} (recipes: {', '.join(known)})")
    recipes = [known[name] for name in only] if only else list(ZOO)
    if smoke_run:
        recipes = [smoke(r) for r in recipes]
    for assignment in assignments:
        recipes = [override(r, assignment) for r in recipes]
    if rename:
        if len(recipes) != 1:
            raise UserError("--name needs exactly one recipe (pick it with --only)")
        recipes = [replace(recipes[0], name=rename)]
    return recipes
