"""Files written whole or not at all."""

from __future__ import annotations

import pytest

from auditdm.errors import UserError
from auditdm.files import replacing, write_text


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path) -> None:
    path = tmp_path / "summary.json"
    write_text(path, "old")
    with pytest.raises(RuntimeError):
        with replacing(path) as partial:
            partial.write_text("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    write_text(path, "new")
    assert path.read_text() == "new"


def test_a_folder_is_replaced_whole(tmp_path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "stale.bin").write_text("x")
    with replacing(folder, folder=True) as partial:
        partial.mkdir()
        (partial / "model.safetensors").write_text("y")
    assert [p.name for p in folder.iterdir()] == ["model.safetensors"]


def test_only_a_folder_replaces_a_folder_and_the_parent_must_exist(tmp_path) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    with pytest.raises(UserError, match="documents is a folder: name a file to write"):
        write_text(folder, "report")
    with pytest.raises(UserError, match="the folder .*missing does not exist"):
        write_text(tmp_path / "missing" / "report.html", "report")
    assert (folder / "mine.txt").read_text() == "keep" and not (tmp_path / "missing").exists()


def test_what_a_killed_writer_left_is_removed_by_the_next(tmp_path) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".report.html.{int(dead.stdout)}.partial"
    stale.write_text("half a page")
    mine = tmp_path / f".report.html.{__import__('os').getpid()}.other.partial"  # not a writer's name: kept
    mine.write_text("x")
    write_text(tmp_path / "report.html", "page")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "report.html"])
