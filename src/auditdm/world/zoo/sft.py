"""Supervised training of zoo models on conversations about images, on CPU.

Leaves out on purpose: evaluation, checkpointing and data loading. The caller owns the
batch source, so the same loop trains every zoo model on whatever mix of skills it is fed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import (
    BatchFeature,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    get_cosine_with_min_lr_schedule_with_warmup,
)

from auditdm.prompts import chat

Example = tuple[Image.Image, Sequence[tuple[str, str]]]
"""One training example: an image and a conversation about it, as (question, answer) turns."""

IGNORE_INDEX = -100
T = TypeVar("T")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings for `train_vlm`.

    `batch_size` is read by whoever builds the batches; `train_vlm` trains on the batches it
    is given. The learning rate warms up linearly over `warmup_fraction` of the steps, then
    follows a cosine down to `min_lr_ratio * lr`.
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    warmup_fraction: float = 0.1
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    vision_lr_ratio: float = 0.2
    adam_beta2: float = 0.95  # the usual choice for transformers; the shipped zoo was trained with it
    seed: int = 0
    grad_clip: float = 1.0


def conversation(turns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The chat of several turns about one image: the image comes with the first question,
    exactly as in a single-question prompt at inference."""
    (question, answer), *rest = turns
    messages = chat(question, answer)
    for question, answer in rest:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return messages


def encode_batch(processor: LlavaProcessor, examples: Sequence[Example]) -> BatchFeature:
    """Model inputs for a batch, right-padded, with `labels` on each answer and its eos only.

    Goes through the processor itself, so training sees exactly what inference sees. (On
    2 cores this costs ~15 ms per batch of 32, against 90-470 ms for the training step.)
    """
    texts = processor.apply_chat_template([conversation(turns) for _, turns in examples], tokenize=False)
    images = [image for image, _ in examples]
    batch = processor(text=texts, images=images, padding=True, padding_side="right", return_tensors="pt")
    tokenizer = processor.tokenizer
    opening = tokenizer.convert_tokens_to_ids(["assistant", ":"])
    labels = torch.full_like(batch["input_ids"], IGNORE_INDEX)
    for row, (_, turns) in enumerate(examples):
        ids = batch["input_ids"][row].tolist()
        answers = tokenizer([a for _, a in turns], add_special_tokens=False)["input_ids"]
        starts = [i + 2 for i in range(len(ids) - 1) if ids[i : i + 2] == opening]
        if len(starts) != len(answers):
            raise ValueError(f"{len(turns)} turns but {len(starts)} assistant replies in the chat encoding")
        for start, answer in zip(starts, answers):
            target = [*answer, tokenizer.eos_token_id]
            # The template closes each assistant turn with eos right after the answer.
            if ids[start : start + len(target)] != target:
                raise ValueError(f"answer {tokenizer.decode(answer)!r} + eos is not where its reply starts")
            labels[row, start : start + len(target)] = torch.tensor(target)
    batch["labels"] = labels
    return batch


def answer_loss(model: LlavaForConditionalGeneration, batch: BatchFeature) -> torch.Tensor:
    """Mean cross-entropy over the supervised tokens, equal to `model(**batch).loss`.

    The head and softmax run only where a label is set, a few positions per example
    instead of all of them (image tokens and question included).
    """
    hidden = model.model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        pixel_values=batch["pixel_values"],
    ).last_hidden_state
    targets = batch["labels"][:, 1:]
    supervised = targets != IGNORE_INDEX
    logits = model.lm_head(hidden[:, :-1][supervised])
    return torch.nn.functional.cross_entropy(logits.float(), targets[supervised])


def _optimizer(model: LlavaForConditionalGeneration, config: TrainConfig) -> torch.optim.AdamW:
    # A vision transformer trained from scratch collapses to a constant output at the rates
    # the text model needs (measured: arrows stay at chance at 1e-3, learnt at 1e-4), so the
    # tower gets its own, lower rate. Decay weight matrices only: pulling norm gains and
    # biases to zero is not regularisation.
    vision = {id(p) for p in model.model.vision_tower.parameters()}
    groups = []
    for is_vision, lr in ((True, config.lr * config.vision_lr_ratio), (False, config.lr)):
        params = [p for p in model.parameters() if p.requires_grad and (id(p) in vision) == is_vision]
        groups += [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay, "lr": lr},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, "lr": lr},
        ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, config.adam_beta2))


def run_steps(
    step_loss: Callable[[T], torch.Tensor],
    batches: Iterator[T],
    params: list[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    steps: int,
    grad_clip: float,
    progress: bool,
    desc: str,
) -> list[float]:
    """The optimisation loop: ``steps`` clipped steps, one batch each; returns the losses."""
    losses: list[float] = []
    bar = tqdm(range(steps), desc=desc, disable=not progress)
    for _, batch in zip(bar, batches):
        loss = step_loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    return losses


def train_vlm(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    batches: Iterator[list[Example]],
    config: TrainConfig,
    progress: bool = True,
    desc: str = "",
) -> list[float]:
    """Train `model` in place to answer each question about its image; return the loss per step.

    Runs `config.steps` steps, one batch each, or fewer if `batches` runs out. Only the
    answer tokens and the closing eos are supervised. Leaves the model in eval mode.
    """
    torch.manual_seed(config.seed)
    optimizer = _optimizer(model, config)
    scheduler = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer,
        num_warmup_steps=round(config.warmup_fraction * config.steps),
        num_training_steps=config.steps,
        min_lr_rate=config.min_lr_ratio,
    )
    model.train()
    losses = run_steps(lambda examples: answer_loss(model, encode_batch(processor, examples)), batches,
                       list(model.parameters()), optimizer, scheduler, config.steps, config.grad_clip, progress,
                       desc)  # fmt: skip
    model.eval()
    return losses
