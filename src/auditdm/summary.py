"""The run summary (SPEC section 6), computed from the store alone, and its text for people."""

from __future__ import annotations

from collections import Counter

from auditdm.records import DatasetAccuracy, KindCounts, RunSummary, distinct_probes
from auditdm.store import RunStore
from auditdm.verify import verified_figures

# The paper's figures, printed beside ours (arXiv 2512.16921: Table 2 and supplementary Table 3).
PAPER_SUCCESS = {"baseline": 0.214, "AuditDM": 0.911}
PAPER_PRECISION = (0.813, 0.115, 0.072)  # genuine / ambiguous / unanswerable or shared error
UNVERIFIED = ("not verified: no oracle knows what these images show, so a flag is a disagreement with the "
              "references' consensus, which can itself be wrong")  # fmt: skip


def summarize(store: RunStore) -> RunSummary:
    """The run summary of SPEC section 6, from the store alone."""
    meta = store.meta()
    config = meta["config"]
    probes = list(store.probes())
    categories = store.categories()
    distinct = distinct_probes(probes)
    distinct_flagged = sum(p.score for p in distinct)
    seconds = meta["seconds"]
    kinds: Counter[str] = Counter(p.kind for p in probes)
    flagged_kinds: Counter[str] = Counter(p.kind for p in probes if p.score)
    verified = verified_figures(probes, meta.get("weak_skills"), categories, meta.get("consensus_blind"))
    return RunSummary(
        run_dir=str(store.folder),
        target=config["target"],
        references=config["references"],
        auditor=config["auditor"],
        prompts=probes[0].prompts if probes else config["prompts"],
        judge=config["judge"],
        probes=len(probes),
        failed=sum(p.error is not None for p in probes),
        flagged=sum(p.score for p in probes),
        distinct_flagged=distinct_flagged,
        repeats=len(probes) - len(distinct),
        flag_rate=distinct_flagged / len(distinct) if distinct else 0.0,
        by_kind={k: KindCounts(n, flagged_kinds[k], verified.genuine_by_kind.get(k, 0) if verified else None)
                 for k, n in sorted(kinds.items())},  # fmt: skip
        seconds=round(seconds, 2),
        probes_per_second=round(len(probes) / seconds, 3) if seconds else None,
        outside_model_share=round(1 - meta.get("model_seconds", 0.0) / seconds, 3) if seconds else None,
        verified=verified,
        categories=categories,
        dropped_pairings=meta.get("dropped_pairings") or {},
        dataset_accuracy=DatasetAccuracy(**meta["dataset_accuracy"]) if meta.get("dataset_accuracy") else None,
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _visible(weak: list[str] | None, blind: list[str] | None) -> list[str]:
    return [s for s in weak or [] if s not in (blind or [])]


def format_summary(summary: RunSummary) -> str:
    """The summary as a few readable lines."""
    lines = [
        f"audit of {summary.target} against {', '.join(summary.references)}",
        f"auditor {summary.auditor} ({summary.prompts} prompts), judge {summary.judge}",
        f"probes {summary.probes} ({summary.failed} failed: invalid auditor output or a lost reply), "
        f"flagged {summary.flagged}, {summary.distinct_flagged} distinct (flag rate {_pct(summary.flag_rate)} of "
        f"distinct probes; {summary.repeats} probes repeat an earlier one's image and question)",
    ]
    for kind, counts in summary.by_kind.items():
        genuine = "" if counts.genuine is None else f" {counts.genuine:>5} genuine"
        lines.append(f"  {kind:<16} {counts.probes:>5} probes {counts.flagged:>5} flagged{genuine}")
    for pairing, why in summary.dropped_pairings.items():
        lines.append(f"  no {pairing} probes: {why}")
    accuracy = summary.dataset_accuracy
    if accuracy:
        scores = [(summary.target, accuracy.target), *accuracy.references.items(), ("consensus", accuracy.consensus)]
        lines.append(f"on the original images, against the dataset's answers (not an oracle; {accuracy.questions} "
                     f"questions): {', '.join(f'{name} {_pct(value)}' for name, value in scores)}")  # fmt: skip
    verified = summary.verified
    if verified is None:
        lines.append(UNVERIFIED)
    else:
        precision = verified.precision
        lines += [
            f"verified by the oracle ({verified.checked} probes it could check):",
            f"  search success rate {_pct(verified.search_success_rate)} "
            f"(paper: {', '.join(f'{k} {_pct(v)}' for k, v in PAPER_SUCCESS.items())})",
            f"  flagged probes: genuine {_pct(precision.genuine)}, ambiguous {_pct(precision.ambiguous)}, "
            f"unanswerable or shared error {_pct(precision.unanswerable)} "
            f"(paper: {' / '.join(_pct(p) for p in PAPER_PRECISION)})",
            f"  weakness recall {_pct(verified.weakness_recall)} of weak skills "
            f"{', '.join(_visible(verified.weak_skills, verified.consensus_blind)) or 'none'}"
            + (f" (the consensus is blind on {', '.join(verified.consensus_blind)})" if verified.consensus_blind else ""),
        ]
        if verified.genuine_by_skill:
            found = ", ".join(f"{k} {v}" for k, v in verified.genuine_by_skill.items())
            lines.append(f"  genuine failures by skill: {found}")
    if summary.categories:
        lines.append(f"failure categories ({len(summary.categories)}):")
        for c in summary.categories:
            lines.append(f"  {c.name:<28} {c.size:>4} flagged, flag rate {_pct(c.flag_rate)}")
    if verified and verified.category_purity is not None:
        lines.append(f"  category purity (NMI with the oracle's skills) {verified.category_purity:.2f}")
    seconds = summary.seconds
    lines.append(f"{seconds:.1f} s, {summary.probes_per_second} probes/s; run directory {summary.run_dir}")
    return "\n".join(lines)
