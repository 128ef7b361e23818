"""The default world audit in-process and on Ray (1 and 2 replicas per model), and what the
measured per-probe costs project for a 20,000-probe audit and a 1.3M-image rectification pool.

Each run is the default audit (world:target against the world references, the GRPO-trained
world auditor, 40 images, batches of 50) at ``--probes`` probes, the weak skills skipped
(they are cached after the first run anyway). Figures: probes per second over the batch loop,
Ray's start-up (``ray.init``, and the actors loading their models, over the in-process load),
the loop time per batch, and a no-op actor call's round trip.

The projection is Amdahl's law on the measured split of the batch loop: the driver's share
(planning, the world renderer, the oracle's checks, the store) stays serial; the model share
divides over the workers. Assumptions, printed with it: every worker (a GPU) runs one replica
of each model as fast as this machine's model share per probe (a GPU and paper-sized models
change that figure, not the shape); the driver's share per probe is this machine's; the
rectification pool makes one probe per image.

    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/ray_audit.py --probes 100
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import ray

from auditdm.audit import AuditConfig, start_audit
from auditdm.store import RunStore

WORKERS = 16


def run(config: AuditConfig, out: Path) -> dict[str, float]:
    """One audit: its wall time, the batch loop's time and the model calls' share of it."""
    started = time.perf_counter()
    summary = start_audit(config, out, progress=False)
    wall = time.perf_counter() - started
    meta = RunStore.open(out, write=False).meta()
    return {"wall": wall, "loop": meta["seconds"], "model": meta["model_seconds"], "probes": summary.probes}


def round_trip() -> float:
    """Seconds for a no-op call to an actor and back."""

    @ray.remote(num_cpus=0.1)
    class Echo:
        def ping(self) -> None:
            return None

    echo = Echo.remote()  # type: ignore[attr-defined]
    ray.get(echo.ping.remote())
    started = time.perf_counter()
    for _ in range(100):
        ray.get(echo.ping.remote())
    return (time.perf_counter() - started) / 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=2000)
    args = parser.parse_args()
    config = AuditConfig(probes=args.probes, weak_skill_questions=0)
    batches = -(-config.probes // config.commit_every)
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        rows["in-process"] = run(config, Path(folder) / "local")
        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        init = time.perf_counter() - started
        trip = round_trip()
        for replicas in (1, 2):
            rows[f"ray x{replicas}"] = run(dataclasses.replace(config, executor="ray", replicas=replicas),
                                           Path(folder) / f"ray{replicas}")  # fmt: skip
    local = rows["in-process"]
    print(f"default world audit, {config.probes} probes, {batches} batches of {config.commit_every}, "
          f"{os.cpu_count()} CPUs")
    print(f"ray.init {init:.1f} s; no-op actor round trip {trip * 1000:.2f} ms")
    for name, row in rows.items():
        start_up = (row["wall"] - row["loop"]) - (local["wall"] - local["loop"])
        print(f"{name:>10}: {row['probes'] / row['loop']:.2f} probes/s, loop {row['loop']:.1f} s "
              f"({row['loop'] / batches:.2f} s/batch, {row['loop'] / batches - local['loop'] / batches:+.2f} s "
              f"against in-process), model share {row['model'] / row['loop']:.0%}, start-up over in-process "
              f"{start_up:+.1f} s")  # fmt: skip
    ray_row = rows["ray x1"]
    driver = (ray_row["loop"] - ray_row["model"]) / ray_row["probes"]
    model = ray_row["model"] / ray_row["probes"]
    print(f"per probe on Ray: driver {driver * 1000:.1f} ms (serial), models {model * 1000:.1f} ms (divides)")
    for what, probes in (("20,000-probe audit", 20_000), ("1.3M-image rectification pool", 1_300_000)):
        hours = probes * (driver + model / WORKERS) / 3600
        print(f"projection, {what} on {WORKERS} workers: {hours:.2f} h "
              f"(driver-bound ceiling {1 / driver:.0f} probes/s)")
    print(json.dumps({"rows": rows, "ray_init": init, "round_trip": trip}))


if __name__ == "__main__":
    main()
