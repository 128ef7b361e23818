"""Train zoo models from their recipes and save them as transformers model folders."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
from tqdm.auto import tqdm

from auditdm.models import write_card
from auditdm.world.grammar import LEXICON
from auditdm.world.skills import dialogues
from auditdm.world.zoo.auditor_data import auditor_conversations, prompt_words
from auditdm.world.zoo.build import build_model, build_processor, build_tokenizer, count_parameters, save_vlm
from auditdm.world.zoo.pretrain import pretrain_vision
from auditdm.world.zoo.recipes import Recipe
from auditdm.world.zoo.sft import Example, train_vlm


def training_batches(recipe: Recipe) -> Iterator[list[Example]]:
    """Endless batches of freshly drawn world conversations for the recipe's task.

    Answering models see questions in the recipe's skill mix; auditors see the auditor's
    tasks. Drawn from the recipe's seed; the held-out benchmark uses a seed of its own.
    """
    if recipe.task == "audit":
        stream: Iterator[Example] = auditor_conversations(recipe.train.seed)
    else:
        dialogue = dialogues(seed=recipe.train.seed, turns=recipe.turns, weights=recipe.weights)
        stream = ((turns[0].image(), [(e.question.text(), e.answer) for e in turns]) for turns in dialogue)
    while True:
        yield list(itertools.islice(stream, recipe.train.batch_size))


def train_model(recipe: Recipe, out: Path, progress: bool = True) -> dict[str, object]:
    """Train one recipe from scratch into ``out/recipe.name``; returns its card."""
    torch.manual_seed(recipe.train.seed)
    tokenizer = build_tokenizer([*LEXICON, *prompt_words()] if recipe.task == "audit" else LEXICON)
    processor = build_processor(tokenizer, recipe.size.image_size, recipe.size.patch_size)
    model = build_model(recipe.size, tokenizer)
    started = time.perf_counter()
    vision_losses = pretrain_vision(model, processor, recipe.vision_pretrain_steps, recipe.vision_pretrain_lr,
                                    recipe.train.seed, progress=progress, desc=recipe.name)  # fmt: skip
    model.model.vision_tower.requires_grad_(not recipe.freeze_vision)
    losses = train_vlm(model, processor, training_batches(recipe), recipe.train, progress=progress,
                       desc=recipe.name)  # fmt: skip
    seconds = time.perf_counter() - started
    folder = save_vlm(model, processor, out / recipe.name)
    tail = losses[-min(50, len(losses)) :]
    card = {
        **recipe.to_dict(),
        "parameters": count_parameters(model),
        "train_seconds": round(seconds, 1),
        "final_loss": round(sum(tail) / len(tail), 4),
        "vision_pretrain_final_loss": round(vision_losses[-1], 4) if vision_losses else None,
        "loss_curve": [round(x, 4) for x in losses[:: max(1, len(losses) // 100)]],
    }
    write_card(folder, card)
    return card


def _report(recipe: Recipe, card: dict[str, object], out: Path) -> None:
    params = card["parameters"]["total"]  # type: ignore[index]
    print(f"{recipe.name}: {params / 1e6:.2f}M parameters, {card['train_seconds']} s, "
          f"final loss {card['final_loss']} -> {out / recipe.name}", flush=True)  # fmt: skip


def _use_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def train_zoo(recipes: Sequence[Recipe], out: Path, progress: bool = True, jobs: int = 1) -> list[dict[str, object]]:
    """Train every recipe; prints one line per model as it finishes.

    With ``jobs`` > 1, that many models train at once in worker processes that share the
    cores: these models are too small for one to keep several threads busy, so on two
    cores two at once finish the zoo sooner than one after the other with two threads.
    Step progress bars are then replaced by one bar over the models.
    """
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if jobs <= 1:
        cards = []
        for recipe in recipes:
            cards.append(train_model(recipe, out, progress))
            _report(recipe, cards[-1], out)
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, context, initializer=_use_threads, initargs=(threads,)) as pool:
            futures = {pool.submit(train_model, recipe, out, False): recipe for recipe in recipes}
            for future in tqdm(as_completed(futures), total=len(futures), desc="models", disable=not progress):
                _report(futures[future], future.result(), out)
            cards = [future.result() for future in futures]
    print(f"trained {len(cards)} models in {time.perf_counter() - started:.0f} s", flush=True)
    return cards
