"""Print what one rectification iteration gains, path by path and by the share of its data.

    python benchmarks/rectify.py -- --keep all --min-confidence 0.6

The paper's ablations: its Table 5 (the probes of one path alone: new questions about the pool
images, new images regenerated from a caption, new images edited by command; then all) and its
supp. Table 4 (20, 60 and 100 % of the generated pairs). Each variant is one iteration of
`auditdm rectify` (the arguments after `--` are added to every one); the fractions reuse the
generation of "all", so they differ only in how much of it trains the target; "all" also trains
the control. Prints, per variant: the pairs, their labels' accuracy by the oracle, the held-out
accuracy and its gain, the skill that fell most, and the minutes. Runs go to OUT/VARIANT.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PATHS = {  # variant: its rectify flags
    "questions": ["--pairings", "question"],
    "regeneration": ["--pairings", "both", "--synthesis", "caption"],
    "editing": ["--pairings", "both", "--synthesis", "edit"],
    "all": ["--control"],
}
FRACTIONS = (0.2, 0.6)  # 1.0 is "all"


def rectify(out: Path, flags: list[str], threads: int) -> float:
    """One iteration of `auditdm rectify` into ``out`` (resumed if it is there); its minutes."""
    started = time.perf_counter()
    command = ["--resume", str(out)] if (out / "rectify.json").exists() else [*flags, "--iterations", "1", "-o", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-m", "auditdm.cli", "rectify", *command, "--json"], env=env,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        print(f"{out.name}: {done.stderr.strip().splitlines()[-1]}", file=sys.stderr)
    return (time.perf_counter() - started) / 60


def row(name: str, out: Path, minutes: float) -> dict[str, Any]:
    if not (out / "rectification.json").exists():
        return {"variant": name, "pairs": 0}
    result = json.loads((out / "rectification.json").read_text())
    before, after = result["before"], result["iterations"][0]
    drops = {skill: after["per_skill"][skill] - score for skill, score in before["per_skill"].items()}
    worst = min(drops, key=lambda skill: drops[skill])
    control = after["control"]["overall"] - before["overall"] if after["control"] else None
    return {"variant": name, "pairs": after["pairs"], "labels_right": after["label_accuracy"],
            "before": before["overall"], "after": after["overall"], "gain": after["overall"] - before["overall"],
            "control_gain": control, "worst_skill": worst, "worst_change": drops[worst], "minutes": minutes}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/rectify-ablation"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run")
    parser.add_argument("flags", nargs="*", help="rectify flags for every variant (after --)")
    args = parser.parse_args()
    rows = []
    for name, flags in PATHS.items():
        out = args.out / name
        rows.append(row(name, out, rectify(out, [*args.flags, *flags], args.threads)))
    generation = args.out / "all" / "iteration-1" / "generate-0"
    for fraction in FRACTIONS:
        out = args.out / f"fraction-{fraction:g}"
        if generation.exists() and not out.exists():
            shutil.copytree(generation, out / "iteration-1" / "generate-0")
        rows.append(row(out.name, out, rectify(out, [*args.flags, "--fraction", str(fraction)], args.threads)))
    with (args.out / "results.jsonl").open("w") as file:
        file.writelines(json.dumps(r) + "\n" for r in rows)
    print(f"{'variant':<14}{'pairs':>7}{'right':>8}{'after':>8}{'gain':>8}{'control':>9}  worst skill      min")
    for r in rows:
        if not r["pairs"]:
            print(f"{r['variant']:<14}{0:>7}  (no pair to train on)")
            continue
        control = "" if r["control_gain"] is None else f"{100 * r['control_gain']:+.1f}"
        print(f"{r['variant']:<14}{r['pairs']:>7}{100 * (r['labels_right'] or 0):>7.0f}%{100 * r['after']:>7.1f}%"
              f"{100 * r['gain']:>+8.1f}{control:>9}  {r['worst_skill']:<12}{100 * r['worst_change']:+5.0f}"
              f"{r['minutes']:>6.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
