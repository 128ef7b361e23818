"""The audit through the real CLI and store: paths, resume after a real kill, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auditdm.audit import AuditConfig
from auditdm.errors import UserError
from auditdm.probes import plan_probe
from auditdm.records import Picture, SourceImage
from auditdm.store import FORMAT, RunStore
from auditdm.world.zoo.cards import find_model
from factories import auditor_with_forms

SMALL = ["--image-count", "4", "--weak-skill-questions", "3", "--commit-every", "5"]


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "auditdm.cli", "audit", *args], capture_output=True, text=True,
                          env=env)  # fmt: skip


def store_rows(run_dir: Path) -> tuple[list[tuple], list[tuple]]:
    """Every probe and answer row of a run, in order."""
    db = sqlite3.connect(run_dir / "run.sqlite")
    probes = db.execute("SELECT * FROM probes ORDER BY idx").fetchall()
    answers = db.execute("SELECT * FROM answers ORDER BY probe, model").fetchall()
    db.close()
    return probes, answers


@pytest.mark.slow
def test_default_audit_end_to_end(tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = audit("--probes", "15", *SMALL, "-o", str(run_dir), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["probes"] == 15 and summary["run_dir"] == str(run_dir)
    assert 0 <= summary["distinct_flagged"] <= summary["flagged"] <= summary["probes"]
    assert summary["flag_rate"] == summary["distinct_flagged"] / (15 - summary["repeats"])
    assert summary["verified"] is not None and set(summary["verified"]["precision"]) == {
        "genuine", "ambiguous", "unanswerable"}  # fmt: skip
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    kinds = summary["by_kind"].values()
    assert sum(k["probes"] for k in kinds) == 15 and sum(k["flagged"] for k in kinds) == summary["flagged"]
    verified = summary["verified"]  # the genuine failures of every kind add up to the success rate
    assert sum(k["genuine"] for k in kinds) == round(verified["search_success_rate"] * verified["checked"])
    store = RunStore.open(run_dir)
    probes = list(store.probes())
    assert [p.idx for p in probes] == list(range(15))
    for probe in probes:  # the target and three references answered each valid probe; its images are stored
        assert len(probe.answers) == (4 if probe.error is None else 0)
        assert probe.parent_image and store.image_path(probe.parent_image).exists()
        assert probe.image is None or store.image_path(probe.image).exists()
    pairs = [(p.image, p.question) for p in probes if p.error is None]
    assert summary["repeats"] == len(pairs) - len(set(pairs))


@pytest.mark.slow
@pytest.mark.parametrize("pairing", ["question", "image", "both"])
def test_each_pairing(tmp_path, pairing) -> None:
    run_dir = tmp_path / pairing
    result = audit("--probes", "6", *SMALL, "--pairings", pairing, "-o", str(run_dir))
    assert result.returncode == 0, result.stderr
    store = RunStore.open(run_dir)
    sources = store.source_addresses()
    for probe in store.probes():
        assert probe.pairing == pairing
        original = store.sources()[probe.source].question
        if pairing == "question":  # (Q*, I): a new question about the original image
            assert probe.synthesis is None and probe.image == sources[probe.source]
        else:  # a new image, from the auditor's caption or edit command
            assert probe.synthesis in ("caption", "edit") and probe.instruction
        if pairing == "image":  # (Q, I*): the image's original question
            assert probe.question == original
        if probe.error is None and pairing != "question":
            assert probe.image != probe.parent_image or probe.synthesis == "caption"


def test_an_exploring_audit_starts_the_auditors_texts_with_the_forms_of_its_card(tmp_path) -> None:
    folder = auditor_with_forms(tmp_path / "auditor", {"question": ["how many"], "caption": ["a large"]})
    result = audit("--auditor", str(folder), "--explore", "1", "--probes", "8", "--pairings", "question,image",
                   "--synthesis", "caption", *SMALL, "-o", str(tmp_path / "run"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    probes = list(RunStore.open(tmp_path / "run").probes())
    assert {p.pairing for p in probes} == {"question", "image"}
    assert all(p.question.startswith("how many ") for p in probes if p.pairing == "question")
    assert all(p.instruction.startswith("a large ") for p in probes if p.pairing == "image")


@pytest.mark.slow
def test_killed_audit_resumes_to_the_uninterrupted_store(tmp_path) -> None:
    args = ["--probes", "40", "--image-count", "8", "--weak-skill-questions", "3", "--commit-every", "4", "--seed", "7"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert audit(*args, "-o", str(whole)).returncode == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "auditdm.cli", "audit", *args, "-o", str(killed)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill it once some batches, not all, are stored
        time.sleep(0.05)
        if (killed / "run.sqlite").exists():
            try:
                with sqlite3.connect(killed / "run.sqlite") as db:
                    if db.execute("SELECT count(*) FROM batches").fetchone()[0] >= 2:
                        break
            except sqlite3.OperationalError:
                pass  # the schema is still being created
    process.send_signal(signal.SIGKILL)
    process.wait()
    stored = len(store_rows(killed)[0])
    assert 0 < stored < 40, "the kill should land mid-run"
    resumed = audit("--resume", str(killed), "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["probes"] == 40
    assert store_rows(killed) == store_rows(whole)
    images = {p.name for p in (whole / "images").rglob("*.png")}
    assert {p.name for p in (killed / "images").rglob("*.png")} == images


# Runs an auditdm command in a real process that kills itself (SIGKILL, as a crash or the OOM
# killer would) on the Nth call of a function: a kill at a point chosen exactly, not by timing.
CRASH = """
import importlib, os, signal, sys
path, _, name = sys.argv[2].rpartition(".")
owner = importlib.import_module(sys.argv[1])
for part in filter(None, path.split(".")):
    owner = getattr(owner, part)
original, calls = getattr(owner, name), []
def crash(*args, **kwargs):
    calls.append(1)
    if len(calls) == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
setattr(owner, name, crash)
from auditdm.cli import main
sys.exit(main(sys.argv[4:]))
"""
CRASH_ARGS = ["--probes", "12", "--image-count", "6", "--weak-skill-questions", "3", "--commit-every", "4",
              "--seed", "5"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    assert audit(*CRASH_ARGS, "-o", str(run_dir)).returncode == 0
    return run_dir


def comparable(run_dir: Path) -> dict:
    """The run's summary less what differs between runs: its folder and its timings."""
    summary = json.loads((run_dir / "summary.json").read_text())
    return {k: v for k, v in summary.items() if k not in ("run_dir", "seconds", "probes_per_second",
                                                         "outside_model_share")}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "function", "call", "ways"),
    [
        ("auditdm.store", "_put_image", 3, ("--resume", "rerun")),  # while the store is created
        ("auditdm.store", "RunStore.commit_batch", 2, ("--resume",)),  # between batches
        ("auditdm.findings", "find_categories", 1, ("--resume",)),  # while failures are grouped
        ("auditdm.report", "write_text", 1, ("--resume",)),  # while the report is written
    ],
)  # fmt: skip
def test_a_crash_at_any_point_resumes_to_the_uninterrupted_run(uninterrupted, tmp_path, module, function, call,
                                                              ways) -> None:  # fmt: skip
    for way in ways:
        killed = tmp_path / way.strip("-")
        crashed = subprocess.run([sys.executable, "-c", CRASH, module, function, str(call), "audit", *CRASH_ARGS,
                                  "-o", str(killed)], capture_output=True, text=True,
                                 env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        assert not (killed / "report.html").exists()  # the last thing a run writes
        again = audit("--resume", str(killed)) if way == "--resume" else audit(*CRASH_ARGS, "-o", str(killed))
        assert again.returncode == 0, again.stderr
        assert store_rows(killed) == store_rows(uninterrupted)
        assert comparable(killed) == comparable(uninterrupted)
        assert (killed / "report.html").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "foo:bar"], "unknown model 'foo:bar'"),
        (["--target", "hf:/no/such/model"], "model folder /no/such/model does not exist"),
        (["--auditor", "world:target"], "world:target is a target model, not an auditor"),
        (["--pairings", "sideways"], "unknown pairing sideways"),
        (["--judge", "psychic"], "psychic"),
        (["--quorum", "9"], "--quorum 9"),
        (["--min-confidence", "0"], "--min-confidence 0.0: must be above 0 and at most 1"),
        (["--resume", "/no/such/run"], "/no/such/run: not a run directory"),
        (["--resume", "/no/such/run", "--probes", "80", "-o", "x"], "own settings: drop --probes, --out"),
        (["--device", "toaster"], "--device 'toaster': not a device"),
        (["--dtype", "float7"], "--dtype 'float7': not a floating-point torch dtype"),
        (["--auditor", "world:nonexistent"], "--auditor world:nonexistent: no world model named 'nonexistent'"),
        (["--explore", "0.5"], "--explore: world:auditor lists no forms to start its texts with"),
        pytest.param(["--device", "cuda:0"], "--device cuda:0: CUDA is not available",
                     marks=pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is here")),
    ],
)
def test_bad_input_is_one_clear_line(args, message) -> None:
    result = audit(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_image_folders_are_named(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = audit("--images", str(empty))
    assert result.returncode == 2 and "empty: the folder has no files" in result.stderr
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    assert "notes.txt: not an image file" in audit("--images", str(folder)).stderr
    (folder / "notes.txt").unlink()
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    assert "broken.png: not a readable image" in audit("--images", str(folder)).stderr
    (folder / "broken.png").unlink()
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    assert "gone.png: a link to nothing" in audit("--images", str(folder)).stderr
    (tmp_path / "photo.png").write_bytes(b"")
    assert "photo.png is a file: --images takes a folder" in audit("--images", str(tmp_path / "photo.png")).stderr


def test_a_model_without_chat_template_is_named(tmp_path) -> None:
    model = tmp_path / "no-template"
    shutil.copytree(find_model("target").path, model)
    for name in ("chat_template.jinja", "chat_template.json"):
        (model / name).unlink(missing_ok=True)
    processor = json.loads((model / "processor_config.json").read_text())
    processor.pop("chat_template", None)
    (model / "processor_config.json").write_text(json.dumps(processor))
    tokenizer = json.loads((model / "tokenizer_config.json").read_text())
    tokenizer.pop("chat_template", None)
    (model / "tokenizer_config.json").write_text(json.dumps(tokenizer))
    result = audit("--target", f"hf:{model}")
    assert result.returncode == 2 and f"model {model} has no chat template" in result.stderr


@pytest.mark.slow
def test_a_run_of_another_format_is_refused_and_kept(tmp_path) -> None:
    run_dir = tmp_path / "run"
    assert audit("--probes", "5", *SMALL, "-o", str(run_dir)).returncode == 0
    before = store_rows(run_dir)
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'format'")
    result = audit("--resume", str(run_dir))
    assert result.returncode == 2 and f"run format 0, but this auditdm reads format {FORMAT}" in result.stderr
    assert store_rows(run_dir) == before
    assert "already holds a run" in audit("-o", str(run_dir)).stderr


def test_probes_cycle_over_images_then_kinds() -> None:
    sources = [SourceImage("a", Picture(None), "q?"), SourceImage("b", Picture(None))]  # type: ignore[arg-type]
    planned = [plan_probe(sources, ("question", "image"), ("edit",), 0, i) for i in range(4)]
    kinds = [(p.source, p.pairing, p.synthesis) for p in planned]
    # Each image starts at another kind; image b has no original question, so (Q, I*) does not apply to it.
    assert kinds == [(0, "question", None), (1, "question", None), (0, "image", "edit"), (1, "question", None)]
    assert planned[2].question == "q?" and planned[0].question is None  # (Q, I*) asks the original question
    sources = [SourceImage(name, Picture(None), "q?") for name in "abc"]  # type: ignore[arg-type]
    first_pass = [(p.source, p.pairing) for p in (plan_probe(sources, ("question", "image"), ("edit",), 0, i)
                                                  for i in range(3))]  # fmt: skip
    assert first_pass == [(0, "question"), (1, "image"), (2, "question")]  # one pass already mixes kinds


def test_config_rejects_nonsense() -> None:
    with pytest.raises(UserError, match="at least 1"):
        AuditConfig(probes=0)


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.slow
def test_a_start_killed_before_its_store_exists_resumes_or_reruns(tmp_path) -> None:
    args = ["--probes", "10", "--image-count", "6", "--weak-skill-questions", "20", "--commit-every", "5",
            "--seed", "3"]
    whole = tmp_path / "whole"
    assert audit(*args, "-o", str(whole)).returncode == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for way in ("--resume", "rerun"):
        killed = tmp_path / way
        cold = {**env, "AUDITDM_CACHE": str(tmp_path / f"cache-{way}")}  # the weak skills are measured, not reused
        process = subprocess.Popen([sys.executable, "-m", "auditdm.cli", "audit", *args, "-o", str(killed)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cold)  # fmt: skip
        wait_for(killed / "audit.json", process)  # the configuration is written; the weak skills are running
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert (killed / "audit.json").exists() and not (killed / "run.sqlite").exists()
        again = audit("--resume", str(killed)) if way == "--resume" else audit(*args, "-o", str(killed))
        assert again.returncode == 0, again.stderr
        assert store_rows(killed) == store_rows(whole)


@pytest.mark.slow
def test_a_second_process_on_a_run_is_refused(tmp_path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "auditdm.cli", "audit", "--probes", "400", "--image-count", "4",
                                "--weak-skill-questions", "0", "--commit-every", "5", "-o", str(run_dir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    wait_for(run_dir / "run.sqlite", process)
    second = audit("--resume", str(run_dir))
    process.kill()
    process.wait()
    assert second.returncode == 2 and f"in use by another auditdm (process {process.pid})" in second.stderr
    assert "Traceback" not in second.stderr


def test_impossible_plans_and_bad_outputs_fail_before_anything_is_written(tmp_path) -> None:
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (32, 32), "white").save(photos / "a.png")
    out = tmp_path / "run"
    result = audit("--images", str(photos), "--pairings", "image", "-o", str(out))
    assert result.returncode == 2 and "a.png: none of the pairings image applies" in result.stderr
    assert not out.exists()
    (tmp_path / "file").write_text("x")
    result = audit("-o", str(tmp_path / "file"))
    assert result.returncode == 2 and "is a file, not a run directory" in result.stderr
    for args, message in ((["--temperature", "-1"], "--temperature -1.0"),
                          (["--weak-skill-questions", "-3"], "--weak-skill-questions -3"),
                          (["--probes", "0"], "--probes 0: must be at least 1")):  # fmt: skip
        result = audit(*args, "-o", str(out))
        assert result.returncode == 2 and message in result.stderr and not out.exists(), result.stderr


@pytest.mark.slow
def test_a_damaged_store_is_named_and_reading_a_run_writes_nothing(tmp_path) -> None:
    run_dir = tmp_path / "run"
    assert audit("--probes", "5", *SMALL, "-o", str(run_dir)).returncode == 0
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "run.sqlite").write_bytes((run_dir / "run.sqlite").read_bytes()[:3000])  # truncated
    for command in (["report", str(damaged)], ["export", str(damaged)], ["findings", str(damaged)],
                    ["audit", "--resume", str(damaged)]):  # fmt: skip
        result = subprocess.run([sys.executable, "-m", "auditdm.cli", *command], capture_output=True, text=True)
        assert result.returncode == 2 and "run.sqlite is damaged or not a run database" in result.stderr
        assert "Traceback" not in result.stderr
    # Reading a run writes nothing to it (so a finished run on read-only storage exports): the
    # read-only connection refuses writes, and opening switches no journal mode.
    store = RunStore.open(run_dir, write=False)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.db.execute("DELETE FROM meta")
    assert len(list(store.probes())) == 5
    out = tmp_path / "probes.jsonl"
    result = subprocess.run([sys.executable, "-m", "auditdm.cli", "export", str(run_dir), "-o", str(out)],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0 and len(out.read_text().splitlines()) == 5, result.stderr
    # Exports into a file or onto a folder, and a run whose image was removed: one line each,
    # and nothing replaced.
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    for output, fmt, message in ((keep / "notes.txt" / "p.jsonl", "jsonl", "notes.txt is a file, not a folder"),
                                 (keep, "jsonl", "keep is a folder: name a file"),
                                 (keep, "hf-dataset", "keep is a folder but no dataset")):  # fmt: skip
        result = subprocess.run([sys.executable, "-m", "auditdm.cli", "export", str(run_dir), "--format", fmt,
                                 "-o", str(output)], capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert (keep / "notes.txt").read_text() == "mine"
    for image in (run_dir / "images").rglob("*.png"):
        image.unlink()
    for command in (["report", str(run_dir)], ["export", str(run_dir), "--format", "hf-dataset"]):
        result = subprocess.run([sys.executable, "-m", "auditdm.cli", *command], capture_output=True, text=True)
        assert result.returncode == 2 and "is missing" in result.stderr and "Traceback" not in result.stderr
