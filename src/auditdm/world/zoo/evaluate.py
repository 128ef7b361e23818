"""Evaluate zoo models on the held-out benchmark (SPEC sections 4 and 6).

Every model answers the same fixed questions through the same transformers backend a real
model would use, and answers are marked as the audit's verification marks them
(``verify``: one normaliser, one majority rule). Reported: per-skill accuracy, the majority
vote of the references, and the target's weak skills (at least 10 points below that
majority).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditdm.errors import UserError
from auditdm.models import VLM, load_model
from auditdm.records import Labelled
from auditdm.verify import BLIND_BELOW, WEAK_MARGIN, accuracy_by_skill, consensus_blind, majority, weak_skills
from auditdm.world.domain import WORLD
from auditdm.world.oracle import SKILLS
from auditdm.world.zoo.cards import ZooModel, list_zoo

if TYPE_CHECKING:
    from PIL import Image


def ask_model(spec: str, image: Image.Image, question: str, **options: Any) -> str:
    """One model's answer to one question (``auditdm world ask --model``); ``options`` as
    :func:`auditdm.models.load_model` takes them."""
    return load_model(spec, **options).generate([image], [question])[0]


def _summary(per_skill: dict[str, float]) -> dict[str, Any]:
    # Every skill has the same number of questions, so the mean over skills is the overall.
    return {"overall": sum(per_skill.values()) / len(per_skill), "per_skill": per_skill}


def evaluate_zoo(
    zoo_dir: Path | None = None,
    names: Sequence[str] | None = None,
    per_skill: int = 200,
    progress: bool = True,
    extra: Sequence[str] = (),
    **options: Any,
) -> dict[str, Any]:
    """Evaluate zoo models, and the models ``extra`` names (``hf:PATH``, any spec) beside
    them, each loaded with ``options`` (``load_model``'s: batch_size, max_new_tokens, ...);
    returns the ``world eval --json`` object of SPEC section 6."""
    zoo = [m for m in list_zoo(zoo_dir) if m.role != "auditor"]
    if names:
        unknown = sorted(set(names) - {m.name for m in zoo})
        if unknown:
            raise UserError(f"no zoo model named {', '.join(unknown)} (have: {', '.join(m.name for m in zoo)})")
        zoo = [m for m in zoo if m.name in names]
    examples = WORLD.benchmark(per_skill)
    images = [e.image for e in examples]
    questions = [e.question for e in examples]
    answers: dict[str, list[str]] = {}
    report: dict[str, Any] = {"skills": list(SKILLS), "models": {}}
    # A zoo folder loads as the hf: model it is: the zoo may be another than the shipped one.
    loaded: list[tuple[str, str, VLM]] = [(m.name, m.role, load_model(f"hf:{m.path}", progress=progress, **options))
                                          for m in zoo]  # fmt: skip
    loaded += [(spec, "extra", load_model(spec, progress=progress, **options)) for spec in extra]
    for name, role, model in loaded:
        answers[name] = model.generate(images, questions)
        parameters = getattr(model, "num_parameters", None)
        report["models"][name] = {
            "params": parameters() if parameters else None,
            "role": role,
            **_summary(accuracy_by_skill(examples, answers[name])),
        }
    _add_majority(report, zoo, examples, answers)
    return report


def _add_majority(report: dict[str, Any], zoo: list[ZooModel], examples: list[Labelled],
                  answers: dict[str, list[str]]) -> None:  # fmt: skip
    references = [m.name for m in zoo if m.role == "reference"]
    if not references:
        report["reference_majority"], report["weak_skills"], report["consensus_blind"] = None, [], []
        return
    votes = majority([answers[name] for name in references])
    consensus = accuracy_by_skill(examples, votes)
    report["reference_majority"] = {"models": references, **_summary(consensus)}
    report["consensus_blind"] = consensus_blind(consensus)
    targets = [m.name for m in zoo if m.role == "target"]
    target = "target" if "target" in targets else (targets[0] if targets else None)
    report["weak_skills"] = weak_skills(report["models"][target]["per_skill"], consensus) if target else []
    report["weak_skills_of"] = target


def format_table(report: dict[str, Any]) -> str:
    """The report as a per-skill accuracy table for people."""
    columns = list(report["models"])
    if report.get("reference_majority"):
        columns.append("ref-majority")
    rows = {**{n: m["per_skill"] for n, m in report["models"].items()},
            "ref-majority": (report.get("reference_majority") or {}).get("per_skill", {})}  # fmt: skip
    width = max(12, *(len(c) + 1 for c in columns))
    lines = ["skill".ljust(15) + "".join(c.rjust(width) for c in columns)]
    for skill in report["skills"]:
        mark = (" *" if skill in report["weak_skills"] else "") + (" !" if skill in report["consensus_blind"] else "")
        cells = "".join(f"{100 * rows[c][skill]:.1f}".rjust(width) for c in columns)
        lines.append((skill + mark).ljust(15) + cells)
    overall = [report["models"][c]["overall"] if c in report["models"] else report["reference_majority"]["overall"]
               for c in columns]  # fmt: skip
    lines.append("overall".ljust(15) + "".join(f"{100 * o:.1f}".rjust(width) for o in overall))
    params = [f"{report['models'][c]['params'] / 1e6:.2f}M" if report["models"].get(c, {}).get("params") else ""
              for c in columns]  # fmt: skip
    lines.append("parameters".ljust(15) + "".join(p.rjust(width) for p in params))
    target = report.get("weak_skills_of")
    if target:
        lines.append(f"\n* weak skills of {target} (>= {100 * WEAK_MARGIN:.0f} points below the reference "
                     f"majority): {', '.join(report['weak_skills']) or 'none'}")  # fmt: skip
    if report.get("consensus_blind"):
        lines.append(f"! consensus-blind (reference majority below {100 * BLIND_BELOW:.0f} %): "
                     f"{', '.join(report['consensus_blind'])}")  # fmt: skip
    return "\n".join(lines)

