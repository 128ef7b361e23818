"""Which auditor questions are valid probes, for the audit and the GRPO reward alike.

A question must say something. About an image of an embedded domain it must also be in the
domain's grammar: the only language its models were taught and its oracle reads. Like a
caption the generator cannot draw, a question outside it is an invalid auditor output, not
a finding; without this rule GRPO learns to append noise to a question, which the
references answer one way and the target another. Only the question's form is checked,
never its answer.
"""

from __future__ import annotations

from auditdm.backends import domain_of
from auditdm.records import Picture


def question_error(question: str, picture: Picture | None) -> str | None:
    """Why ``question`` about ``picture`` is no valid probe, or None if it is one."""
    if not question.strip():
        return "invalid question: the auditor wrote nothing"
    if picture is not None and picture.scene is not None:
        error = domain_of(picture.scene).question_error(question)
        if error is not None:
            return f"invalid question: {error}"
    return None
