"""The Python API: ``import auditdm`` audits, resumes, opens runs and trains auditors, in-process."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import auditdm
from auditdm.records import ProbeRecord, RunSummary

SMALL = dict(image_count=4, weak_skill_questions=3, commit_every=5)


@pytest.mark.slow
def test_audit_resume_and_open_run(tmp_path) -> None:
    run_dir = tmp_path / "run"
    summary = auditdm.audit(run_dir, probes=10, **SMALL)
    assert isinstance(summary, RunSummary) and summary.probes == 10
    assert json.loads((run_dir / "summary.json").read_text()) == summary.to_dict()
    timing = {"seconds", "probes_per_second", "outside_model_share"}  # resuming a finished run adds a moment
    resumed = auditdm.resume(run_dir).to_dict()
    assert {k: v for k, v in resumed.items() if k not in timing} == {
        k: v for k, v in summary.to_dict().items() if k not in timing}  # fmt: skip
    probes = list(auditdm.open_run(run_dir).probes())
    assert len(probes) == 10 and all(isinstance(p, ProbeRecord) for p in probes)
    assert sum(p.score for p in probes) == summary.flagged


def photographs(folder, count: int = 3) -> None:
    """Ordinary images, not world images: smooth colour fields with noise, as JPEG and PNG."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for i in range(count):
        y, x = np.mgrid[0:96, 0:128]
        pixels = np.stack([x * 2, y * 2, (x + y)], axis=-1) + rng.normal(0, 20, (96, 128, 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"))
        image.save(folder / f"photo-{i}.{'jpg' if i % 2 else 'png'}")


@pytest.mark.slow
def test_an_audit_of_ordinary_images_runs_to_its_report(tmp_path) -> None:
    """The path real models take: images without scenes, no oracle, no original questions."""
    photographs(tmp_path / "photos")
    run_dir = tmp_path / "run"
    summary = auditdm.audit(run_dir, images=str(tmp_path / "photos"), probes=12, pairings=["question", "both"],
                            commit_every=6, weak_skill_questions=3)  # fmt: skip
    assert summary.probes == 12 and summary.verified is None
    assert set(summary.by_kind) <= {"question", "both+caption", "both+edit"}
    assert all(counts.genuine is None for counts in summary.by_kind.values())
    probes = list(auditdm.open_run(run_dir).probes())
    assert not any(p.verifiable for p in probes)
    edits = [p for p in probes if p.synthesis == "edit"]  # the world editor cannot edit a photograph
    assert edits and all(p.error and "can only edit world images" in p.error for p in edits)
    questions = [p for p in probes if p.pairing == "question" and p.error is None]
    assert questions and all(len(p.answers) == 4 for p in questions)
    report = (run_dir / "report.html").read_text()
    assert "search success rate" not in report and f"{summary.probes}</div>probes" in report


def test_a_bad_keyword_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(TypeError, match="probez"):
        auditdm.audit(tmp_path / "run", probez=3)
    with pytest.raises(auditdm.errors.UserError, match="unknown pairing"):
        auditdm.audit(tmp_path / "run", pairings=["sideways"])
    assert not (tmp_path / "run").exists()
    with pytest.raises(TypeError, match="bogus"):  # the function, not the module of the same name
        auditdm.rectify(tmp_path / "rect", bogus=1)


@pytest.mark.slow
def test_train_auditor_returns_a_folder_that_audits(tmp_path) -> None:
    final = auditdm.train_auditor(tmp_path / "grpo", steps=1, train_batch_size=8, group_size=4, images=2, save_every=1,
                                  references=["world:ref-a"])  # fmt: skip
    assert (final / "model.safetensors").exists()
    summary = auditdm.audit(tmp_path / "run", auditor=str(final), probes=5, **SMALL)
    assert summary.auditor == str(final) and summary.probes == 5


@pytest.mark.slow
def test_any_target_on_world_images_gets_weak_skills_and_blind_ones(tmp_path) -> None:
    """The world's benchmark only needs answers: an hf: target is tested like a world: one."""
    from auditdm.backends import ModelSpec

    folder = ModelSpec.parse("world:target").folder()
    references = ["world:ref-a", "world:ref-b", "world:ref-c"]
    summary = auditdm.audit(tmp_path / "run", target=f"hf:{folder}", references=references, probes=5, **SMALL)
    same = auditdm.audit(tmp_path / "world", probes=5, **SMALL)
    assert summary.verified is not None and same.verified is not None
    assert summary.verified.weak_skills == same.verified.weak_skills is not None
    assert summary.verified.consensus_blind == same.verified.consensus_blind is not None
    assert summary.to_dict()["verified"]["consensus_blind"] == summary.verified.consensus_blind


@pytest.mark.slow
def test_weak_skills_are_cached_until_a_model_changes(tmp_path, monkeypatch, capsys) -> None:
    import shutil

    from auditdm.backends import ModelSpec

    monkeypatch.setenv("AUDITDM_CACHE", str(tmp_path / "cache"))
    references = ["world:ref-a", "world:ref-b"]
    target = tmp_path / "target"
    shutil.copytree(ModelSpec.parse("world:target").folder(), target)
    settings = dict(target=f"hf:{target}", references=references, probes=5, progress=True, **SMALL)
    bar = f"weak skills of hf:{target}"  # the weak-skill step's progress bar
    first = auditdm.audit(tmp_path / "a", **settings)
    assert bar in capsys.readouterr().err
    second = auditdm.audit(tmp_path / "b", **settings)
    assert bar not in capsys.readouterr().err  # the second audit reused the first one's
    assert first.verified is not None and second.verified is not None
    assert second.verified.weak_skills == first.verified.weak_skills
    (target / "generation_config.json").write_text((target / "generation_config.json").read_text() + "\n")
    auditdm.audit(tmp_path / "c", **settings)  # any change to the model's files: measured again
    assert bar in capsys.readouterr().err
