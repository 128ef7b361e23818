"""The run store on a real SQLite file: batches are all or nothing, formats are checked."""

from __future__ import annotations

import sqlite3

import pytest

from auditdm.judge import Decision
from auditdm.records import Answers, OracleCheck, Picture, Probe, SourceImage
from auditdm.store import RunStore, RunStoreError
from auditdm.world.render import render
from auditdm.world.scene import Scene, Sign

SCENE = Scene(items={"center": Sign(42)}, seed=3)
ANSWERERS = [("world:target", "target"), ("world:ref-a", "reference"), ("world:ref-b", "reference")]


def probe(store: RunStore, index: int, error: str | None = None) -> Probe:
    parent = store.source_addresses()[0]
    return Probe(index, 0, "question", None, index, parent, Picture(render(SCENE), SCENE),
                 question="what number is on the sign ?", error=error)  # fmt: skip


def commit(store: RunStore, batch: int, probes: list[Probe], auditor: str = "a") -> None:
    """Commit probes as the panel and the oracle would have answered them (failed ones: not at all)."""
    answers = [None if p.error else Answers("41", ("42", "42"), "42", 1) for p in probes]
    checks = [None if p.error else OracleCheck("answerable", "42", "text") for p in probes]
    store.commit_batch(batch, probes, answers, checks, auditor, "baseline", ANSWERERS)


@pytest.fixture
def store(tmp_path) -> RunStore:
    sources = [SourceImage("a", Picture(render(SCENE), SCENE), "is it day or night ?")]
    return RunStore.create(tmp_path / "run", {"config": {"seed": 1}, "seconds": 0.0}, sources)


def test_batches_round_trip_with_answers_and_images(store) -> None:
    commit(store, 0, [probe(store, 0), probe(store, 1, error="invalid caption: no")], "world:baseline")
    first, failed = store.probes()
    assert first.answers == {"world:target": "41", "world:ref-a": "42", "world:ref-b": "42"}
    assert first.score == 1 and first.truth == "42" and first.skill == "text" and first.verifiable
    assert first.auditor == "world:baseline" and first.parent_image == store.source_addresses()[0]
    assert failed.error == "invalid caption: no" and failed.answers == {} and failed.score == 0
    assert store.done_batches() == {0}
    # The probed image is stored as a world PNG that carries its scene.
    assert first.image is not None and store.load_picture(first.image).scene == SCENE
    assert store.sources()[0].question == "is it day or night ?"


def test_a_batch_is_never_stored_twice(store) -> None:
    commit(store, 0, [probe(store, 0)])
    with pytest.raises(sqlite3.IntegrityError):
        commit(store, 0, [probe(store, 1)])
    assert [p.idx for p in store.probes()] == [0]  # the failed batch left nothing behind


def test_formats_and_folders_are_checked(store, tmp_path) -> None:
    folder = store.folder
    with pytest.raises(RunStoreError, match="already holds a run"):
        RunStore.create(folder, {})
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunStoreError, match="is a file, not a run directory"):
        RunStore.create(tmp_path / "file", {})
    with pytest.raises(RunStoreError, match="not a run directory"):
        RunStore.open(tmp_path)
    with store.db:
        store.db.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
    with pytest.raises(RunStoreError, match="run format 99"):
        RunStore.open(folder)


def test_a_judges_decisions_are_stored_with_the_batch_and_a_run_from_before_them_opens(store) -> None:
    decisions = [Decision("dark red", "red", True, "Yes."), Decision("blue", "red", False, "Perhaps.")]
    answers, checks = [Answers("41", ("42", "42"), "42", 1)], [OracleCheck("answerable", "42", "text")]
    store.commit_batch(0, [probe(store, 0)], answers, checks, "a", "baseline", ANSWERERS, judge="openai:j",
                       decisions=decisions)  # fmt: skip
    assert store.decisions("openai:j") == decisions and store.decisions("openai:other") == []
    with store.db:
        store.db.execute("DROP TABLE judgements")  # a run written before LLM judges
    store.close()
    assert list(RunStore.open(store.folder, write=False).probes())[0].consensus == "42"
    reopened = RunStore.open(store.folder)
    assert reopened.decisions("openai:j") == [] and len(list(reopened.probes())) == 1


def test_answers_asked_again_replace_a_lost_reply(store) -> None:
    commit(store, 0, [probe(store, 0, error="world:ref-a gave no answer: timeout"), probe(store, 1)])
    store.answer_again([probe(store, 0)], [Answers("42", ("42", "42"), "42", 0)],
                       [OracleCheck("answerable", "42", "text")], ANSWERERS, meta={"seconds": 2.0})  # fmt: skip
    first, second = store.probes()
    assert (first.error, first.target_answer, first.score, first.oracle_status) == (None, "42", 0, "answerable")
    assert first.answers == {"world:target": "42", "world:ref-a": "42", "world:ref-b": "42"}
    assert second.target_answer == "41" and store.meta()["seconds"] == 2.0


def test_a_store_comes_into_being_whole(tmp_path) -> None:
    """The database is built aside: a folder holds run.sqlite complete with its sources, or none."""
    folder = tmp_path / "run"
    sources = [SourceImage(f"s{i}", Picture(render(SCENE), SCENE), "is it day or night ?") for i in range(3)]
    store = RunStore.create(folder, {"config": {}, "seconds": 0.0}, sources)
    assert [s.name for s in store.sources()] == ["s0", "s1", "s2"]
    assert not [p.name for p in folder.iterdir() if "partial" in p.name]  # nothing half-made left beside it


def test_one_process_per_run(tmp_path) -> None:
    """A second process on a run is refused with the holder's PID; a lock left by a killed one is not."""
    import os
    import subprocess
    import sys

    from auditdm.store import lock_run

    held = lock_run(tmp_path)
    other = subprocess.run([sys.executable, "-c", f"from auditdm.store import lock_run; lock_run(__import__('pathlib').Path({str(tmp_path)!r}))"],
                           capture_output=True, text=True)  # fmt: skip
    assert other.returncode != 0 and f"in use by another auditdm (process {os.getpid()})" in other.stderr
    held.close()  # as the kernel does when the holder dies, kill -9 included
    killed = subprocess.Popen([sys.executable, "-c", f"from auditdm.store import lock_run; import time; "
                               f"h = lock_run(__import__('pathlib').Path({str(tmp_path)!r})); time.sleep(60)"])  # fmt: skip
    import time

    deadline = time.monotonic() + 30
    while str(killed.pid) not in (tmp_path / ".lock").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.kill()
    killed.wait()
    lock_run(tmp_path).close()  # the file remains, the lock does not
