"""Print the figures of the audit issue: verified search success and precision, speed, resume.

    python benchmarks/audit.py                       # 1,000 probes, baseline auditor, then kill/resume
    python benchmarks/audit.py --probes 200 --no-resume-check

1. An audit of `--probes` probes with the given auditor on world images, under cProfile:
   the verified figures beside the paper's, probes per second, the share of wall time
   outside model calls (auditor and answerers), and where that time goes.
2. A real kill -9 of an `auditdm audit` subprocess in mid-run, a resume, and a comparison of
   the final store with that of an uninterrupted run of the same seed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from auditdm.audit import AuditConfig, start_audit
from auditdm.records import RunSummary
from auditdm.summary import format_summary


def profiled_audit(config: AuditConfig, out: Path) -> RunSummary:
    profile = cProfile.Profile()
    started = time.perf_counter()
    summary = profile.runcall(start_audit, config, out, False)
    wall = time.perf_counter() - started
    print(format_summary(summary))
    print(f"\nwall time including model loading and the weak-skill benchmark: {wall:.1f} s")
    print(f"audit loop: {summary.seconds} s, {summary.probes_per_second} probes/s, "
          f"share outside model calls {summary.outside_model_share}")
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(12)
    print("\nwhere the time goes (cProfile, by own time):")
    print("\n".join(line for line in text.getvalue().splitlines()[6:] if line.strip()))
    return summary


def rows(run_dir: Path) -> tuple[list, list]:
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        return (db.execute("SELECT * FROM probes ORDER BY idx").fetchall(),
                db.execute("SELECT * FROM answers ORDER BY probe, model").fetchall())  # fmt: skip


def kill_and_resume(probes: int, folder: Path) -> None:
    args = ["--probes", str(probes), "--seed", "3", "--commit-every", "25"]
    cli = [sys.executable, "-m", "auditdm.cli", "audit"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    whole, killed = folder / "whole", folder / "killed"
    subprocess.run([*cli, *args, "-o", str(whole), "--json"], check=True, env=env, capture_output=True)
    process = subprocess.Popen([*cli, *args, "-o", str(killed), "--json"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    while True:  # kill -9 once about half the batches are stored
        time.sleep(0.1)
        try:
            with sqlite3.connect(killed / "run.sqlite") as db:
                if db.execute("SELECT count(*) FROM batches").fetchone()[0] * 25 >= probes // 2:
                    break
        except sqlite3.OperationalError:
            continue
    process.send_signal(signal.SIGKILL)
    process.wait()
    stored = len(rows(killed)[0])
    subprocess.run([*cli, "--resume", str(killed), "--json"], check=True, env=env, capture_output=True)
    same = rows(killed) == rows(whole)
    images = {p.name for p in (whole / "images").rglob("*.png")} == {p.name for p in (killed / "images").rglob("*.png")}
    print(f"\nkill -9 after {stored} of {probes} probes were stored; resumed; "
          f"store equal to the uninterrupted run: {same}; same images: {images}")


def main() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # as the CLI does: no per-file loading bars
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--auditor", default="world:baseline")
    parser.add_argument("--image-count", type=int, default=200)
    parser.add_argument("--resume-probes", type=int, default=200, help="probes of the kill/resume check")
    parser.add_argument("--no-resume-check", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = AuditConfig(auditor=args.auditor, probes=args.probes, image_count=args.image_count)
        summary = profiled_audit(config, Path(folder) / "audit")
        print(json.dumps({k: summary.to_dict()[k] for k in ("probes", "flagged", "flag_rate", "verified")}, indent=2))
        if not args.no_resume_check:
            kill_and_resume(args.resume_probes, Path(folder))


if __name__ == "__main__":
    main()
