"""Form exploration in the auditor's GRPO: some probes of each group start with a form the
auditor wrote before, so that a group of one form still holds others.

Once every probe of a group starts with the same words ("is there", "how many"), every reward
term (the flag, the form discount, the crowding charge) is the same for all of them or differs
by luck, and no gradient points to another form (BENCHMARKS.md section 3). Here the first
``share`` of each group's probes start with a form drawn at random from those the references
have answered together at least twice in this training; the auditor writes the rest. The given
words stay in the completion, so a form whose probes pay gains probability and one whose probes
do not loses it, as the auditor's own words do.

It runs through TRL's ``rollout_func`` (experimental in TRL 1.16) and the trainer's own
tokenizing and generation, so the probes are sampled as they are without it.

The forms a training knew at its end go to the auditor's card, and an audit can start a share
of the auditor's texts with them (``audit --explore``): a trained auditor writes the one or two
forms that paid best, and the others ask about other skills, where the auditor can still finish
them (the world's small auditors mostly cannot: BENCHMARKS.md section 3).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from auditdm.errors import UserError
from auditdm.prompts import PROMPTS
from auditdm.records import TASKS

MIN_SEEN = 2  # a form answered together this often is one the auditor can write, not a slip


class FormExplorer:
    """Remembers the forms of a training's agreed probes, per path, and starts some probes of
    each group with one of them (``rollout``, TRL's ``rollout_func``)."""

    def __init__(self, share: float, group_size: int, prompts: str, seed: int) -> None:
        self.starts = round(share * group_size)  # probes per group given a form
        self.group_size = group_size
        self.task_of = {text: task for task, text in PROMPTS[prompts].items()}
        self.seen: dict[str, Counter[str]] = {task: Counter() for task in TASKS}
        self.rng = random.Random(f"explore:{seed}")

    def state(self) -> dict[str, Any]:
        """What the explorer has learnt and where its draws stand, as JSON (saved with a checkpoint)."""
        version, internal, gauss = self.rng.getstate()
        return {"seen": {task: dict(forms) for task, forms in self.seen.items()}, "rng": [version, internal, gauss]}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's ``state()``."""
        self.seen = {task: Counter(state["seen"].get(task, {})) for task in TASKS}
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))

    def record(self, task: str, form: str) -> None:
        """A probe of ``task`` that starts with ``form`` reached a consensus."""
        self.seen[task][form] += 1

    def known(self) -> dict[str, list[str]]:
        """The forms the auditor can write, per path: those the references answered together
        at least ``MIN_SEEN`` times (the auditor's card lists them, for ``audit --explore``)."""
        return {task: sorted(form for form, count in seen.items() if count >= MIN_SEEN)
                for task, seen in self.seen.items()}  # fmt: skip

    def forms(self, tasks: Sequence[str]) -> list[str]:
        """The words each probe starts with ("": the auditor's own), in TRL's order: each
        group's probes one after another."""
        known = self.known()
        return [self.rng.choice(known[task]) if i % self.group_size < self.starts and known[task] else ""
                for i, task in enumerate(tasks)]  # fmt: skip

    def rollout(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        """Sample one completion per prompt as TRL would, with each probe's form in front."""
        if not hasattr(trainer, "_generate_single_turn") or not hasattr(trainer, "_tokenize_prompts"):
            raise UserError("--explore needs TRL's GRPOTrainer as of TRL 1.16 (its generation is used as is); "
                            "--explore 0 trains without it")  # fmt: skip
        tasks = [self.task_of[_prompt_text(prompt)] for prompt in prompts]
        prompt_ids, images, fields = trainer._tokenize_prompts(prompts)
        tokenizer = trainer.processing_class.tokenizer
        starts = [tokenizer.encode(form, add_special_tokens=False) if form else [] for form in self.forms(tasks)]
        fields = per_token_extended(fields, prompt_ids, starts)
        completions, _ = trainer._generate_single_turn([p + s for p, s in zip(prompt_ids, starts)], images, fields, 1)
        # Without vLLM, TRL does not use the sampling log-probabilities.
        return {"prompt_ids": prompt_ids, "completion_ids": [s + c for s, c in zip(starts, completions)],
                "logprobs": None}  # fmt: skip


def form_starts(forms: Sequence[str], share: float, count: int, seed: int) -> list[str]:
    """The words each of ``count`` texts starts with ("": the auditor's own): one of ``forms``,
    at random, for each text with probability ``share``; the same for the same ``seed``."""
    rng = random.Random(f"audit-explore:{seed}")
    return [rng.choice(forms) if forms and rng.random() < share else "" for _ in range(count)]


def per_token_extended(fields: dict[str, Any], prompt_ids: list[list[int]], starts: list[list[int]]) -> dict[str, Any]:
    """The processor's per-token fields (Gemma's token_type_ids: a list per prompt, as long as
    its ids) extended with zeros over the given words, as TRL extends them over a completion."""
    def per_token(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(row, list) and len(row) == len(ids)
                                               for row, ids in zip(value, prompt_ids, strict=True))  # fmt: skip

    return {key: [row + [0] * len(start) for row, start in zip(value, starts)] if per_token(value) else value
            for key, value in fields.items()}  # fmt: skip


def _prompt_text(prompt: list[dict[str, Any]]) -> str:
    content = prompt[-1]["content"]
    return content if isinstance(content, str) else next(part["text"] for part in content if part["type"] == "text")
