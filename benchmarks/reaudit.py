"""Print the genuine failures a re-audit finds, per skill, before and after a rectification.

    python benchmarks/reaudit.py runs/rect --iteration 1 --probes 1000

The same auditor (the rectification's first), references, world images and seed audit the
target before and the model after the given iteration. A genuine failure is a flagged probe
whose consensus the oracle finds right and whose target answer it finds wrong. The skills
the iteration's training pairs asked about are the ones it meant to fix; their pair counts
are shown beside them. Audits go to RUN/reaudit/.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import auditdm
from auditdm.backends import default_references
from auditdm.rectify import labelled_pairs
from auditdm.verify import is_genuine, oracle_check


def genuine_by_skill(run: Path, target: str, config: dict, probes: int) -> Counter[str]:
    if not (run / "summary.json").exists():
        auditdm.audit(run, target=target, references=config["references"], auditor=config["auditor"], probes=probes,
                      image_count=max(40, probes // 5), weak_skill_questions=0, progress=True)  # fmt: skip
    return Counter(p.skill or "?" for p in auditdm.open_run(run).probes()
                   if p.score and is_genuine(p.consensus, p.target_answer, oracle_check(p)))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rectification", type=Path, help="a rectification run directory")
    parser.add_argument("--iteration", type=int, default=1)
    parser.add_argument("--probes", type=int, default=1000)
    args = parser.parse_args()
    config = json.loads((args.rectification / "rectify.json").read_text())
    config["references"] = config["references"] or default_references(config["target"])  # kept for the later models
    result = json.loads((args.rectification / "rectification.json").read_text())
    after_model = result["iterations"][args.iteration - 1]["model"]
    folder = args.rectification / "reaudit"
    before = genuine_by_skill(folder / "before", config["target"], config, args.probes)
    after = genuine_by_skill(folder / f"iteration-{args.iteration}", after_model, config, args.probes)
    trained = Counter(pair.skill or "?" for _, pair in labelled_pairs(args.rectification)
                      if pair.run.startswith(f"iteration-{args.iteration}/generate"))  # fmt: skip
    print(f"genuine failures in {args.probes} probes by {config['auditor']}: {config['target']} -> {after_model}")
    print(f"{'skill':<14}{'pairs':>7}{'before':>8}{'after':>7}")
    for skill in sorted(set(before) | set(after) | set(trained), key=lambda s: (-trained[s], s)):
        print(f"{skill:<14}{trained[skill]:>7}{before[skill]:>8}{after[skill]:>7}")
    print(f"{'all':<14}{sum(trained.values()):>7}{sum(before.values()):>8}{sum(after.values()):>7}")


if __name__ == "__main__":
    main()
