"""The command line, run for real: as a subprocess and in-process through main()."""

import subprocess
import sys

import pytest

from auditdm.cli import build_parser, main

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


def test_every_subcommand_has_help() -> None:
    parser = build_parser()
    for path in (["world"], ["world", "render"], ["world", "edit"], ["world", "ask"], ["world", "train"],
                 ["world", "eval"], ["audit"], ["compare"], ["findings"], ["report"], ["export"]):  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([*path, "--help"])
        assert exit_.value.code == 0


def test_flag_defaults_are_the_config_defaults() -> None:
    """Defaults live once, in the config dataclasses: parsing no flags gives their configs."""
    from auditdm.audit import AuditConfig
    from auditdm.cli import config_from
    from auditdm.grpo import GRPOSettings

    parser = build_parser()
    assert config_from(AuditConfig, parser.parse_args(["audit"])) == AuditConfig()
    assert config_from(GRPOSettings, parser.parse_args(["train-auditor", "-o", "x"])) == GRPOSettings()
    compare = parser.parse_args(["compare", "world:a", "world:b"])
    assert config_from(AuditConfig, compare) == AuditConfig()
