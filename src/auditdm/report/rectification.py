"""The HTML report of a rectification run: per-skill accuracy before and after each
iteration, beside the control and the model compared to, and where the training data came
from. Built from ``rectification.json`` alone, like the audit report from its store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auditdm.files import write_text
from auditdm.report import REPORT, render_page
MARKED = 3  # points: a change this large is marked (the "no skill may fall more than 3")


def _cell(value: float | None, before: float | None) -> dict[str, str | None]:
    if value is None:
        return {"text": "n/a", "mark": None}
    change = None if before is None else 100 * (value - before)
    mark = None if change is None or abs(change) < MARKED else ("up" if change > 0 else "down")
    suffix = "" if change is None else f" ({change:+.1f})"
    return {"text": f"{100 * value:.1f} %{suffix}", "mark": mark}


def write_rectification_report(run_dir: Path, result: dict[str, Any]) -> Path:
    """Render ``report.html`` into the rectification run directory; returns its path."""
    before = result["before"]
    rows = []
    if before:
        skills = ["overall", *before["per_skill"]]

        def value(block: dict[str, Any] | None, skill: str) -> float | None:
            if not block or block.get("overall") is None:
                return None
            return block["overall"] if skill == "overall" else block["per_skill"].get(skill)

        for skill in skills:
            start = value(before, skill)
            cells = []
            for it in result["iterations"]:
                cells.append(_cell(value(it, skill), start))
                if it["control"]:
                    cells.append(_cell(value(it["control"], skill), start))
            compare = value(result["compare_to"], skill)
            rows.append({"skill": skill, "before": _cell(start, None)["text"], "cells": cells,
                         "compare": _cell(compare, None)["text"]})  # fmt: skip
    iterations = [{**it, "audits": sorted(str(p.relative_to(run_dir)) for p in
                                          (run_dir / f"iteration-{it['iteration']}").glob("generate-*/report.html"))}
                  for it in result["iterations"]]  # fmt: skip
    page = render_page("rectification.html", result={**result, "iterations": iterations}, rows=rows,
                       run_dir=str(run_dir), drop=MARKED, any_control=any(it["control"] for it in iterations))  # fmt: skip
    path = run_dir / REPORT
    write_text(path, page)
    return path
