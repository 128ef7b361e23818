"""The command line, run for real: as a subprocess and in-process through main()."""

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator

import pytest

from auditdm.audit import AuditConfig
from auditdm.cli import build_parser, config_from, main
from auditdm.errors import UserError
from auditdm.grpo import GRPOSettings
from auditdm.rectify import RectifyConfig
from auditdm.store import DATABASE, RunStore

CAPTION = "a large red circle at the top left, a clock showing 3:30 at the center on a snowy day"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditdm.cli", *args], capture_output=True, text=True)


def test_render_edit_ask_round_trip(tmp_path) -> None:
    original, edited = tmp_path / "a.png", tmp_path / "b.png"
    assert run("world", "render", CAPTION, "-o", str(original)).returncode == 0
    assert run("world", "edit", str(original), "set the clock to 9:00", "-o", str(edited)).returncode == 0
    asked = run("world", "ask", str(edited), "what time does the clock show ?", "-v")
    assert asked.returncode == 0
    assert asked.stdout.strip() == "9:00" and "skill: clock" in asked.stderr


def test_world_ask_loads_the_model_with_the_model_flags(tmp_path) -> None:
    image = tmp_path / "a.png"
    assert run("world", "render", CAPTION, "-o", str(image)).returncode == 0
    ask = ["world", "ask", str(image), "what time does the clock show ?", "--model", "world:target"]
    full, short, refused = run(*ask), run(*ask, "--max-new-tokens", "1"), run(*ask, "--max-new-tokens", "0")
    assert full.returncode == short.returncode == 0, full.stderr + short.stderr
    assert 0 < len(short.stdout.strip()) < len(full.stdout.strip())  # a clock's time is several tokens
    assert full.stdout.startswith(short.stdout.strip())
    assert refused.returncode == 2 and "--max-new-tokens 0: must be at least 1" in refused.stderr


def test_oracle_says_why_there_is_no_answer(tmp_path, capsys) -> None:
    image = tmp_path / "a.png"
    assert main(["world", "render", CAPTION, "-o", str(image)]) == 0
    assert main(["world", "ask", str(image), "what color is the square"]) == 0
    assert "unanswerable: there is no square" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["world", "render", "a photo of a cat", "-o", "x.png"], "expected a noun (circle, square"),
        (["world", "ask", "missing.png", "is it day or night"], "missing.png: no such file"),
        (["world", "train", "--smoke", "--jobs", "0"], "--jobs 0: expected at least 1"),
        (["world", "render", CAPTION, "-o", "missing/x.png"], "missing/x.png: the folder missing does not exist"),
        (["world", "render", CAPTION, "-o", "."], ". is a folder: name a file to write"),
    ],
)
def test_bad_input_is_one_clear_line_without_traceback(args, message) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_python_m_auditdm_exits_with_the_commands_status() -> None:
    result = subprocess.run([sys.executable, "-m", "auditdm", "world", "ask", "missing.png", "is it day or night"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2 and "missing.png: no such file" in result.stderr


def test_a_file_that_is_no_image_is_named(tmp_path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    result = run("world", "edit", str(notes), "make it night", "-o", str(tmp_path / "out.png"))
    assert result.returncode == 2 and "notes.png: not a readable image" in result.stderr


def test_editing_a_photo_names_the_file(tmp_path) -> None:
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), "white").save(photo)
    result = run("world", "edit", str(photo), "make it night", "-o", str(tmp_path / "out.png"))
    assert result.returncode == 2 and "photo.png carries no world scene" in result.stderr


def test_a_damaged_or_foreign_scene_is_named(tmp_path) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("auditdm-scene", "{not json")
    Image.new("RGB", (96, 96), "white").save(tmp_path / "damaged.png", pnginfo=info)
    for args in (["ask", str(tmp_path / "damaged.png"), "is it day or night ?"],
                 ["edit", str(tmp_path / "damaged.png"), "make it night", "-o", str(tmp_path / "out.png")]):  # fmt: skip
        result = run("world", *args)
        assert result.returncode == 2 and "damaged.png carries a damaged world scene" in result.stderr
        assert "Traceback" not in result.stderr
    original = tmp_path / "a.png"
    assert run("world", "render", CAPTION, "-o", str(original)).returncode == 0
    with Image.open(original) as image:
        image.load()
        painted, text = image.copy(), dict(image.text)
    painted.putpixel((0, 0), (1, 2, 3))  # its scene no longer says what it shows
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    painted.save(tmp_path / "painted.png", pnginfo=info)
    result = run("world", "ask", str(tmp_path / "painted.png"), "is it day or night ?")
    assert result.returncode == 2 and "its pixels are not that scene's" in result.stderr


def test_debug_shows_the_traceback() -> None:
    result = run("--debug", "world", "render", "nonsense", "-o", "x.png")
    assert result.returncode != 0 and "Traceback" in result.stderr


def _commands(parser: argparse.ArgumentParser,
              path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:  # fmt: skip
    """Every command of the command line, by its words."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_every_command_has_help_that_explains_every_flag() -> None:
    parser = build_parser()
    commands = dict(_commands(parser))
    assert {("audit",), ("rectify",), ("train-auditor",), ("serve",), ("world", "eval")} <= set(commands)
    for path, command in commands.items():
        unexplained = [a.option_strings for a in command._actions if a.option_strings and not a.help]
        assert not unexplained, (path, unexplained)
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([*path, "--help"])
        assert exit_.value.code == 0


def test_version_prints() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("auditdm ") and result.stdout.strip() != "auditdm"


def test_batch_size_is_a_forward_pass_everywhere_and_the_old_meanings_have_flags_of_their_own() -> None:
    parser = build_parser()
    audit = config_from(AuditConfig, parser.parse_args(["audit", "--commit-every", "7", "--batch-size", "3",
                                                        "--max-new-tokens", "12", "--revision", "v2",
                                                        "--trust-remote-code"]))  # fmt: skip
    assert (audit.commit_every, audit.batch_size, audit.max_new_tokens) == (7, 3, 12)
    assert (audit.revision, audit.trust_remote_code) == ("v2", True)
    train = config_from(GRPOSettings, parser.parse_args(["train-auditor", "-o", "x", "--train-batch-size", "16",
                                                         "--group-size", "4", "--batch-size", "5"]))  # fmt: skip
    assert (train.train_batch_size, train.batch_size) == (16, 5)
    rectify = config_from(RectifyConfig, parser.parse_args(["rectify", "--train-batch-size", "8", "--batch-size", "2"]))
    assert (rectify.train_batch_size, rectify.batch_size) == (8, 2)
    world = parser.parse_args(["world", "eval", "--batch-size", "4", "--max-new-tokens", "6"])
    assert (world.batch_size, world.max_new_tokens, world.revision, world.trust_remote_code) == (4, 6, None, False)
    with pytest.raises(UserError, match="--batch-size 0: must be at least 1"):
        AuditConfig(batch_size=0)


def test_model_options_reach_only_the_backends_that_take_them() -> None:
    from auditdm.models import load_model

    # world: models take no concurrency, revision or remote code: those are left out, not an error.
    model = load_model("world:ref-a", batch_size=3, max_new_tokens=5, concurrency=2, revision="v1", dtype=None)
    assert (model.batch_size, model.max_new_tokens) == (3, 5)  # type: ignore[attr-defined]


def test_each_list_flag_takes_commas() -> None:
    parser = build_parser()
    audit = parser.parse_args(["audit", "--references", "world:ref-a,world:ref-b", "--pairings", "question,both",
                               "--synthesis", "caption,edit", "--synthesis-device", "cpu,cpu"])  # fmt: skip
    assert (audit.references, audit.pairings) == (["world:ref-a", "world:ref-b"], ["question", "both"])
    assert (audit.syntheses, audit.synthesis_device) == (["caption", "edit"], ["cpu", "cpu"])
    train = parser.parse_args(["train-auditor", "-o", "x", "--paths", "question,edit", "--references",
                               "world:a,world:b"])
    assert (train.tasks, train.references) == (["question", "edit"], ["world:a", "world:b"])
    rectify = parser.parse_args(["rectify", "--references", "world:a,world:b", "--pairings", "question,both",
                                 "--synthesis", "caption,edit"])  # fmt: skip
    assert (rectify.references, rectify.pairings, rectify.syntheses) == (["world:a", "world:b"], ["question", "both"],
                                                                         ["caption", "edit"])  # fmt: skip
    zoo = parser.parse_args(["world", "train", "--only", "target,ref-a", "--set", "steps=3,seed=5"])
    assert (zoo.only, zoo.set) == (["target", "ref-a"], ["steps=3", "seed=5"])
    evaluate = parser.parse_args(["world", "eval", "--models", "target,ref-a", "--model", "hf:a,world:ref-b"])
    assert (evaluate.models, evaluate.model) == (["target", "ref-a"], ["hf:a", "world:ref-b"])
    repeated = [(path, a.option_strings) for path, c in _commands(parser) for a in c._actions
                if a.option_strings and (isinstance(a, argparse._AppendAction) or a.nargs in ("+", "*"))]
    assert not repeated  # a list is one flag, comma-separated


def test_one_output_flag_everywhere() -> None:
    for path, command in _commands(build_parser()):
        writes = [a for a in command._actions if {"-o", "--out", "--output"} & set(a.option_strings)]
        assert all(a.option_strings == ["-o", "--out"] for a in writes), path


def test_limit_reads_at_most_n_images_of_a_folder(tmp_path) -> None:
    from PIL import Image

    from auditdm.sources import load_sources

    for name in ("a", "b", "c"):
        Image.new("RGB", (32, 32), "white").save(tmp_path / f"{name}.png")
    (tmp_path / "z.txt").write_text("not an image: past the limit, never read")
    config = config_from(AuditConfig, build_parser().parse_args(["audit", "--images", str(tmp_path), "--limit", "2"]))
    sources = load_sources(config.images, config.domain, config.image_count, config.seed, limit=config.limit)
    assert [s.name for s in sources] == ["a.png", "b.png"]


def _bar_positions(stderr: str, desc: str) -> list[int]:
    """The counts a tqdm bar named ``desc`` showed, in order."""
    return [int(m) for m in re.findall(rf"{re.escape(desc)}:\s+\d+%\|[^|]*\|\s*(\d+)/", stderr.replace("\r", "\n"))]


def test_bars_move_per_forward_pass_and_quiet_prints_none(tmp_path) -> None:
    args = ["audit", "--probes", "6", "--image-count", "3", "--weak-skill-questions", "1", "--commit-every", "6",
            "--batch-size", "1", "--references", "world:ref-a"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_MININTERVAL": "0"}  # every move of a bar is drawn
    loud = subprocess.run([sys.executable, "-m", "auditdm.cli", *args, "-o", str(tmp_path / "loud")],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert loud.returncode == 0, loud.stderr
    probes, weak = _bar_positions(loud.stderr, "probes"), _bar_positions(loud.stderr, "weak skills of world:target")
    assert len(set(probes) - {0, 6}) >= 1 and probes[-1] == 6  # it moved inside the one committed batch
    assert len(set(weak)) > 2 and weak[-1] == max(weak)
    quiet = subprocess.run([sys.executable, "-m", "auditdm.cli", *args, "-o", str(tmp_path / "quiet"), "--quiet"],
                           capture_output=True, text=True, env=env)  # fmt: skip
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert "report:" in quiet.stdout and quiet.stdout.splitlines()[0] == loud.stdout.splitlines()[0]


def test_an_old_audit_whose_batch_size_was_its_commit_size_resumes(tmp_path) -> None:
    """Runs from before --commit-every saved it as batch_size: --resume reads it as that."""
    run_dir = tmp_path / "old"
    assert main(["audit", "--probes", "4", "--image-count", "4", "--weak-skill-questions", "0", "--commit-every", "4",
                 "--references", "world:ref-a", "-o", str(run_dir), "--quiet"]) == 0  # fmt: skip
    db = sqlite3.connect(run_dir / DATABASE)
    config = json.loads(db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0])
    new = ("commit_every", "batch_size", "max_new_tokens", "revision", "trust_remote_code", "limit")
    old = {**{k: v for k, v in config.items() if k not in new}, "batch_size": 4, "probes": 8}  # stopped after one batch
    db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(old),))
    db.commit()
    db.close()
    assert main(["audit", "--resume", str(run_dir), "--quiet"]) == 0
    store = RunStore.open(run_dir)
    assert len(list(store.probes())) == 8 and store.done_batches() == {0, 1}
    assert AuditConfig.from_dict(store.meta()["config"]).commit_every == 4


def test_old_training_and_rectification_settings_load() -> None:
    old = GRPOSettings(train_batch_size=16, scale_rewards="group", crowding=0.0, crowding_of="form", explore=0.0,
                       novelty_power=1.0)  # as it was trained
    assert GRPOSettings.from_dict({"batch_size": 16}) == old
    assert RectifyConfig.from_dict({"batch_size": 4}) == RectifyConfig(train_batch_size=4)


def test_flag_defaults_are_the_config_defaults() -> None:
    """Defaults live once, in the config dataclasses: parsing no flags gives their configs."""
    parser = build_parser()
    assert config_from(AuditConfig, parser.parse_args(["audit"])) == AuditConfig()
    assert config_from(GRPOSettings, parser.parse_args(["train-auditor", "-o", "x"])) == GRPOSettings()
    assert config_from(RectifyConfig, parser.parse_args(["rectify"])) == RectifyConfig()
    compare = parser.parse_args(["compare", "world:a", "world:b"])
    assert config_from(AuditConfig, compare) == AuditConfig()
