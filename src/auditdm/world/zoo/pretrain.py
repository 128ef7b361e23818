"""Pretrain a zoo model's vision tower on dense labels of world scenes.

Real VLMs start from a pretrained image encoder (CLIP, SigLIP); ours starts from this.
Every cell of the 3x3 grid is labelled with what it holds (kind, shape, colour, size,
texture, arrow direction, clock hands, sign digits) and with its row and column, and the
CLS token with the atmosphere. The row and column keep *where* a token sits in what it
carries: the text model's rotary attention finds tokens by position but does not read
positions out. With them a model answers "where is the star?", but comparing two places
("is the star left of the clock?") stays at chance (BENCHMARKS.md says why).
Each image token is supervised where it sits, so nothing has to learn *where* to look
first: trained from scratch on question answering alone, a tiny ViT learns this slowly,
because attention starts out spreading every token's signal over all of them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import torch
from PIL import Image
from transformers import LlavaForConditionalGeneration, LlavaProcessor, get_cosine_with_min_lr_schedule_with_warmup

from auditdm.world.render import render
from auditdm.world.sampling import random_scene
from auditdm.world.scene import (
    CELLS, CLUTTER_LEVELS, COLORS, DIRECTIONS, HOURS, MINUTES, SHAPES, SIZES, TEXTURES, TIMES_OF_DAY,
    WEATHERS, Arrow, Clock, Scene, Shape, Sign, cell_row_col,
)  # fmt: skip
from auditdm.world.zoo.sft import run_steps

_DIGITS = tuple(str(d) for d in range(10))
CELL_FIELDS: dict[str, tuple[str, ...]] = {
    "kind": ("empty", "shape", "clock", "sign", "arrow"),
    "shape": ("none", *SHAPES),
    "color": ("none", *COLORS),
    "size": ("none", *SIZES),
    "texture": ("none", *TEXTURES),
    "direction": ("none", *DIRECTIONS),
    "hour": ("none", *(str(h) for h in HOURS)),
    "minute": ("none", *(str(m) for m in MINUTES)),
    "tens": ("none", *_DIGITS),
    "units": ("none", *_DIGITS),
    "row": ("top", "middle", "bottom"),
    "column": ("left", "middle", "right"),
}
SCENE_FIELDS: dict[str, tuple[str, ...]] = {
    "time_of_day": TIMES_OF_DAY,
    "weather": WEATHERS,
    "clutter": tuple(CLUTTER_LEVELS),
}


def cell_labels(scene: Scene, cell: str) -> dict[str, str]:
    """What the cell holds, one value per field of ``CELL_FIELDS``."""
    labels = {name: "none" for name in CELL_FIELDS}
    row, column = cell_row_col(cell)
    labels.update(row=CELL_FIELDS["row"][row], column=CELL_FIELDS["column"][column])
    item = scene.items.get(cell)
    labels["kind"] = item.kind if item is not None else "empty"
    if isinstance(item, Shape):
        labels.update(shape=item.shape, color=item.color, size=item.size, texture=item.texture)
    elif isinstance(item, Arrow):
        labels.update(color=item.color, direction=item.direction)
    elif isinstance(item, Clock):
        labels.update(hour=str(item.hour), minute=str(item.minute))
    elif isinstance(item, Sign):
        labels.update(tens=str(item.number // 10) if item.number >= 10 else "none", units=str(item.number % 10))
    return labels


def _targets(scenes: list[Scene]) -> dict[str, torch.Tensor]:
    labels = [[cell_labels(s, c) for c in CELLS] for s in scenes]
    targets = {
        name: torch.tensor([[values.index(cell[name]) for cell in row] for row in labels])
        for name, values in CELL_FIELDS.items()
    }
    for name, values in SCENE_FIELDS.items():
        targets[name] = torch.tensor([values.index(getattr(s, name)) for s in scenes])
    return targets


class _Heads(torch.nn.Module):
    """Linear read-outs: cell fields from the patch tokens over each cell, scene fields from CLS."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        fields = {**CELL_FIELDS, **SCENE_FIELDS}
        self.heads = torch.nn.ModuleDict({name: torch.nn.Linear(hidden, len(v)) for name, v in fields.items()})

    def loss(self, tokens: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        cls, patches = tokens[:, 0], tokens[:, 1:]
        side = round(patches.shape[1] ** 0.5)
        grid = patches.transpose(1, 2).reshape(len(tokens), -1, side, side)
        # Average the patches over each cell (the input side is a multiple of three patches).
        cells = torch.nn.functional.adaptive_avg_pool2d(grid, 3).flatten(2).transpose(1, 2)
        total = torch.zeros(())
        for name, target in targets.items():
            features = cells if name in CELL_FIELDS else cls
            logits = self.heads[name](features)
            total = total + torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        return total


def _scenes(seed: int, batch_size: int) -> Iterator[tuple[list[Image.Image], list[Scene]]]:
    rng = random.Random(seed)
    while True:
        scenes = [random_scene(rng, n_items=(1, 9), clutter=tuple(CLUTTER_LEVELS)) for _ in range(batch_size)]
        yield [render(s) for s in scenes], scenes


def pretrain_vision(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int = 32,
    progress: bool = True,
    desc: str = "",
) -> list[float]:
    """Train ``model``'s vision tower in place on dense scene labels; returns the losses."""
    tower = model.model.vision_tower
    heads = _Heads(tower.config.hidden_size)
    params = [*tower.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    schedule = get_cosine_with_min_lr_schedule_with_warmup(optimizer, round(0.05 * steps), steps, min_lr_rate=0.1)
    torch.manual_seed(seed)
    tower.train()

    def step_loss(batch: tuple[list[Image.Image], list[Scene]]) -> torch.Tensor:
        pixels = processor.image_processor(batch[0], return_tensors="pt")["pixel_values"]
        return heads.loss(tower(pixel_values=pixels).last_hidden_state, _targets(batch[1]))

    losses = run_steps(step_loss, _scenes(seed, batch_size), params, optimizer, schedule, steps, 1.0, progress,
                       f"{desc} vision")  # fmt: skip
    tower.eval()
    return losses
