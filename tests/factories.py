"""Records for tests, built with neutral fields where a test does not care."""

from __future__ import annotations

from typing import Any

from auditdm.records import ProbeRecord


def probe_record(**fields: Any) -> ProbeRecord:
    """A stored probe with the given fields, the rest neutral (question "q", nothing flagged)."""
    base: dict[str, Any] = dict(idx=0, source=0, pairing="question", synthesis=None, auditor="a", prompts="auditdm",
                                seed=0, parent_image="", instruction=None, question="q", image=None, error=None,
                                target_answer=None, consensus=None, score=0, oracle_status=None, truth=None,
                                skill=None, verifiable=True, answers={})  # fmt: skip
    return ProbeRecord(**{**base, **fields})
