"""Files written whole or not at all."""

from __future__ import annotations

import pytest

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
    with replacing(folder) as partial:
        partial.mkdir()
        (partial / "model.safetensors").write_text("y")
    assert [p.name for p in folder.iterdir()] == ["model.safetensors"]
