"""Verification of an audit by the world's oracle (SPEC section 4).

Only world images can be checked: their scene is known, so the oracle says whether a
flagged probe is a genuine target failure. None of this feeds the audit score; it measures
how far the consensus of reference models can be trusted as a stand-in for the truth.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from auditdm.judge import normalize_answer
from auditdm.records import Category, OracleCheck, probe_kind
from auditdm.world.scene import Scene

# A weak skill counts as covered when at least this share of the genuine failures test it.
COVERAGE_SHARE = 0.02


def check(question: str, scene: Scene) -> OracleCheck:
    """The oracle's verdict on one question about one world scene."""
    from auditdm.world.oracle import answer, skill_of
    from auditdm.world.parse import ParseError, parse_question

    try:
        parsed = parse_question(question)
    except ParseError:
        return OracleCheck("outside grammar", None, None)
    truth = answer(parsed, scene)
    return OracleCheck(truth.status, truth.answer, skill_of(parsed, scene))


def is_genuine(probe: dict[str, Any]) -> bool:
    """A flagged probe that is a real target failure: answerable, the consensus equals the
    truth, and the target's answer does not."""
    if probe["oracle_status"] != "answerable" or probe["consensus"] is None:
        return False
    truth = normalize_answer(probe["truth"])
    return normalize_answer(probe["consensus"]) == truth and normalize_answer(probe["target_answer"]) != truth


def category_purity(probes: Sequence[dict[str, Any]], categories: Sequence[Category]) -> float | None:
    """Normalised mutual information between the categories of the flagged probes and the
    oracle's skills for them (flagged world probes with a skill); None with fewer than two."""
    from sklearn.metrics import normalized_mutual_info_score

    category_of = {probe: i for i, c in enumerate(categories) for probe in c.members}
    pairs = [(category_of[p["idx"]], p["skill"]) for p in probes
             if p["world"] and p["skill"] is not None and p["idx"] in category_of]  # fmt: skip
    if len(pairs) < 2:
        return None
    found, skills = zip(*pairs)
    return float(normalized_mutual_info_score(skills, found))


def verified_figures(
    probes: Sequence[dict[str, Any]], weak_skills: Sequence[str] | None, categories: Sequence[Category] = ()
) -> dict[str, Any] | None:
    """Search success rate, failure precision and weakness recall over stored probes.

    None when no probe could be checked (no world images). Only probes made from world
    images count, failed ones included; the rates are over those.
    ``weak_skills`` None (unknown) leaves the recall out.
    """
    checked = [p for p in probes if p["world"]]
    if not checked:
        return None
    flagged = [p for p in checked if p["score"] == 1]
    kinds: Counter[str] = Counter()
    genuine_skills: Counter[str] = Counter()
    genuine_kinds: Counter[str] = Counter()
    for p in flagged:
        if is_genuine(p):
            kinds["genuine"] += 1
            genuine_skills[p["skill"]] += 1
            genuine_kinds[probe_kind(p["pairing"], p["synthesis"])] += 1
        else:
            kinds["ambiguous" if p["oracle_status"] == "ambiguous" else "unanswerable"] += 1
    genuine = kinds["genuine"]
    recall = None
    if weak_skills is not None:
        covered = [s for s in weak_skills if genuine and genuine_skills[s] / genuine >= COVERAGE_SHARE]
        recall = len(covered) / len(weak_skills) if weak_skills else None
    return {
        "checked": len(checked),
        "search_success_rate": genuine / len(checked),
        "precision": {k: (kinds[k] / len(flagged) if flagged else 0.0) for k in ("genuine", "ambiguous", "unanswerable")},
        "weakness_recall": recall,
        "weak_skills": None if weak_skills is None else list(weak_skills),
        "genuine_by_skill": dict(genuine_skills.most_common()),
        "genuine_by_kind": dict(genuine_kinds),
        "category_purity": category_purity(probes, categories) if categories else None,
    }
