"""The auditor's warm-start data is valid by construction, and its vocabulary covers the prompts."""

from __future__ import annotations

import itertools

from auditdm.prompts import PROMPTS
from auditdm.world.parse import parse_question
from auditdm.world.synth import scene_from_caption
from auditdm.world.grammar import LEXICON
from auditdm.world.zoo.auditor_data import auditor_conversations, prompt_words
from auditdm.world.zoo.build import build_tokenizer


def test_every_target_is_valid_for_its_prompt() -> None:
    tasks = {text: task for prompts in PROMPTS.values() for task, text in prompts.items()}
    seen = set()
    for image, turns in itertools.islice(auditor_conversations(seed=0), 60):
        assert image.size == (128, 128)
        for prompt, text in turns:
            task = tasks[prompt]
            seen.add(task)
            if task == "question":
                assert parse_question(text)
            elif task == "caption":
                scene_from_caption(text)  # raises if the caption does not describe a scene
    assert seen == {"question", "caption", "edit"}


def test_the_auditor_vocabulary_covers_its_prompts() -> None:
    tokenizer = build_tokenizer([*LEXICON, *prompt_words()])
    for prompts in PROMPTS.values():
        for text in prompts.values():
            assert tokenizer.unk_token_id not in tokenizer(text, add_special_tokens=False)["input_ids"]
