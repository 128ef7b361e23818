"""A user's question-answer data, as rectification mixes it in: every format read alike."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from auditdm.errors import UserError
from auditdm.export import messages
from auditdm.qa_data import read_qa_data
from auditdm.rectify import RectifyConfig, _original_data

COLORS = ("red", "green", "blue")


def png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buffer, format="PNG")
    return buffer.getvalue()


def check(examples) -> None:
    assert [(e.question, e.answer) for e in examples] == [("what color is it ?", c) for c in COLORS]
    assert [e.image.getpixel((0, 0)) for e in examples] == [(255, 0, 0), (0, 128, 0), (0, 0, 255)]


def test_a_datasets_folder_of_chat_rows_as_auditdm_exports_it(tmp_path) -> None:
    from datasets import Dataset

    rows = [{"images": [Image.new("RGB", (16, 16), c)], "messages": messages("what color is it ?", c)} for c in COLORS]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "data"))
    check(read_qa_data(tmp_path / "data"))


def test_parquet_of_vqa_rows(tmp_path) -> None:
    from datasets import Dataset

    rows = [{"image": {"bytes": png(c), "path": None}, "question": "what color is it ?", "answer": c} for c in COLORS]
    Dataset.from_list(rows).to_parquet(str(tmp_path / "data.parquet"))
    check(read_qa_data(tmp_path / "data.parquet"))


def test_llava_json_with_image_paths(tmp_path) -> None:
    (tmp_path / "images").mkdir()
    rows = []
    for c in COLORS:
        (tmp_path / "images" / f"{c}.png").write_bytes(png(c))
        rows.append({"image": f"images/{c}.png", "conversations": [
            {"from": "human", "value": "<image>\nwhat color is it ?"}, {"from": "gpt", "value": c}]})  # fmt: skip
    (tmp_path / "llava.json").write_text(json.dumps(rows))
    check(read_qa_data(tmp_path / "llava.json"))
    (tmp_path / "llava.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    check(read_qa_data(tmp_path / "llava.jsonl"))


def test_the_mix_draws_from_the_users_data_reproducibly(tmp_path) -> None:
    rows = [{"image": f"{c}.png", "question": "what color is it ?", "answer": c} for c in COLORS]
    for c in COLORS:
        (tmp_path / f"{c}.png").write_bytes(png(c))
    (tmp_path / "vqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = RectifyConfig(target="hf:/nowhere", mix_data=str(tmp_path / "vqa.jsonl"))
    two, seven = _original_data(config, 2), _original_data(config, 7)
    assert len({e.answer for e in two}) == 2  # no repeat while the data lasts
    assert sorted(e.answer for e in seven) == sorted([*COLORS, *COLORS, COLORS[0]])  # each about as often
    assert [e.answer for e in seven] == [e.answer for e in _original_data(config, 7)]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "missing.json: no such file or folder"),
        ("data.txt", "hello", "expected a datasets folder, a .parquet file or LLaVA-style .json/.jsonl"),
        ("bad.json", "{not json", "bad.json: not valid JSON"),
        ("noimage.jsonl", json.dumps({"question": "q", "answer": "a"}), "row 0 has no image"),
        ("gone.jsonl", json.dumps({"image": "gone.png", "question": "q", "answer": "a"}), "gone.png: no such file"),
        ("empty.json", "[]", "no row with an image, a question and an answer"),
    ],
)
def test_bad_data_is_one_line_naming_it(tmp_path, name, content, message) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(UserError, match=message):
        read_qa_data(tmp_path / name)
