"""Fine-tune a model on question-answer pairs about images, through TRL's ``SFTTrainer``:
the rectification step that teaches the target what the audit found.

One code path for every ``kind:name`` with a local folder (``world:`` and ``hf:`` alike):
full fine-tuning, or LoRA adapters through peft (``lora_rank``), merged into the saved
model. Only the reply is supervised (the tokens after the prompt, as the chat template
closes them). The result is written aside and renamed into place, so a folder that exists
is a finished model: a kill or a full disk never leaves one half-written.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditdm.backends import ModelSpec
from auditdm.errors import UserError
from auditdm.files import replacing
from auditdm.models import read_card, write_card
from auditdm.records import Labelled

IGNORE_INDEX = -100


@dataclass(frozen=True)
class FinetuneSettings:
    """How the target is fine-tuned."""

    epochs: float = 2.0  # passes over the pairs: a few hundred pairs must not be learnt by heart
    batch_size: int = 16
    lr: float = 2e-4  # a tenth of the zoo target's own rate: adjust what it knows, do not retrain it
    warmup_fraction: float = 0.1
    lora_rank: int = 0  # > 0: LoRA adapters of this rank instead of every weight
    freeze_vision: bool = True  # as LLaVA fine-tunes: the vision tower stays as pretrained
    seed: int = 0
    device: str = "cpu"
    dtype: str | None = None


class ReplyCollator:
    """Batches of (image, question, answer) rows as model inputs, with labels on the reply only."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, rows: Sequence[dict[str, Any]]) -> Any:
        import torch

        from auditdm.models.hf import encode

        images, questions = [row["image"] for row in rows], [row["question"] for row in rows]
        batch = encode(self.processor, questions, images, "right", replies=[row["answer"] for row in rows])
        asked = encode(self.processor, questions, images, "right")
        labels = torch.full_like(batch["input_ids"], IGNORE_INDEX)
        for row, (start, end) in enumerate(zip(asked["attention_mask"].sum(dim=1), batch["attention_mask"].sum(dim=1))):
            labels[row, start:end] = batch["input_ids"][row, start:end]
        batch["labels"] = labels
        return batch


def finetune(model: str, pairs: Sequence[Labelled], out: Path, settings: FinetuneSettings,
             progress: bool = True) -> Path:  # fmt: skip
    """Fine-tune ``model`` (a ``kind:name`` with a local folder) on ``pairs`` for
    ``settings.epochs`` passes; save the result in ``out``, a folder that loads as
    ``hf:OUT``, with the model's card and how it was fine-tuned. Returns ``out``."""
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText
    from trl import SFTConfig, SFTTrainer

    from auditdm.models.hf import load_processor

    if not pairs:
        raise UserError("nothing to fine-tune on: no question-answer pairs")
    folder = ModelSpec.parse(model).folder()
    processor = load_processor(folder)
    vlm = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True, use_safetensors=True,
                                                      dtype=settings.dtype)  # fmt: skip
    if settings.freeze_vision:
        tower = getattr(getattr(vlm, "model", vlm), "vision_tower", None)
        if tower is not None:
            tower.requires_grad_(False)
    peft_config = None
    if settings.lora_rank:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora_rank, lora_alpha=2 * settings.lora_rank, target_modules="all-linear")
    on_cpu = settings.device == "cpu"
    scratch = out.with_name(f".{out.name}.trainer")  # the trainer's own folder: nothing is checkpointed there
    config = SFTConfig(
        output_dir=str(scratch), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.lr, lr_scheduler_type="cosine", warmup_steps=settings.warmup_fraction,
        use_cpu=on_cpu, bf16=not on_cpu and settings.dtype == "bfloat16", seed=settings.seed, report_to=[],
        save_strategy="no", logging_steps=0.1, disable_tqdm=not progress,
        remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True}, dataloader_num_workers=0,
    )  # fmt: skip
    rows = [{"image": p.image, "question": p.question, "answer": p.answer} for p in pairs]
    trainer = SFTTrainer(model=vlm, args=config, train_dataset=Dataset.from_list(rows),
                         data_collator=ReplyCollator(processor), processing_class=processor,
                         peft_config=peft_config)  # fmt: skip
    if not progress:  # its logs would go to stdout, where --json output goes
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    result = trainer.train()
    trained: Any = trainer.model
    if settings.lora_rank:
        trained = trained.merge_and_unload()
    shutil.rmtree(scratch, ignore_errors=True)
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    card = {**read_card(folder), "finetuned_from": model, "finetune_pairs": len(pairs),
            "finetune_seconds": round(time.perf_counter() - started, 1),
            "finetune_loss": round(float(result.training_loss), 4), "finetune_curve": losses}  # fmt: skip
    try:
        with replacing(out, folder=True) as partial:
            trained.save_pretrained(partial, safe_serialization=True)
            processor.save_pretrained(partial)
            write_card(partial, card)
    except OSError as error:
        raise UserError(f"cannot save the fine-tuned model to {out}: {error}") from None
    return out
