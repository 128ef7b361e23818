"""Models: every vision-language model, whether audited, referenced or auditing, behind one
small protocol.

A model is named by a ``kind:name`` string (``backends.MODELS``): ``world:target`` (the
zoo), ``hf:/path/or/hub-id`` (any transformers image-text-to-text model) or
``openai:MODEL@URL`` (a model behind an OpenAI-compatible server). Backends live in their
own modules and import their heavy libraries there.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from auditdm.backends import ModelSpec
from auditdm.errors import UserError
from auditdm.files import write_text

if TYPE_CHECKING:
    from PIL import Image

CONCURRENCY = 32
"""Requests in flight at once to a remote model: one forward pass of a served model's batch
(BENCHMARKS.md: fewer leave a server that batches them idle between them)."""

CARD = "auditdm.json"
"""A model folder's card: its role (target, reference, auditor), the prompt set an auditor
was trained for, how it was trained, its training curves."""


class ReplyError(UserError):
    """Some replies of a batch could not be had: a remote model's server kept failing, or
    sent an empty or malformed reply. A backend that can lose single replies raises it once
    the whole batch is done, so the replies that came are kept: ``replies[i]`` is reply i
    as the call returns it, None where ``reasons[i]`` says why there is none.

    The audit stores such a probe as failed, with the reason, and goes on; where nothing
    handles it (a model's benchmark, say) it stops the command with one line.
    """

    def __init__(self, model: str, replies: Sequence[Any], reasons: Sequence[str | None]) -> None:
        failed = [reason for reason in reasons if reason is not None]
        super().__init__(f"{model}: {len(failed)} of {len(reasons)} replies failed (first: {failed[0]})")
        self.replies, self.reasons = list(replies), list(reasons)


class VLM(Protocol):
    """A vision-language model: one reply per (image, prompt) pair (``ReplyError`` where a
    remote model could not give some)."""

    name: str  # the spec it was loaded from

    def generate(self, images: Sequence[Image.Image], prompts: Sequence[str], *, max_new_tokens: int | None = None,
                 temperature: float = 0.0, seed: int = 0, starts: Sequence[str] = ()) -> list[str]:  # fmt: skip
        """The reply to ``prompts[i]`` about ``images[i]``, for every i: greedy at temperature
        0, else sampled reproducibly from ``seed``. Answering a question is a greedy reply.
        Reply i begins with the words ``starts[i]`` where given ("": the model's own), and the
        model writes the rest (an auditor's probes started with a form, ``exploration.py``)."""
        ...

    def confidences(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[tuple[str, float]]:
        """Greedy replies, each with the model's probability of it, in [0, 1]."""
        ...


def begun(start: str, continuation: str) -> str:
    """A reply given the words ``start`` to begin with ("": none), and the model's continuation."""
    return " ".join(filter(None, (start, continuation.strip())))


# Options that only some backends have a use for: each reaches only a backend whose ``load``
# names it (concurrency, a remote one's; revision and trust_remote_code, the hub's).
NAMED_ONLY = ("concurrency", "revision", "trust_remote_code")


def load_model(spec: str, **options: Any) -> VLM:
    """The model a ``kind:name`` string names; ``options`` (device, dtype, batch_size,
    max_new_tokens, progress, ...) go to its backend, those of ``NAMED_ONLY`` only to a
    backend whose ``load`` names them; an option given as None is left to the backend."""
    parsed = ModelSpec.parse(spec)
    named = inspect.signature(parsed.backend.load).parameters
    given = {k: v for k, v in options.items() if v is not None and (k not in NAMED_ONLY or k in named)}
    model: VLM = parsed.backend.load(parsed.name, **given)
    return model


MODEL_OPTIONS = ("device", "dtype", "batch_size", "revision", "trust_remote_code")


def model_options(config: Any) -> dict[str, Any]:
    """The options every model of a run loads with, from the config's fields of those names."""
    return {name: getattr(config, name) for name in MODEL_OPTIONS}


def read_card(folder: Path) -> dict[str, Any]:
    """The ``auditdm.json`` card of a model folder; empty for a folder without one."""
    path = folder / CARD
    return json.loads(path.read_text()) if path.is_file() else {}


def write_card(folder: Path, card: dict[str, Any]) -> None:
    """Write a model folder's card (the zoo's trainer and GRPO checkpoints do)."""
    write_text(folder / CARD, json.dumps(card, indent=2) + "\n")
