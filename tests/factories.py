"""Records and model folders for tests, built with neutral fields where a test does not care."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from auditdm.records import ProbeRecord
from auditdm.world.zoo.cards import find_model


def probe_record(**fields: Any) -> ProbeRecord:
    """A stored probe with the given fields, the rest neutral (question "q", nothing flagged)."""
    base: dict[str, Any] = dict(idx=0, source=0, pairing="question", synthesis=None, auditor="a", prompts="auditdm",
                                seed=0, parent_image="", instruction=None, question="q", image=None, error=None,
                                target_answer=None, consensus=None, score=0, oracle_status=None, truth=None,
                                skill=None, verifiable=True, answers={})  # fmt: skip
    return ProbeRecord(**{**base, **fields})


def auditor_with_forms(folder: Path, forms: dict[str, list[str]]) -> Path:
    """world:baseline copied to ``folder``, its card listing ``forms`` (per task) as a training's
    card does, for ``--explore``."""
    shutil.copytree(find_model("baseline").path, folder)
    card = json.loads((folder / "auditdm.json").read_text())
    (folder / "auditdm.json").write_text(json.dumps({**card, "forms": forms}))
    return folder
