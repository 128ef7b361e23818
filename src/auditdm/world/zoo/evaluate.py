"""Evaluate zoo models on the held-out benchmark (SPEC sections 4 and 6).

Every model answers the same fixed questions through the same ``HFAnswerer`` a real
transformers model would use. Reported: per-skill accuracy, the majority vote of the
references, and the target's weak skills (at least 10 points below that majority).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from auditdm.errors import UserError
from auditdm.models import Answerer
from auditdm.world.oracle import SKILLS
from auditdm.world.skills import Example, benchmark
from auditdm.world.zoo.zoo import ZooModel, list_zoo

WEAK_MARGIN = 0.10


def normalize(answer: str) -> str:
    """Exact-match normalisation for world answers: case and spacing only."""
    return " ".join(answer.lower().replace("?", " ").replace(".", " ").split())


def accuracy_by_skill(examples: Sequence[Example], answers: Sequence[str | None]) -> dict[str, float]:
    """Share of right answers per skill (None counts as wrong)."""
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for example, given in zip(examples, answers, strict=True):
        total[example.skill] += 1
        right[example.skill] += given is not None and normalize(given) == normalize(example.answer)
    return {skill: right[skill] / total[skill] for skill in SKILLS if total[skill]}


def majority(answer_sets: Sequence[Sequence[str]]) -> list[str | None]:
    """Per question, the answer more than half the models gave, else None."""
    votes = []
    for answers in zip(*answer_sets, strict=True):
        top, count = Counter(normalize(a) for a in answers).most_common(1)[0]
        votes.append(top if count * 2 > len(answers) else None)
    return votes


def weak_skills(target: dict[str, float], reference: dict[str, float]) -> list[str]:
    """Skills where the target is at least ``WEAK_MARGIN`` below the reference majority."""
    return [s for s in target if target[s] <= reference[s] - WEAK_MARGIN + 1e-9]


def target_weak_skills(target: Answerer, references: Sequence[Answerer], per_skill: int) -> list[str]:
    """The skills where ``target`` is weak against the references' majority, on the held-out
    benchmark with ``per_skill`` questions per skill."""
    examples = benchmark(per_skill)
    images = [e.image() for e in examples]
    questions = [e.question.text() for e in examples]
    votes = majority([reference.answer(images, questions) for reference in references])
    return weak_skills(accuracy_by_skill(examples, target.answer(images, questions)), accuracy_by_skill(examples, votes))


def _summary(per_skill: dict[str, float]) -> dict[str, Any]:
    # Every skill has the same number of questions, so the mean over skills is the overall.
    return {"overall": sum(per_skill.values()) / len(per_skill), "per_skill": per_skill}


def evaluate_zoo(
    zoo_dir: Path | None = None,
    names: Sequence[str] | None = None,
    per_skill: int = 200,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate zoo models; returns the ``world eval --json`` object of SPEC section 6."""
    from auditdm.models.hf import HFAnswerer

    zoo = [m for m in list_zoo(zoo_dir) if m.role != "auditor"]
    if names:
        unknown = sorted(set(names) - {m.name for m in zoo})
        if unknown:
            raise UserError(f"no zoo model named {', '.join(unknown)} (have: {', '.join(m.name for m in zoo)})")
        zoo = [m for m in zoo if m.name in names]
    examples = benchmark(per_skill)
    images = [e.image() for e in examples]
    questions = [e.question.text() for e in examples]
    answers: dict[str, list[str]] = {}
    report: dict[str, Any] = {"skills": list(SKILLS), "models": {}}
    for model in zoo:
        answerer = HFAnswerer(model.path, name=f"world:{model.name}", progress=progress)
        answers[model.name] = answerer.answer(images, questions)
        report["models"][model.name] = {
            "params": answerer.num_parameters(),
            "role": model.role,
            **_summary(accuracy_by_skill(examples, answers[model.name])),
        }
    _add_majority(report, zoo, examples, answers)
    return report


def _add_majority(report: dict[str, Any], zoo: list[ZooModel], examples: list[Example],
                  answers: dict[str, list[str]]) -> None:  # fmt: skip
    references = [m.name for m in zoo if m.role == "reference"]
    if not references:
        report["reference_majority"], report["weak_skills"] = None, []
        return
    votes = majority([answers[name] for name in references])
    consensus = accuracy_by_skill(examples, votes)
    report["reference_majority"] = {"models": references, **_summary(consensus)}
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
        mark = " *" if skill in report["weak_skills"] else ""
        cells = "".join(f"{100 * rows[c][skill]:.1f}".rjust(width) for c in columns)
        lines.append((skill + mark).ljust(15) + cells)
    overall = [report["models"][c]["overall"] if c in report["models"] else report["reference_majority"]["overall"]
               for c in columns]  # fmt: skip
    lines.append("overall".ljust(15) + "".join(f"{100 * o:.1f}".rjust(width) for o in overall))
    params = [f"{report['models'][c]['params'] / 1e6:.2f}M" if c in report["models"] else "" for c in columns]
    lines.append("parameters".ljust(15) + "".join(p.rjust(width) for p in params))
    target = report.get("weak_skills_of")
    if target:
        lines.append(f"\n* weak skills of {target} (>= {100 * WEAK_MARGIN:.0f} points below the reference "
                     f"majority): {', '.join(report['weak_skills']) or 'none'}")  # fmt: skip
    return "\n".join(lines)

