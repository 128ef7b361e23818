"""The audit on Ray (``--executor ray``): a real local cluster, real actors, real kills."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import auditor_with_forms
from test_audit import store_rows

from auditdm.audit import AuditConfig, start_audit

CONFIG = AuditConfig(probes=16, image_count=6, weak_skill_questions=0, commit_every=4, seed=11)


def batches(run_dir: Path) -> int:
    """Batches committed so far (0 before the store exists); waits out a writer's lock, or the
    recovery of a journal a killed writer left."""
    if not (run_dir / "run.sqlite").exists():
        return 0
    with sqlite3.connect(run_dir / "run.sqlite", timeout=60) as db:
        count: int = db.execute("SELECT count(*) FROM batches").fetchone()[0]
        return count


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("local") / "run"
    start_audit(CONFIG, run_dir, progress=False)
    return run_dir


@pytest.mark.slow
def test_an_audit_on_ray_equals_the_in_process_audit(cluster, in_process, tmp_path) -> None:
    run_dir = tmp_path / "ray"
    summary = start_audit(dataclasses.replace(CONFIG, executor="ray", replicas=2), run_dir, progress=False)
    assert summary.probes == CONFIG.probes
    probes, answers = store_rows(run_dir)
    assert (probes, answers) == store_rows(in_process)
    assert len(answers) > len(probes)  # the target and the references answered


@pytest.mark.slow
def test_an_exploring_audit_on_ray_equals_the_in_process_one(cluster, tmp_path) -> None:
    folder = auditor_with_forms(tmp_path / "auditor", {"question": ["how many", "what color"]})
    config = dataclasses.replace(CONFIG, auditor=str(folder), explore=0.5, pairings=("question",), probes=8,
                                 references=("world:ref-a",))  # fmt: skip
    start_audit(config, tmp_path / "local", progress=False)
    start_audit(dataclasses.replace(config, executor="ray"), tmp_path / "ray", progress=False)
    probes, answers = store_rows(tmp_path / "ray")
    assert (probes, answers) == store_rows(tmp_path / "local")
    assert any(row[9] and row[9].split()[:2] in (["how", "many"], ["what", "color"]) for row in probes)


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_nothing_is_lost_or_duplicated(cluster, in_process, tmp_path) -> None:
    run_dir = tmp_path / "ray"
    pids: list[int] = []

    def kill_the_auditor() -> None:
        """Once the first batch is stored, kill -9 the auditor's actor: the driver has just asked
        it for the next batch's captions; then wait for Ray to bring it back."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and batches(run_dir) < 1:
            time.sleep(0.01)
        actor = cluster.get_actor("auditdm world:auditor #0")
        pids.append(cluster.get(actor.pid.remote()))
        os.kill(pids[0], signal.SIGKILL)
        pids.append(cluster.get(actor.pid.remote()))  # answered by the restarted actor

    killer = threading.Thread(target=kill_the_auditor)
    killer.start()
    start_audit(dataclasses.replace(CONFIG, executor="ray"), run_dir, progress=False)
    killer.join()
    assert len(pids) == 2 and pids[0] != pids[1], "the auditor's actor should have been killed and restarted"
    assert store_rows(run_dir) == store_rows(in_process)


@pytest.mark.slow
def test_a_killed_driver_resumes(in_process, tmp_path) -> None:
    pytest.importorskip("ray")
    run_dir = tmp_path / "ray"
    args = ["--probes", str(CONFIG.probes), "--image-count", str(CONFIG.image_count), "--weak-skill-questions", "0",
            "--commit-every", str(CONFIG.commit_every), "--seed", str(CONFIG.seed), "--executor", "ray"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "driver.log"
    with log.open("w") as stderr:
        driver = subprocess.Popen([sys.executable, "-m", "auditdm.cli", "audit", *args, "-o", str(run_dir)],
                                  stdout=subprocess.DEVNULL, stderr=stderr, env=env)  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None and batches(run_dir) < 1:
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert 0 < batches(run_dir) < CONFIG.probes // CONFIG.commit_every, f"the kill should land mid-run: {log.read_text()}"
    resumed = subprocess.run([sys.executable, "-m", "auditdm.cli", "audit", "--resume", str(run_dir)],
                             capture_output=True, text=True, env=env)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert store_rows(run_dir) == store_rows(in_process)


BLOCK_RAY = """
import builtins, sys
real = builtins.__import__
def block(name, *args, **kwargs):
    if name == "ray" or name.startswith("ray."):
        raise ImportError("No module named 'ray'")
    return real(name, *args, **kwargs)
builtins.__import__ = block
from auditdm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_executor_ray_without_ray_says_what_to_install(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-c", BLOCK_RAY, "audit", "--executor", "ray", "--probes", "2",
                             "--weak-skill-questions", "0", "-o", str(tmp_path / "run")],
                            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "auditdm: error: --executor ray needs Ray: pip install 'auditdm[ray]'"
    assert not (tmp_path / "run").exists()


def test_unknown_executors_and_replicas_are_refused() -> None:
    from auditdm.errors import UserError

    with pytest.raises(UserError, match="--executor dask: choose from local, ray"):
        AuditConfig(executor="dask")
    with pytest.raises(UserError, match="--replicas 0: must be at least 1"):
        AuditConfig(replicas=0)


@pytest.mark.slow
def test_a_rectification_on_ray_labels_the_pairs_an_in_process_one_labels(cluster, tmp_path) -> None:
    from auditdm.rectify import RectifyConfig, labelled_pairs, start_rectify

    config = RectifyConfig(pool_size=6, probes=12, epochs=1, train_batch_size=4, iterations=1, eval_questions=1,
                           keep="all", compare_to=None)  # fmt: skip
    start_rectify(config, tmp_path / "local", progress=False)
    start_rectify(dataclasses.replace(config, executor="ray"), tmp_path / "ray", progress=False)
    local, on_ray = ([pair for _, pair in labelled_pairs(tmp_path / run)] for run in ("local", "ray"))
    assert local and on_ray == local
    assert '"executor": "ray"' in (tmp_path / "ray" / "iteration-1" / "generate-0" / "audit.json").read_text()
