"""Can a zoo text model learn a skill when it is handed perfect image features?

    python benchmarks/oracle_features.py --skill spatial --steps 1500
    python benchmarks/oracle_features.py --skill color --steps 1500    # the control

Takes the vision tower out of the question. Each of the 9 image tokens is the exact label
of its cell (what zoo/pretrain.py trains the tower to predict: kind, shape, colour, size,
row, column, ...) as one-hot features, through a fresh LLaVA-style projector, into the text
model of a zoo recipe (ref-a's by default; --layers, --hidden, --heads change it). Trains
on one skill's conversations exactly as the zoo does (same tokenizer, chat template and
answer-only labels), then prints the loss every 250 steps and the held-out accuracy (200
questions, greedy exact match). A skill that stays at chance here cannot be learnt by that
text model from that data, however good the tower. Scene-wide skills (weather) have no
cell labels and are not meaningful here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace

import torch
from PIL import Image
from transformers import BatchFeature, get_cosine_with_min_lr_schedule_with_warmup

from auditdm.world.grammar import LEXICON
from auditdm.world.oracle import SKILLS
from auditdm.world.scene import CELLS, Scene
from auditdm.world.skills import Example, benchmark, dialogues
from auditdm.world.zoo.build import build_model, build_processor, build_tokenizer
from auditdm.world.zoo.pretrain import CELL_FIELDS, cell_labels
from auditdm.world.zoo.recipes import ZOO
from auditdm.world.zoo.sft import IGNORE_INDEX, encode_batch, run_steps

HELD_OUT_SEED = 77
FEATURES = sum(len(values) for values in CELL_FIELDS.values())


def oracle_features(scene: Scene) -> torch.Tensor:
    """One row per cell, in image-token order: the one-hot labels of every cell field."""
    rows = torch.zeros(len(CELLS), FEATURES)
    for i, cell in enumerate(CELLS):
        offset = 0
        for name, value in cell_labels(scene, cell).items():
            rows[i, offset + CELL_FIELDS[name].index(value)] = 1.0
            offset += len(CELL_FIELDS[name])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skill", choices=SKILLS, default="spatial")
    parser.add_argument("--recipe", default="ref-a", help="the zoo recipe whose text model and schedule to use")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--layers", type=int, help="text layers (default: the recipe's)")
    parser.add_argument("--hidden", type=int, help="text width (default: the recipe's)")
    parser.add_argument("--heads", type=int, help="attention heads (default: the recipe's)")
    args = parser.parse_args()
    recipe = {r.name: r for r in ZOO}[args.recipe]
    changes = {"text_layers": args.layers, "text_hidden": args.hidden, "text_heads": args.heads}
    size = replace(recipe.size, **{k: v for k, v in changes.items() if v is not None})
    tokenizer = build_tokenizer(LEXICON)
    processor = build_processor(tokenizer, size.image_size, size.patch_size)
    torch.manual_seed(recipe.train.seed)
    model = build_model(size, tokenizer)
    text, head = model.model.language_model, model.lm_head
    projector = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, size.text_hidden), torch.nn.GELU(), torch.nn.Linear(size.text_hidden, size.text_hidden)
    )
    blank = Image.new("RGB", (size.image_size, size.image_size))  # only the token layout is used

    def encode(conversations: list[list[Example]]) -> tuple[BatchFeature, torch.Tensor]:
        batch = encode_batch(processor, [(blank, [(e.question.text(), e.answer) for e in c]) for c in conversations])
        return batch, torch.cat([oracle_features(c[0].scene) for c in conversations])

    def logits(batch: BatchFeature, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits at the supervised positions, and their targets."""
        embeds = text.embed_tokens(batch["input_ids"])
        is_image = batch["input_ids"] == tokenizer.image_token_id
        embeds = embeds.masked_scatter(is_image[..., None], projector(features).to(embeds.dtype))
        hidden = text(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).last_hidden_state
        targets = batch["labels"][:, 1:]
        supervised = targets != IGNORE_INDEX
        return head(hidden[:, :-1][supervised]), targets[supervised]

    params = [*text.parameters(), *head.parameters(), *projector.parameters()]
    config = recipe.train
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=(0.9, config.adam_beta2),
                                  weight_decay=config.weight_decay)  # fmt: skip
    schedule = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, round(config.warmup_fraction * args.steps), args.steps, min_lr_rate=config.min_lr_ratio
    )
    weights = {skill: float(skill == args.skill) for skill in SKILLS}
    stream = dialogues(seed=config.seed, turns=recipe.turns, weights=weights)
    batches = ([next(stream) for _ in range(config.batch_size)] for _ in itertools.count())

    def step_loss(conversations: list[list[Example]]) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(*logits(*encode(conversations)))

    start = time.time()
    losses = run_steps(step_loss, batches, params, optimizer, schedule, args.steps, config.grad_clip, True, args.skill)
    for step in range(250, args.steps + 1, 250):
        print(f"step {step}: loss {sum(losses[step - 250 : step]) / 250:.3f}")
    held_out = [e for e in benchmark(200, seed=HELD_OUT_SEED) if e.skill == args.skill]
    right = 0
    with torch.no_grad():
        for i in range(0, len(held_out), 50):
            chunk = held_out[i : i + 50]
            batch, features = encode([[e] for e in chunk])
            output, target = logits(batch, features)
            hits = (output.argmax(-1) == target).split(batch["labels"][:, 1:].ne(IGNORE_INDEX).sum(1).tolist())
            right += sum(bool(h.all()) for h in hits)
    print(json.dumps({
        "skill": args.skill, "recipe": args.recipe, "text_layers": size.text_layers, "text_hidden": size.text_hidden,
        "text_heads": size.text_heads, "steps": args.steps, "train_s": round(time.time() - start),
        "final_loss": round(sum(losses[-250:]) / len(losses[-250:]), 3), "held_out_accuracy": right / len(held_out),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
