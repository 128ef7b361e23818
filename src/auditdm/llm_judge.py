"""The LLM judge, ``--judge openai:MODEL[@BASE_URL]``: a chat model decides whether two answers
mean the same thing.

The paper gives no judging prompt (its appendix has only the auditor's), so ours is short and
fixed: the two answers, then yes or no. The reply's first word decides: ``yes`` is the same,
``no`` is different. Any other reply is unparseable and counts as different (references it
leaves unproven form no consensus; a target it leaves unproven is flagged), and its raw text
is stored (``judgements.reply``), so that such flags can be found and discounted.

Each distinct pair is asked once per run, either way round: the judge remembers its decisions,
the audit stores them beside the answers and gives them back on resume. Requests go through
the ``openai:`` backend (key from ``$OPENAI_API_KEY`` only, retries, ``concurrency`` in
flight); a reply still missing after the retries fails the probes that needed it, as a
model's lost reply does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from auditdm.errors import UserError
from auditdm.judge import Decision
from auditdm.models import CONCURRENCY, ReplyError

if TYPE_CHECKING:
    from auditdm.models.openai import OpenAIModel

PROMPT = (
    "Two answers to the same question about an image follow. Do they mean the same thing? Differences of "
    "wording, case, articles or punctuation do not matter; a different fact does (a number, a colour, a name, "
    "yes against no).\nAnswer 1: {a}\nAnswer 2: {b}\nReply with one word: yes or no."
)
MAX_TOKENS = 8  # "Yes." and a little slack; a verdict is its first word
_FIRST_WORD = re.compile(r"\W*([a-z]+)")


def parse_verdict(reply: str) -> bool | None:
    """True for a reply whose first word is yes, False for no, None for anything else."""
    found = _FIRST_WORD.match(reply.lower())
    return {"yes": True, "no": False}.get(found.group(1)) if found else None


class LLMJudge:
    """Asks an ``openai:`` chat model, once per distinct pair of answers."""

    def __init__(self, model: OpenAIModel) -> None:
        self.name = model.name
        self._model = model
        self._decided: dict[tuple[str, str], Decision] = {}
        self._unsaved: list[Decision] = []

    def same(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        keys = [_key(a, b) for a, b in pairs]
        asked = [key for key in dict.fromkeys(keys) if key not in self._decided]
        try:
            replies: list[str | None] = list(self._model.chat([PROMPT.format(a=a, b=b) for a, b in asked],
                                                              max_new_tokens=MAX_TOKENS))  # fmt: skip
            lost: dict[tuple[str, str], str] = {}
        except ReplyError as error:
            replies = error.replies
            lost = {key: why for key, why in zip(asked, error.reasons) if why is not None}
        for key, reply in zip(asked, replies):
            if reply is not None:
                decision = Decision(*key, same=parse_verdict(reply) is True, reply=reply)
                self._decided[key] = decision
                self._unsaved.append(decision)
        if lost:
            raise ReplyError(self.name, [None if k in lost else self._decided[k].same for k in keys],
                             [lost.get(k) for k in keys])  # fmt: skip
        return [self._decided[key].same for key in keys]

    def recall(self, decisions: Iterable[Decision]) -> None:
        self._decided.update(((d.a, d.b), d) for d in decisions)

    def unsaved(self) -> list[Decision]:
        made, self._unsaved = self._unsaved, []
        return made


def _key(a: str, b: str) -> tuple[str, str]:
    """The pair in a fixed order: whether a means b is whether b means a."""
    return (a, b) if a <= b else (b, a)


def load(name: str, concurrency: int = CONCURRENCY) -> LLMJudge:
    """The judge ``openai:NAME``, once its server answers; a server that cannot be reached or
    refuses the key is one line naming ``--judge``."""
    from auditdm.models.openai import load as load_model

    try:
        return LLMJudge(load_model(name, concurrency=concurrency, max_new_tokens=MAX_TOKENS))
    except UserError as error:
        raise UserError(f"--judge: {error}") from None

