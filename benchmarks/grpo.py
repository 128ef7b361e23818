"""Print the figures of the GRPO issue: trained auditors against the baseline, on held-out images.

    python benchmarks/grpo.py --auditor world:auditor --auditor runs/grpo-plain/final

Audits world:target (against the world references) with world:baseline and each given
auditor on the same 1,000 held-out world images (a seed apart from the audits' default
images and from GRPO's training images), one probe per image, and prints the verified
figures beside the paper's: search success rate (also by kind of probe), failure precision,
weakness recall.
Training times come from the auditors' cards (written by `auditdm train-auditor`).
``--min-confidence P`` audits with the references' confidence gate (`auditdm audit
--min-confidence`); the oracle's verdicts do not depend on it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from auditdm.audit import AuditConfig, start_audit
from auditdm.auditor import auditor_card
from auditdm.summary import PAPER_PRECISION, PAPER_SUCCESS

HELD_OUT_SEED = 7


def main() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auditor", action="append", default=[], help="a trained auditor (repeatable)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--min-confidence", type=float, metavar="P",
                        help="audit with references below P on their answer abstaining (default: none)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for i, auditor in enumerate(["world:baseline", *args.auditor]):
            config = AuditConfig(auditor=auditor, probes=args.images, image_count=args.images, seed=HELD_OUT_SEED,
                                 min_confidence=args.min_confidence)  # fmt: skip
            summary = start_audit(config, Path(folder) / f"run{i}", progress=False).to_dict()
            card = auditor_card(auditor)
            grpo = card.get("grpo", {})
            verified = summary["verified"]
            rows.append({
                "auditor": auditor, "prompts": summary["prompts"], "novelty": grpo.get("novelty"),
                "novelty_as": grpo.get("novelty_as", "bonus"), "min_confidence": grpo.get("min_confidence"),
                "grpo_steps": card.get("grpo_step"), "train_minutes": round(card.get("train_seconds", 0) / 60, 1),
                "flag_rate": round(summary["flag_rate"], 3),
                "search_success_rate": round(verified["search_success_rate"], 3),
                "precision": {k: round(v, 3) for k, v in verified["precision"].items()},
                "weakness_recall": verified["weakness_recall"], "weak_skills": verified["weak_skills"],
                "genuine_by_skill": verified["genuine_by_skill"], "failed": summary["failed"],
                "success_by_kind": {k: round(v["genuine"] / v["probes"], 3) for k, v in summary["by_kind"].items()},
                "categories": len(summary["categories"]), "category_purity": verified["category_purity"],
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["search_success_rate"]
    print(f"\npaper: search success {100 * PAPER_SUCCESS['baseline']:.1f} % (baseline) -> "
          f"{100 * PAPER_SUCCESS['AuditDM']:.1f} % (AuditDM); precision "
          f"{' / '.join(f'{100 * p:.1f}' for p in PAPER_PRECISION)} %")
    for row in rows:
        ratio = row["search_success_rate"] / base if base else float("inf")
        print(f"{row['auditor']:<32} success {100 * row['search_success_rate']:5.1f} % ({ratio:4.1f}x baseline), "
              f"genuine {100 * row['precision']['genuine']:5.1f} %, recall {row['weakness_recall']}, "
              f"novelty {row['novelty']} ({row['novelty_as']}), trained with min confidence {row['min_confidence']}, "
              f"{row['train_minutes']} min")
        print(" " * 33 + "success by kind: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in row["success_by_kind"].items()))


if __name__ == "__main__":
    main()
