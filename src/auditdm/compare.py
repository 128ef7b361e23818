"""Model comparison: where is each of two models worse than the other (the paper's 3B vs 28B)?

Two audits in model-comparison mode, one in each direction (A as target with B as the only
reference, then B against A): every flagged probe is a disagreement. Each direction's
failure categories then say where the two differ; on world images the oracle says, per
category, which of the two was wrong.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from auditdm.audit import CONFIG, SUMMARY, AuditConfig, resume_audit, start_audit
from auditdm.files import write_text
from auditdm.records import RunSummary
from auditdm.store import DATABASE, RunStore
from auditdm.summary import summarize
from auditdm.verify import is_right, oracle_check

COMPARISON = "comparison.json"


def _slug(spec: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in spec.split(":", 1)[-1]).strip("-")


def compare_models(a: str, b: str, config: AuditConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """Audit ``a`` against ``b`` and ``b`` against ``a`` into ``out``; returns the comparison.

    A direction already in ``out`` is kept (finished) or resumed (stopped, even by kill -9),
    so the same command run again completes a stopped comparison."""
    directions: list[dict[str, Any]] = []
    for target, reference in ((a, b), (b, a)):
        run_dir = out / f"{_slug(target)}-vs-{_slug(reference)}"
        summary = _audited(dataclasses.replace(config, target=target, references=(reference,)), run_dir, progress)
        directions.append({"target": target, "reference": reference, "run_dir": str(run_dir),
                           "probes": summary.probes, "disagreements": summary.distinct_flagged,
                           "categories": _judged_categories(RunStore.open(run_dir), target)})  # fmt: skip
    worse: dict[str, list[str]] = {a: [], b: []}
    for direction in directions:
        for category in direction["categories"]:
            if category["worse"] is not None:
                worse[category["worse"]].append(category["name"])
    comparison = {"models": [a, b], "directions": directions, "worse_in": {m: sorted(set(v)) for m, v in worse.items()}}
    write_text(out / COMPARISON, json.dumps(comparison, indent=2) + "\n")
    return comparison


def _audited(config: AuditConfig, run_dir: Path, progress: bool) -> RunSummary:
    """One direction's audit: started, resumed where it stopped, or read when finished."""
    if (run_dir / SUMMARY).exists():
        return summarize(RunStore.open(run_dir))
    if (run_dir / DATABASE).exists() or (run_dir / CONFIG).exists():
        return resume_audit(run_dir, progress)
    return start_audit(config, run_dir, progress)


def _judged_categories(store: RunStore, target: str) -> list[dict[str, Any]]:
    """Each category of a comparison run, with how many of its probes the oracle could check,
    how often each model was the wrong one on those, and the model that is worse there (None
    when the oracle cannot tell: a tie, or images it cannot check, such as photographs)."""
    config = store.meta()["config"]
    reference = config["references"][0]
    probes = {p.idx: p for p in store.probes()}
    judged = []
    for category in store.categories():
        wrong = {target: 0, reference: 0}
        checked = 0
        for p in (probes[i] for i in category.members):
            check = oracle_check(p)
            if check is None or check.status != "answerable":
                continue
            checked += 1
            wrong[target] += not is_right(p.target_answer, check)
            wrong[reference] += not is_right(p.consensus, check)
        decided = wrong[target] != wrong[reference]
        judged.append({"name": category.name, "disagreements": category.size, "checked": checked, "wrong": wrong,
                       "worse": max(wrong, key=lambda m: wrong[m]) if decided else None})  # fmt: skip
    return judged


def format_comparison(comparison: dict[str, Any]) -> str:
    """The comparison as readable lines."""
    a, b = comparison["models"]
    lines = [f"comparison of {a} and {b}"]
    for d in comparison["directions"]:
        lines.append(f"\n{d['target']} audited against {d['reference']}: {d['disagreements']} disagreements "
                     f"in {d['probes']} probes ({d['run_dir']})")  # fmt: skip
        for c in d["categories"]:
            if not c["checked"]:
                lines.append(f"  {c['name']:<30} {c['disagreements']:>4} disagreements: not checked (no oracle for "
                             "these images)")  # fmt: skip
                continue
            verdict = f"{c['worse']} worse" if c["worse"] else "undecided"
            counts = ", ".join(f"{m} wrong {n}" for m, n in c["wrong"].items())
            lines.append(f"  {c['name']:<30} {c['disagreements']:>4} disagreements: {verdict} ({counts})")
    categories = [c for d in comparison["directions"] for c in d["categories"]]
    if categories and not any(c["checked"] for c in categories):
        lines.append("\nwhich model is wrong is not checked: the oracle reads only world images (the categories "
                     "above are where the two disagree)")  # fmt: skip
        return "\n".join(lines)
    for model, names in comparison["worse_in"].items():
        lines.append(f"\n{model} is worse in: {', '.join(names) or 'no category'}")
    return "\n".join(lines)
