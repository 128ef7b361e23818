"""Question-answer datasets about images, as users have them: a Hugging Face datasets folder,
Parquet, or LLaVA-style JSON (or JSONL); read as ``Labelled`` examples.

Rectification mixes such a dataset (the target's original training data, or any data it
should not forget) into its fine-tuning; auditdm's own ``export --format sft`` reads
back the same way. Accepted rows:
- chat rows: ``images`` (a list, or ``image``) and ``messages`` (a user turn, then the
  assistant's answer), as TRL's VLM fine-tuning and auditdm's export write them;
- VQA rows: ``image`` and ``question`` and ``answer``;
- LLaVA rows (JSON): ``image`` (a path relative to the file) and ``conversations`` of
  ``{"from": "human" | "gpt", "value": ...}`` turns, ``<image>`` marking the picture.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from auditdm.errors import UserError
from auditdm.records import Labelled
from auditdm.sources import open_image, to_rgb

SKILL = "user data"  # what a user's example is labelled as, where skills are counted


def read_qa_data(path: Path) -> list[Labelled]:
    """Every (image, question, answer) of the dataset at ``path``; one line naming the path
    and what is wrong with it otherwise."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    rows: Iterator[Mapping[str, Any]]
    if path.is_dir():
        rows = _dataset_rows(path)
    elif path.suffix == ".parquet":
        rows = _parquet_rows(path)
    elif path.suffix in (".json", ".jsonl"):
        rows = _json_rows(path)
    else:
        raise UserError(f"{path}: expected a datasets folder, a .parquet file or LLaVA-style .json/.jsonl")
    examples = [example for i, row in enumerate(rows) for example in _examples(row, path, i)]
    if not examples:
        raise UserError(f"{path}: no row with an image, a question and an answer")
    return examples


def _dataset_rows(path: Path) -> Iterator[Mapping[str, Any]]:
    from datasets import load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as error:
        raise UserError(f"{path}: not a Hugging Face datasets folder ({error})") from None
    yield from dataset  # type: ignore[misc]


def _parquet_rows(path: Path) -> Iterator[Mapping[str, Any]]:
    from datasets import Dataset

    yield from Dataset.from_parquet(str(path))  # type: ignore[misc]


def _json_rows(path: Path) -> Iterator[Mapping[str, Any]]:
    text = path.read_text()
    try:
        if path.suffix == ".jsonl":
            yield from (json.loads(line) for line in text.splitlines() if line.strip())
        else:
            data = json.loads(text)
            yield from (data if isinstance(data, list) else [data])
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None


def _image(value: Any, base: Path) -> Any:
    """A PIL image from a datasets image, bytes, or a path relative to the dataset's file."""
    from PIL import Image

    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, Image.Image):
        return to_rgb(value)
    if isinstance(value, Mapping):  # datasets' undecoded image: {"bytes": ..., "path": ...}
        value = value.get("bytes") or value.get("path")
    if isinstance(value, bytes):
        with Image.open(io.BytesIO(value)) as image:
            return to_rgb(image)
    if isinstance(value, str):
        return to_rgb(open_image(base / value))
    return None


def _text(content: Any) -> str:
    if isinstance(content, list):  # typed content: [{"type": "image"}, {"type": "text", "text": ...}]
        content = " ".join(str(c.get("text") or "") for c in content if c.get("type") == "text")
    return str(content or "").replace("<image>", "").strip()


def _examples(row: Mapping[str, Any], path: Path, index: int) -> list[Labelled]:
    image = _image(row.get("images", row.get("image")), path if path.is_dir() else path.parent)
    if image is None:
        raise UserError(f"{path}: row {index} has no image (expected an images, image column or path)")
    if "question" in row and "answer" in row:
        return [Labelled(image, _text(row["question"]), _text(row["answer"]), SKILL)]
    turns = row.get("messages") or row.get("conversations") or []
    roles = [(turn.get("role") or turn.get("from"), _text(turn.get("content", turn.get("value")))) for turn in turns]
    asked = {"user", "human"}
    return [Labelled(image, question, answer, SKILL)
            for (role, question), (reply, answer) in zip(roles, roles[1:])
            if role in asked and reply not in asked and question and answer]  # fmt: skip
