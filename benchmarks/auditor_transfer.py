"""Print the figures of the auditor-transfer issue: train-auditor against targets it was not tuned on.

    python benchmarks/auditor_transfer.py                          # the default recipe
    python benchmarks/auditor_transfer.py --tag gate --train-arg=--min-confidence=0.6
    python benchmarks/auditor_transfer.py --explore 0 --explore 0.5    # also audit with audit --explore 0.5
    python benchmarks/auditor_transfer.py --tag refs4 \
        --references world:ref-a,world:ref-b,world:ref-c,world:target-large     # a fourth reference
    python benchmarks/auditor_transfer.py --tag refs4q3 --quorum 3 \
        --references world:ref-a,world:ref-b,world:ref-c,world:target-large     # three of four agree
    python benchmarks/auditor_transfer.py --tag refs4d-q3 --quorum 3 \
        --references world:ref-a,world:ref-b,world:ref-c,ref-d     # a fourth trained as a reference

Four target variants, retrained from the target's recipe with other seeds, data mixes and
sizes (VARIANTS; rebuilt with `auditdm world train` when missing), stand in for a user's own
target; a reference named by a key of EXTRA_REFERENCES is built the same way. For each
variant, `auditdm train-auditor` with the given recipe (the defaults unless ``--train-arg``
says otherwise) trains an auditor against it from world:baseline; then the
variant is audited with world:baseline and with that auditor on the same held-out world images
(seed 7, one probe per image, every kind), and the oracle's figures are printed per variant:
search success (and its ratio to the baseline), the genuine and the shared-error share of the
flags, weakness recall over the weak skills the consensus can see, and training minutes.
The issue's bars: >= 85 % genuine, >= 3x the baseline, recall >= 60 %, <= 20 minutes.

Everything lands in OUT (default runs/transfer): OUT/targets/NAME, OUT/references/NAME,
OUT/TAG/NAME (the training), OUT/TAG/results.jsonl. Trainings run two at a time, one thread
each, and a re-run picks up what is already there (finished models and audits are kept, a
stopped training resumes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from auditdm.audit import AuditConfig, start_audit
from auditdm.auditor import auditor_card
from auditdm.backends import default_references

HELD_OUT_SEED = 7
# Target variants: the target's recipe (auditdm.world.zoo.recipes) with these overrides.
VARIANTS: dict[str, list[str]] = {
    "seed5": ["seed=5"],  # the same recipe, another seed
    "counting-mix": ["seed=12", "weights.counting=1.5", "weights.relationship=1.0"],  # counts as well as a reference
    "reading-mix": ["seed=13", "weights.text=0.3", "weights.direction=0.3", "weights.counting=1.0"],
    "deeper": ["seed=14", "size.text_layers=3", "weights.color=0.5", "weights.shape=0.5"],
}
# Further references, for the lever "a larger ensemble": name: (zoo recipe, overrides).
EXTRA_REFERENCES: dict[str, tuple[str, list[str]]] = {
    "ref-d": ("ref-b", ["seed=24", "size.text_layers=3"]),  # ref-b's width with ref-c's depth, another seed
}
REFERENCES = default_references("world:target")
BARS = {"genuine": 0.85, "ratio": 3.0, "recall": 0.6, "minutes": 20.0}


def _run(command: list[str], log: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        print("$", " ".join(command), f"> {log}", flush=True)
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, check=True)


def train_model(folder: Path, recipe: str, sets: list[str], log: Path) -> None:
    """Train the zoo's ``recipe`` with ``sets`` overridden into ``folder``, unless it is there."""
    if (folder / "config.json").exists():
        return
    command = [sys.executable, "-m", "auditdm", "world", "train", "--only", recipe, "--set", ",".join(sets),
               "--name", folder.name, "--out", str(folder.parent), "--jobs", "1", "-q"]  # fmt: skip
    _run(command, log)


def reference_specs(out: Path, names: list[str]) -> list[str]:
    """The references as model specs, building those named by a key of EXTRA_REFERENCES."""
    specs = []
    for name in names:
        if name in EXTRA_REFERENCES:
            recipe, sets = EXTRA_REFERENCES[name]
            train_model(out / "references" / name, recipe, sets, out / "logs" / f"reference-{name}.log")
            name = f"hf:{out / 'references' / name}"
        specs.append(name)
    return specs


def train_auditor(out: Path, tag: str, name: str, train_args: list[str], references: list[str],
                  quorum: int | None) -> bool:  # fmt: skip
    """Whether the variant has a trained auditor; a training that fails (one that diverged) is
    reported with its log's last line, and the other variants go on."""
    folder = out / tag / name
    if (folder / "final").exists():
        return True
    resume = ["--resume"] if folder.exists() else []
    command = [sys.executable, "-m", "auditdm", "train-auditor", "-o", str(folder), *resume,
               "--target", f"hf:{out / 'targets' / name}", "--references", ",".join(references),
               *(["--quorum", str(quorum)] if quorum else []), *train_args]  # fmt: skip
    log = out / "logs" / f"auditor-{tag}-{name}.log"
    try:
        _run(command, log)
    except subprocess.CalledProcessError:
        print(f"{name}: the training failed: {log.read_text().strip().splitlines()[-1]}", flush=True)
        return False
    return True


def audit_row(target: str, auditor: str, images: int, folder: Path, explore: float,
              references: list[str], quorum: int | None) -> dict[str, Any]:  # fmt: skip
    config = AuditConfig(target=target, references=tuple(references), quorum=quorum, auditor=auditor, probes=images,
                         image_count=images, seed=HELD_OUT_SEED, explore=explore)  # fmt: skip
    summary = start_audit(config, folder, progress=False).to_dict()
    verified = summary["verified"]
    card = auditor_card(auditor)
    return {
        "target": target, "auditor": auditor, "explore": explore, "success": verified["search_success_rate"],
        "genuine": verified["precision"]["genuine"], "shared": verified["precision"]["unanswerable"],
        "recall": verified["weakness_recall"], "weak_skills": verified["weak_skills"],
        "consensus_blind": verified["consensus_blind"], "genuine_by_skill": verified["genuine_by_skill"],
        "flagged": summary["flagged"], "failed": summary["failed"],
        "train_minutes": round(card.get("train_seconds", 0) / 60, 1) if "grpo" in card else None,
    }  # fmt: skip


def main() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/transfer"))
    parser.add_argument("--tag", default="default", help="name of the recipe under test (its folder in OUT)")
    parser.add_argument("--train-arg", action="append", default=[], metavar="ARG",
                        help="an argument for train-auditor, e.g. --train-arg=--min-confidence=0.6 (repeatable)")
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS), help="only these (default: all)")
    parser.add_argument("--also", action="append", default=[], metavar="AUDITOR",
                        help="audit each variant with this auditor too, e.g. world:auditor (repeatable)")
    parser.add_argument("--images", type=int, default=1000, help="held-out images, one probe each")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once, one thread each")
    parser.add_argument("--references", type=lambda text: text.split(","), default=list(REFERENCES), metavar="A,B,...",
                        help="the references of every training and audit (default: the world's three); a name "
                        f"of {', '.join(EXTRA_REFERENCES)} is built when missing")
    parser.add_argument("--quorum", type=int, help="references that must agree, in every training and audit "
                        "(default: all)")  # fmt: skip
    parser.add_argument("--explore", type=float, action="append", metavar="SHARE",
                        help="audit the trained auditor with audit --explore SHARE (repeatable; default: 0)")
    args = parser.parse_args()
    names = args.variant or list(VARIANTS)
    shares = args.explore or [0.0]
    args.references = reference_specs(args.out, args.references)
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda name: train_model(args.out / "targets" / name, "target", VARIANTS[name],
                                               args.out / "logs" / f"target-{name}.log"), names))  # fmt: skip
        trained = list(pool.map(lambda name: train_auditor(args.out, args.tag, name, args.train_arg, args.references,
                                                           args.quorum), names))  # fmt: skip
    failed = [name for name, ok in zip(names, trained) if not ok]
    names = [name for name in names if name not in failed]
    results = args.out / args.tag / "results.jsonl"
    results.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    rows = []
    with tempfile.TemporaryDirectory() as scratch, results.open("a") as sink:
        for name in names:
            target = f"hf:{args.out / 'targets' / name}"
            final = str(args.out / args.tag / name / "final")
            auditors = [("world:baseline", 0.0), *((a, 0.0) for a in args.also),
                        *((final, share) for share in shares)]  # fmt: skip
            for i, (auditor, explore) in enumerate(auditors):
                key = (name, auditor, explore)
                row = next((r for r in done if (r["variant"], r["auditor"], r.get("explore", 0.0)) == key), None)
                if row is None:  # not audited by an earlier run of this script
                    row = {"variant": name, "recipe": args.tag, **audit_row(target, auditor, args.images,
                                                                           Path(scratch) / f"{name}-{i}", explore,
                                                                           args.references, args.quorum)}
                    sink.write(json.dumps(row) + "\n")
                    sink.flush()
                rows.append(row)
    print(f"\n{'variant':<14} {'auditor':<34} {'explore':>7} {'success':>8} {'x base':>7} {'genuine':>8} "
          f"{'shared':>7} {'recall':>7} {'min':>5}  weak skills seen / blind")
    met = dict.fromkeys(shares, not failed)
    for row in rows:
        base = next(r["success"] for r in rows if r["variant"] == row["variant"] and r["auditor"] == "world:baseline")
        ratio = row["success"] / base if base else float("inf")
        recall = "-" if row["recall"] is None else f"{100 * row['recall']:.0f} %"
        minutes = "" if row["train_minutes"] is None else f"{row['train_minutes']:.1f}"
        print(f"{row['variant']:<14} {row['auditor'][-34:]:<34} {row.get('explore', 0.0):7.2f} "
              f"{100 * row['success']:6.1f} % {ratio:6.1f}x "
              f"{100 * row['genuine']:6.1f} % {100 * row['shared']:5.1f} % {recall:>7} {minutes:>5}  "
              f"{','.join(row['weak_skills'] or [])} / {','.join(row['consensus_blind'] or [])}")
        if row["auditor"].endswith("/final"):
            met[row.get("explore", 0.0)] &= (row["genuine"] >= BARS["genuine"] and ratio >= BARS["ratio"]
                                             and (row["recall"] or 0) >= BARS["recall"]
                                             and row["train_minutes"] <= BARS["minutes"])  # fmt: skip
    for share in shares:
        print(f"\nbars (>= {100 * BARS['genuine']:.0f} % genuine, >= {BARS['ratio']:.0f}x, recall >= "
              f"{100 * BARS['recall']:.0f} %, <= {BARS['minutes']:.0f} min) met on every variant with --explore "
              f"{share}: {met[share]}")


if __name__ == "__main__":
    main()
