"""Question-answer datasets about images, as users have them: a Hugging Face datasets folder,
Parquet, or LLaVA-style JSON (or JSONL); read as ``Labelled`` examples, or (``read_questions``)
as the images an audit probes, each with its original question and, when the data has
one, its answer.

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

import json
import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditdm.errors import UserError
from auditdm.records import Labelled, Picture, SourceImage
from auditdm.sources import decode_image, open_image, to_rgb

LOG = logging.getLogger(__name__)

SKILL = "user data"  # what a user's example is labelled as, where skills are counted


def read_qa_data(path: Path) -> list[Labelled]:
    """Every (image, question, answer) of the dataset at ``path``; one line naming the path
    and what is wrong with it otherwise."""
    _, rows = _table(path)
    examples = [example for i, row in enumerate(rows) for example in _examples(row, path, i)]
    if not examples:
        raise UserError(f"{path}: no row with an image, a question and an answer")
    return examples


@dataclass(frozen=True)
class Columns:
    """The columns that hold a dataset's images, questions and answers; None: found among
    the usual names (``IMAGE_COLUMNS``, ...)."""

    image: str | None = None
    question: str | None = None
    answer: str | None = None


IMAGE_COLUMNS = ("image", "images", "img", "image_path", "file_name", "filename")
QUESTION_COLUMNS = ("question", "query", "prompt")
ANSWER_COLUMNS = ("multiple_choice_answer", "answer", "answers")  # VQAv2's single answer before its ten


def read_questions(path: Path, columns: Columns = Columns(), limit: int | None = None) -> list[SourceImage]:
    """The images of a VQA-style dataset (a datasets folder, Parquet, JSON or JSONL), each
    with its question and, when the data has an answer column, its answer; the first
    ``limit`` of them (the rows after are not decoded).

    A row whose image is missing or does not decode is skipped, and the skipped rows are
    counted in one warning: one damaged image should not sink a large dataset. A dataset
    without the columns, without rows, or with no image that decodes is one line naming it.
    """
    names, rows = _table(path)
    if not rows:
        raise UserError(f"{path}: the dataset has no rows")
    image = _required(path, names, columns.image, IMAGE_COLUMNS, "image", "--image-column")
    question = _required(path, names, columns.question, QUESTION_COLUMNS, "question", "--question-column")
    answer = _column(path, names, columns.answer, ANSWER_COLUMNS, "--answer-column")
    base = path if path.is_dir() else path.parent
    sources: list[SourceImage] = []
    skipped: list[str] = []  # why each skipped row was
    for index, row in enumerate(rows):
        if limit is not None and len(sources) == limit:
            break
        name = f"row {index}"
        try:
            picture = _image(row.get(image), base, name)
        except UserError as error:
            skipped.append(str(error))
            continue
        if picture is None:
            skipped.append(f"{name}: no image")
            continue
        sources.append(SourceImage(name, Picture(picture), _text(row.get(question)) or None,
                                   _answer(row.get(answer)) if answer else None))  # fmt: skip
    if not sources:
        raise UserError(f"{path}: none of its {len(rows)} images decodes ({skipped[0]})")
    if skipped:
        LOG.warning("%s: skipped %d of %d rows whose image is missing or does not decode (%s)", path, len(skipped),
                    len(rows), skipped[0])  # fmt: skip
    return sources


def _column(path: Path, names: Sequence[str], given: str | None, usual: Sequence[str], flag: str) -> str | None:
    """The column ``given`` (one line naming the data's columns when it has no such one),
    else the first of the ``usual`` names the data has, else None."""
    if given is not None and given not in names:
        raise UserError(f"{path}: no column {given!r} ({flag}); its columns are {', '.join(names) or 'none'}")
    return given or next((name for name in usual if name in names), None)


def _required(path: Path, names: Sequence[str], given: str | None, usual: Sequence[str], what: str, flag: str) -> str:
    """As ``_column``, and one line naming the data's columns when none is found."""
    found = _column(path, names, given, usual, flag)
    if found is None:
        raise UserError(f"{path}: no {what} column (looked for {', '.join(usual)}; its columns are "
                        f"{', '.join(names) or 'none'}): name it with {flag}")  # fmt: skip
    return found


def _answer(value: Any) -> str | None:
    """A dataset's answer; of several (VQAv2's ten annotators, as strings or as
    ``{"answer": ...}``), the most common, as VQAv2's own ``multiple_choice_answer`` is."""
    if isinstance(value, list):
        texts = [_text(v.get("answer") if isinstance(v, Mapping) else v) for v in value]
        return Counter(t for t in texts if t).most_common(1)[0][0] if any(texts) else None
    return _text(value) or None


def _table(path: Path) -> tuple[list[str], Collection[Mapping[str, Any]]]:
    """The column names and the rows of the data at ``path``; one line naming it when it
    is missing or of no format read here."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir() or path.suffix == ".parquet":
        dataset = _dataset(path)
        return list(dataset.column_names), dataset
    if path.suffix in (".json", ".jsonl"):
        rows = _json_rows(path)
        return list(dict.fromkeys(key for row in rows for key in row)), rows
    raise UserError(f"{path}: expected a datasets folder, a .parquet file or LLaVA-style .json/.jsonl")


def _dataset(path: Path) -> Any:
    """A datasets folder or a Parquet file, its image columns left undecoded: a damaged image
    is then one row's failure, not an error out of the middle of the iteration."""
    try:
        from datasets import Dataset, DatasetDict, Image, load_from_disk
    except ImportError:
        raise UserError(f"{path}: reading it needs datasets: pip install 'auditdm[train]'") from None
    if path.is_dir():
        try:
            dataset = load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as error:
            raise UserError(f"{path}: not a Hugging Face datasets folder ({error})") from None
        if isinstance(dataset, DatasetDict):
            raise UserError(f"{path}: a dataset of splits ({', '.join(dataset)}): give one split's folder, "
                            f"such as {path / next(iter(dataset))}")  # fmt: skip
    else:
        import pyarrow
        import pyarrow.parquet

        try:  # datasets refuses an empty file with a message about splits
            rows = pyarrow.parquet.ParquetFile(path).metadata.num_rows
        except (pyarrow.ArrowException, OSError) as error:
            raise UserError(f"{path}: not a readable Parquet file ({error})") from None
        if not rows:
            raise UserError(f"{path}: the dataset has no rows")
        dataset = Dataset.from_parquet(str(path))
    for name, feature in dataset.features.items():
        if isinstance(feature, Image):
            dataset = dataset.cast_column(name, Image(decode=False))
    return dataset


def _json_rows(path: Path) -> list[Mapping[str, Any]]:
    text = path.read_text()
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            rows = data if isinstance(data, list) else [data]
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    if not all(isinstance(row, Mapping) for row in rows):
        raise UserError(f"{path}: expected one JSON object per row")
    return rows


def _image(value: Any, base: Path, name: str) -> Any:
    """A PIL image from a datasets image, bytes, or a path relative to the dataset's file;
    None for no image; one line naming ``name`` (the row) for one that does not decode."""
    from PIL import Image

    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, Image.Image):
        return to_rgb(value)
    if isinstance(value, Mapping):  # datasets' undecoded image: {"bytes": ..., "path": ...}
        value = value.get("bytes") or value.get("path")
    if isinstance(value, bytes):
        return to_rgb(decode_image(value, name))
    if isinstance(value, str):
        return to_rgb(open_image(base / value))
    return None


def _text(content: Any) -> str:
    if isinstance(content, list):  # typed content: [{"type": "image"}, {"type": "text", "text": ...}]
        content = " ".join(str(c.get("text") or "") for c in content if c.get("type") == "text")
    return str(content or "").replace("<image>", "").strip()


def _examples(row: Mapping[str, Any], path: Path, index: int) -> list[Labelled]:
    image = _image(row.get("images", row.get("image")), path if path.is_dir() else path.parent, f"{path}: row {index}")
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
