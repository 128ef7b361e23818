"""The columns of an exported run, declared once: any runs' exports load as one dataset.

Left to inference, a column's type would follow its values: a run without failure categories
would give ``category`` the null type where another gives strings, and the two would not
concatenate. Images are the struct of the ``datasets`` Image feature (PNG bytes and a file
name); the schema's ``huggingface`` metadata marks them, so ``datasets`` decodes them from
Parquet too. Imported only to export (it needs pyarrow).
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
# Chat turns with typed content, as TRL's VLM collator reads them: {"type": "image"} marks the picture.
_CONTENT = pa.list_(pa.struct([("type", pa.string()), ("text", pa.string())]))
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", _CONTENT)]))
_IMAGE_LIST = {"_type": "List", "feature": {"_type": "Image"}}


def _schema(columns: list[tuple[str, pa.DataType]], images: dict[str, Any]) -> pa.Schema:
    """A schema whose metadata gives ``datasets`` the features of its image columns (the
    other columns' features follow from their Arrow types)."""
    return pa.schema(columns, metadata={"huggingface": json.dumps({"info": {"features": images}})})


_RUN = [
    ("run", pa.string()),  # the run directory's name
    ("target", pa.string()),
    ("references", pa.list_(pa.string())),
]

PROBES = _schema([
    *_RUN,
    ("probe", pa.int64()),  # its index in the run
    ("source", pa.int64()),  # the index of the source image it was made from
    ("auditor", pa.string()),
    ("kind", pa.string()),  # question, image+caption, image+edit, both+caption, both+edit
    ("pairing", pa.string()),  # question, image, both
    ("synthesis", pa.string()),  # caption, edit; null when the image is the source image
    ("image", IMAGE),  # the probed image; null when the auditor's output made none
    ("question", pa.string()),
    ("instruction", pa.string()),  # the caption or edit command the auditor wrote
    ("error", pa.string()),  # why the auditor's output is no valid probe (then it has no answers)
    ("answers", pa.list_(pa.struct([("model", pa.string()), ("role", pa.string()), ("answer", pa.string())]))),
    ("consensus", pa.string()),  # the references' consensus; null: none
    ("score", pa.int64()),  # s: 1 iff the target disagrees with the consensus (the probe is flagged)
    ("category", pa.string()),  # the failure category of a flagged probe
    ("oracle", pa.struct([("status", pa.string()), ("truth", pa.string()), ("skill", pa.string())])),  # null: unchecked
], {"image": {"_type": "Image"}})  # fmt: skip
"""Every probe of an audit, one row each (``--format parquet`` and ``hf-dataset``)."""

SFT = _schema([
    ("images", pa.list_(IMAGE)),  # one: the probed image
    ("messages", MESSAGES),  # the question, then the references' consensus
    *_RUN,
    ("probe", pa.int64()),
    ("kind", pa.string()),
    ("category", pa.string()),
], {"images": _IMAGE_LIST})  # fmt: skip
"""An audit's flagged probes as chat training data (``--format sft``)."""

PAIRS = _schema([
    ("images", pa.list_(IMAGE)),
    ("messages", MESSAGES),  # the question, then the pseudo-label
    ("iteration", pa.int64()),
    ("control", pa.bool_()),  # written by the control auditor
    ("flagged", pa.bool_()),  # the target disagreed with the label
    ("category", pa.string()),
    ("label_right", pa.bool_()),  # the oracle's check of the label; null off the embedded domains
    ("skill", pa.string()),
], {"images": _IMAGE_LIST})  # fmt: skip
"""A rectification's training pairs as chat training data."""
