"""Print the figures of the world issue for a zoo: accuracy bars, weak skills, time, size.

    python benchmarks/world_zoo.py                 # the shipped zoo
    python benchmarks/world_zoo.py --zoo my-zoo    # a zoo from `auditdm world train --out my-zoo`

Training time comes from the model cards written by `auditdm world train`: summed over the
models, so with `--jobs 2` (the default) the wall clock is less; time the command itself for
the wall clock (BENCHMARKS.md does). Accuracy comes from
the same evaluation as `auditdm world eval` (200 held-out questions per skill).
"""

from __future__ import annotations

import argparse
import json

from auditdm.world.zoo.evaluate import evaluate_zoo, format_table
from auditdm.world.zoo.cards import list_zoo, zoo_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", help="zoo folder (default: the shipped zoo)")
    parser.add_argument("--per-skill", type=int, default=200)
    args = parser.parse_args()

    folder = zoo_dir(args.zoo)
    models = list_zoo(folder)
    report = evaluate_zoo(folder, per_skill=args.per_skill, progress=False)
    print(format_table(report))

    majority = report["reference_majority"]
    weakest = min(majority["per_skill"].items(), key=lambda kv: kv[1])
    target, large = report["models"]["target"]["overall"], report["models"]["target-large"]["overall"]
    size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
    seconds = sum(m.card["train_seconds"] for m in models)
    figures = {
        "reference majority overall (bar >= 0.90)": round(majority["overall"], 3),
        "reference majority weakest skill (bar >= 0.85)": f"{weakest[0]} {weakest[1]:.3f}",
        "weak skills of target (bar >= 4)": len(report["weak_skills"]),
        "target-large minus target, overall": round(large - target, 3),
        "zoo training, minutes summed over models (bar <= 45 wall)": round(seconds / 60, 1),
        "shipped zoo size, MB (bar <= 60)": round(size_mb, 1),
    }
    print(json.dumps(figures, indent=2))
    worse = [s for s, v in report["models"]["target-large"]["per_skill"].items()
             if v < report["models"]["target"]["per_skill"][s]]  # fmt: skip
    print("skills where target-large is below target:", ", ".join(worse) or "none")


if __name__ == "__main__":
    main()
