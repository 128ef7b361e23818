"""The auditor's instruction prompts and the conversation every model is asked in.

The prompts are the paper's (arXiv 2512.16921, appendix A.1): the ones AuditDM trains with
(p_q, p_c, p_e) and the prompt-engineering baseline's (p^b). A leaf module: the auditor,
GRPO and the world's auditor warm start read the same text.
"""

from __future__ import annotations

from typing import Any

from auditdm.records import Task

PROMPTS: dict[str, dict[Task, str]] = {
    "auditdm": {
        "caption": "You are given an image. Produce a detailed, literal caption that would allow a model to "
        "regenerate the image, but also introduce small alterations to certain visual attributes. Return a "
        "single final caption describing the modified version only.",
        "edit": "You are given an image. Generate a single image-editing command that describes how to modify "
        "the image. The modification must remain plausible in the real world. The command should be specific, "
        "actionable, and unambiguous. Return the editing command only.",
        "question": "You are given an image. Generate a single question that can be answered solely based on "
        "its visible content. Return the question only.",
    },
    "baseline": {
        "caption": "You are given an image. Produce a detailed, literal caption that would allow a model to "
        "regenerate the image, but introduce small changes that are easy for models to get wrong. Return a "
        "single caption describing the modified version only.",
        "edit": "You are given an image. Generate a single image-editing command that makes a realistic change "
        "but is challenging for vision models. The modification must remain plausible in the real world. The "
        "command should be specific, actionable, and unambiguous. Return the editing command only.",
        "question": "You are given an image. Generate a single question answerable from its visible content "
        "but challenging for vision-language models. Return the question only.",
    },
}
"""The instruction prompts by set: ``auditdm`` (p_q, p_c, p_e) and ``baseline`` (p^b)."""

PROMPT_SETS = tuple(PROMPTS)

# Room for the longest world caption (six items and the atmosphere) with a margin.
MAX_NEW_TOKENS: dict[Task, int] = {"question": 32, "caption": 96, "edit": 32}


def chat(prompt: str, reply: str | None = None) -> list[dict[str, Any]]:
    """The conversation for one prompt about one image; the assistant's reply follows when
    given. Training (the zoo's supervised loop) and inference build prompts with it."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}
    ]
    if reply is not None:
        messages.append({"role": "assistant", "content": reply})
    return messages
