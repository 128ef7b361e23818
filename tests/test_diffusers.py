"""diffusers pipelines as G and E: tiny random Stable Diffusion (text-to-image) and
InstructPix2Pix (editing) pipelines, built offline as diffusers' own tests build them,
inside real audits; a resumed run redraws the same images; bad input is one clear line."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_audit import CRASH, store_rows
from tiny_pipelines import synthesis_args

from auditdm.audit import AuditConfig
from auditdm.backends import load_synthesizer
from auditdm.cli import build_parser, config_from, main
from auditdm.grpo import GRPOSettings
from auditdm.probes import with_instruction
from auditdm.records import Picture, Probe
from auditdm.sources import png_bytes as png
from auditdm.store import RunStore
from auditdm.synth import SynthesisOptions
from auditdm.world.domain import WORLD

pytest.importorskip("diffusers")

ONE_STEP = (SynthesisOptions(steps=1), SynthesisOptions(steps=1))


def test_generate_and_edit_are_drawn_from_the_seed(pipelines) -> None:
    sd, ip2p = pipelines
    synthesizer = load_synthesizer(f"diffusers:{sd}", f"diffusers:{ip2p}", ONE_STEP)
    assert synthesizer.name == f"diffusers:{sd}+diffusers:{ip2p}"
    made = synthesizer.generate("a red circle", 3)
    assert made.scene is None and made.image.mode == "RGB" and made.image.size == (32, 32)
    assert png(synthesizer.generate("a red circle", 3)) == png(made)
    assert png(synthesizer.generate("a red circle", 4)) != png(made)
    world = WORLD.images(1, seed=0)[0].picture
    edited = synthesizer.edit(world, "make it blue", 3)
    assert edited.scene is None and edited.image.size == world.image.size  # a diffusers image carries no scene
    assert png(synthesizer.edit(world, "make it blue", 3)) == png(edited)
    assert png(synthesizer.edit(world, "make it green", 3)) != png(edited)
    mixed = load_synthesizer(f"diffusers:{sd}", "world", ONE_STEP)  # G and E from two backends
    assert mixed.name == f"diffusers:{sd}+world" and mixed.edit(world, "make it night", 3).scene is not None


def test_a_caption_cut_short_is_a_warning_not_a_failure(pipelines, caplog) -> None:
    sd, ip2p = pipelines
    synthesizer = load_synthesizer(f"diffusers:{sd}", f"diffusers:{ip2p}", ONE_STEP)
    caption = "a red circle at the top left and a blue square at the bottom right, " * 2  # over CLIP's 77 tokens
    with caplog.at_level(logging.WARNING, logger="auditdm.diffusion"):
        synthesizer.generate("a red circle", 0)
        picture = synthesizer.generate(caption, 0)
    assert picture.image.size == (32, 32)
    (record,) = [r for r in caplog.records if r.name == "auditdm.diffusion"]
    assert record.getMessage() == f"diffusers:{sd} reads only the first 77 tokens of {caption!r}: the rest is cut off"


def test_a_pipeline_failure_fails_its_probe_only(pipelines) -> None:
    from PIL import Image

    sd, ip2p = pipelines
    synthesizer = load_synthesizer(f"diffusers:{sd}", f"diffusers:{ip2p}", ONE_STEP)
    planned = Probe(0, 0, "image", "edit", 5, picture=Picture(Image.new("RGB", (1, 1))), question="what is it ?")
    failed = with_instruction(planned, "make it blue", synthesizer)  # no latent fits in one pixel
    assert failed.picture is None and failed.instruction == "make it blue"
    assert failed.error == f"invalid edit: diffusers:{ip2p} failed: ValueError: height and width must be > 0"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "auditdm.cli", *args], capture_output=True, text=True, env=env)


AUDIT = ["--probes", "8", "--image-count", "4", "--weak-skill-questions", "0", "--commit-every", "4", "--seed", "2",
         "--pairings", "image,both"]  # fmt: skip


@pytest.mark.slow
def test_a_stopped_audit_resumes_to_the_same_images(pipelines, tmp_path) -> None:
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    args = [*AUDIT, *synthesis_args(pipelines)]
    assert main(["audit", *args, "-o", str(whole), "--json"]) == 0
    crashed = subprocess.run([sys.executable, "-c", CRASH, "auditdm.store", "RunStore.commit_batch", "2", "audit",
                              *args, "-o", str(stopped)], capture_output=True, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert len(store_rows(stopped)[0]) == 4  # the first batch, then the kill
    assert main(["audit", "--resume", str(stopped), "--json"]) == 0
    assert store_rows(stopped) == store_rows(whole)
    images = {p.relative_to(whole).as_posix(): p.read_bytes() for p in (whole / "images").rglob("*.png")}
    assert {p.relative_to(stopped).as_posix(): p.read_bytes() for p in (stopped / "images").rglob("*.png")} == images
    store = RunStore.open(whole)
    probes = list(store.probes())
    made = [p for p in probes if p.image is not None and p.synthesis is not None]
    assert {p.synthesis for p in made} == {"caption", "edit"}
    for probe in made:  # a diffusers image is stored, carries no scene, and the oracle leaves it alone
        assert store.load_picture(probe.image).scene is None
        assert probe.oracle_status is None and not probe.verifiable
    summary = json.loads((whole / "summary.json").read_text())
    assert summary["probes"] == 8 and summary["verified"] is None and (whole / "report.html").exists()


@pytest.mark.slow
def test_photographs_are_edited_by_a_pipeline(pipelines, tmp_path) -> None:
    """The world's editor edits only world images; a pipeline edits any photograph."""
    import numpy as np
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("astronaut", "coffee"):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photos / f"{name}.jpg")
    run_dir = tmp_path / "run"
    code = main(["audit", "--images", str(photos), "--pairings", "both", "--probes", "4", "--commit-every", "4",
                 "--weak-skill-questions", "0", *synthesis_args(pipelines), "-o", str(run_dir), "--json"])  # fmt: skip
    assert code == 0
    store = RunStore.open(run_dir)
    probes = [p for p in store.probes() if p.error is None and p.image is not None]
    assert sorted(p.synthesis or "" for p in probes) == ["caption", "caption", "edit", "edit"]
    for probe in probes:  # an edit keeps the photograph's size; the tiny generator draws 32 px
        assert store.load_picture(probe.image or "").image.size == ((64, 48) if probe.synthesis == "edit" else (32, 32))


def test_the_settings_are_saved_and_old_runs_still_load(pipelines) -> None:
    parser = build_parser()
    sd, ip2p = pipelines
    args = parser.parse_args(["audit", *synthesis_args(pipelines), "--synthesis-device", "cpu,cpu", "--guidance", "2",
                              "--cpu-offload"])  # fmt: skip
    config = config_from(AuditConfig, args)
    assert (config.generator, config.editor, config.synthesis_device) == (f"diffusers:{sd}", f"diffusers:{ip2p}",
                                                                          ("cpu", "cpu"))  # fmt: skip
    assert config.synthesis_options()[1] == SynthesisOptions("cpu", None, 1, 2.0, True)
    assert AuditConfig.from_dict(json.loads(json.dumps(dataclasses.asdict(config)))) == config
    old = {k: v for k, v in dataclasses.asdict(AuditConfig()).items() if k not in ("generator", "editor")}
    assert AuditConfig.from_dict({**old, "synthesizer": "world"}) == AuditConfig()
    train = config_from(GRPOSettings, parser.parse_args(["train-auditor", "-o", "x", "--editor", f"diffusers:{ip2p}",
                                                         "--synthesis-dtype", "bfloat16"]))  # fmt: skip
    assert train.editor == f"diffusers:{ip2p}" and train.synthesis_options()[0].dtype == "bfloat16"
    old = GRPOSettings(scale_rewards="group", crowding=0.0, crowding_of="form", explore=0.0, novelty_power=1.0)
    assert GRPOSettings.from_dict({"synthesizer": "world"}) == old


@pytest.fixture
def broken(tmp_path) -> tuple[Path, Path]:
    """A folder that holds no pipeline, and one whose pipeline class diffusers does not know."""
    empty, unknown = tmp_path / "empty", tmp_path / "unknown"
    empty.mkdir()
    unknown.mkdir()
    (unknown / "model_index.json").write_text(json.dumps({"_class_name": "TeleportPipeline"}))
    return empty, unknown


def test_bad_synthesizers_are_one_clear_line_before_anything_is_written(pipelines, broken, tmp_path,
                                                                       capsys) -> None:  # fmt: skip
    sd, ip2p = pipelines
    empty, unknown = broken
    cases = [
        (["--generator", "flux"], "unknown image synthesis backend 'flux' (have: world, diffusers)"),
        (["--generator", "world:big"], "--generator world:big: the world's renderer takes no name"),
        (["--editor", "diffusers:"], "--editor diffusers: name the pipeline"),
        (["--generator", "diffusers:/no/such/pipeline"], "--generator diffusers:/no/such/pipeline: no such folder"),
        (["--editor", f"diffusers:{empty}"], f"--editor diffusers:{empty}: no diffusers pipeline there"),
        (["--generator", f"diffusers:{unknown}"], "unknown pipeline class 'TeleportPipeline'"),
        (["--generator", f"diffusers:{ip2p}"],
         f"--generator diffusers:{ip2p}: StableDiffusionInstructPix2PixPipeline edits images (its call takes an "
         "image), it cannot generate from a caption"),
        (["--editor", f"diffusers:{sd}"],
         f"--editor diffusers:{sd}: StableDiffusionPipeline is text-to-image (its call takes no image), it cannot "
         "edit"),
        (["--synthesis-device", "cpu,cpu,cpu"], "--synthesis-device cpu,cpu,cpu: name one device for both, or two"),
        (["--synthesis-steps", "0"], "--synthesis-steps 0: must be at least 1"),
        (["--generator", f"diffusers:{sd}", "--synthesis-dtype", "float7"], "--synthesis-dtype 'float7': not a"),
        (["--generator", f"diffusers:{sd}", "--synthesis-device", "toaster"], "--synthesis-device 'toaster': not a"),
        (["--generator", f"diffusers:{sd}", "--cpu-offload"], "--cpu-offload moves a pipeline's models to a GPU"),
    ]  # fmt: skip
    out = tmp_path / "run"
    for args, message in cases:
        assert main(["audit", *args, "--image-count", "2", "--weak-skill-questions", "0", "-o", str(out)]) == 2, args
        error = capsys.readouterr().err  # after the loading bars of the models loaded in this process
        assert message in error.splitlines()[-1] and "Traceback" not in error, error
        assert not out.exists()


def test_without_diffusers_installed_the_extra_is_named(tmp_path) -> None:
    blocked = ("import sys; sys.modules['diffusers'] = None; from auditdm.cli import main; "
               "sys.exit(main(sys.argv[1:]))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", blocked, "audit", "--generator", "diffusers:org/flux", "-o",
                             str(tmp_path / "run")], capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == ("auditdm: error: --generator diffusers:org/flux needs diffusers: "
                                     "pip install auditdm[diffusers]")  # fmt: skip
    offline = run_cli("audit", "--editor", "diffusers:org/no-such-pipeline", "-o", str(tmp_path / "run"))
    assert offline.returncode == 2 and "--editor diffusers:org/no-such-pipeline: no diffusers pipeline there" in (
        offline.stderr)
    assert not (tmp_path / "run").exists()
