"""Export a run. An audit: every probe, one row each, as JSONL (the store's records), or as
Parquet or a Hugging Face dataset with the fixed columns of ``export_schema`` (so any runs'
exports load as one dataset); or its flagged probes as chat training data. A rectification:
its training pairs, as chat training data.

Chat training data has the columns TRL's SFTTrainer and its VLM collator read: ``images``
(embedded, a list of one) and ``messages`` (the question about the image, then the answer:
an audit's reference consensus, a rectification's pseudo-label), beside what each row came from.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditdm.errors import UserError
from auditdm.files import check_output, replacing, write_text
from auditdm.records import distinct_probes
from auditdm.store import RunStore

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = {
    "jsonl": "every probe of an audit, one JSON object a line, as the run store holds it",
    "parquet": "every probe of an audit, one row each: its image, question, every answer with its model and role, "
    "the consensus, the score, the failure category and the oracle check, and the run's target and references; "
    "the same columns for every run, so several runs' files read as one table",
    "hf-dataset": "the same rows as a Hugging Face dataset folder (datasets.load_from_disk)",
    "sft": "chat training data for TRL's SFTTrainer, a dataset folder of images and messages: an audit's flagged "
    "probes, answered with the references' consensus; a rectification's training pairs",
}
DATASETS = ("hf-dataset", "sft")  # the formats written as a dataset folder
_NEEDS = {"parquet": ("pyarrow", "export"), "hf-dataset": ("datasets", "train"), "sft": ("datasets", "train")}


def export_run(run_dir: Path, fmt: str, output: Path | None = None) -> Path:
    """Write the run in ``run_dir`` as ``fmt`` to ``output`` (default: inside the run), making
    its folder if need be; returns the path written."""
    from auditdm.rectify import CONFIG

    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt in _NEEDS and importlib.util.find_spec(_NEEDS[fmt][0]) is None:
        raise UserError(f"--format {fmt} needs {_NEEDS[fmt][0]}: pip install 'auditdm[{_NEEDS[fmt][1]}]'")
    if output is not None:  # before the rows are read: a bad path is one line, at once
        _check_output(output, fmt in DATASETS)
    if (run_dir / CONFIG).is_file():
        if fmt not in DATASETS:
            raise UserError(f"{run_dir} is a rectification run: export its training pairs with --format sft")
        from auditdm.export_schema import PAIRS

        return _write(_rectification_rows(run_dir), PAIRS, output or run_dir / "pairs.dataset")
    with contextlib.closing(RunStore.open(run_dir, write=False)) as store:
        if fmt == "jsonl":
            output = output or run_dir / "probes.jsonl"
            output.parent.mkdir(parents=True, exist_ok=True)
            write_text(output, "".join(json.dumps(probe.to_dict()) + "\n" for probe in store.probes()))
            return output
        from auditdm.export_schema import PROBES, SFT

        if fmt == "sft":
            return _write(_sft_rows(store), SFT, output or run_dir / "sft.dataset")
        if fmt == "parquet":
            return _write(_probe_rows(store), PROBES, output or run_dir / "probes.parquet", parquet=True)
        return _write(_probe_rows(store), PROBES, output or run_dir / "probes.dataset")


def messages(question: str, answer: str) -> list[dict[str, Any]]:
    """A question about one image and its answer, as chat messages with typed content."""
    return [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": question}]},
            {"role": "assistant", "content": [{"type": "text", "text": answer}]}]  # fmt: skip


def _probe_rows(store: RunStore) -> list[dict[str, Any]]:
    """Every probe of the run with its image, answers, category and oracle check."""
    run, roles, categories = _run_columns(store), store.roles(), _categories(store)
    return [{**run, "probe": p.idx, "source": p.source, "auditor": p.auditor, "kind": p.kind, "pairing": p.pairing,
             "synthesis": p.synthesis, "image": _image(store, p.image) if p.image else None, "question": p.question,
             "instruction": p.instruction, "error": p.error,
             "answers": [{"model": m, "role": roles[m], "answer": a} for m, a in p.answers.items()],
             "consensus": p.consensus, "score": p.score, "category": categories.get(p.idx),
             "oracle": {"status": p.oracle_status, "truth": p.truth, "skill": p.skill} if p.oracle_status else None}
            for p in store.probes()]  # fmt: skip


def _sft_rows(store: RunStore) -> list[dict[str, Any]]:
    """The flagged probes (less repeats: a pair trained on twice teaches nothing new), each
    answered with the references' consensus."""
    run, categories = _run_columns(store), _categories(store)
    return [{"images": [_image(store, p.image)], "messages": messages(p.question, p.consensus), **run,
             "probe": p.idx, "kind": p.kind, "category": categories.get(p.idx)}
            for p in distinct_probes(list(store.probes()))
            if p.score and p.image and p.question and p.consensus]  # fmt: skip


def _rectification_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Every pseudo-labelled pair a rectification generated, with its iteration and origin."""
    from auditdm.rectify import labelled_pairs

    rows = []
    for image, pair in labelled_pairs(run_dir):
        if not image.is_file():
            raise UserError(f"{run_dir}: the image of a training pair is missing ({image} was removed or moved)")
        iteration, run = pair.run.split("/")
        rows.append({"images": [{"bytes": image.read_bytes(), "path": image.name}],
                     "messages": messages(pair.question, pair.answer),
                     "iteration": int(iteration.removeprefix("iteration-")), "control": run.startswith("control"),
                     "flagged": pair.flagged, "category": pair.category, "label_right": pair.right,
                     "skill": pair.skill})  # fmt: skip
    return rows


def _run_columns(store: RunStore) -> dict[str, Any]:
    """What every row of a run carries, so that rows from several runs stay attributable."""
    config = store.meta()["config"]
    return {"run": store.folder.resolve().name, "target": config["target"], "references": config["references"]}


def _categories(store: RunStore) -> dict[int, str]:
    """The failure category of each flagged probe in one, by probe index."""
    return {probe: category.name for category in store.categories() for probe in category.members}


def _image(store: RunStore, address: str) -> dict[str, Any]:
    """A stored image as the ``datasets`` Image struct: its PNG as stored, named by its address."""
    return {"bytes": store.stored_image(address).read_bytes(), "path": f"{address}.png"}


def _check_output(output: Path, folder: bool) -> None:
    """A folder that does not exist yet is made at writing; one that is a file fails now."""
    existing = next(parent for parent in output.parents if parent.exists())
    if not existing.is_dir():
        raise UserError(f"{output}: {existing} is a file, not a folder")
    if output.parent.is_dir():
        check_output(output, folder)
    if folder and output.is_dir() and not (output / "dataset_info.json").is_file():
        raise UserError(f"{output} is a folder but no dataset: name a new folder (an exported dataset is replaced)")


def _write(rows: list[dict[str, Any]], schema: pa.Schema, output: Path, parquet: bool = False) -> Path:
    """Write rows with the schema as a Parquet file, or a dataset folder, aside and renamed into place."""
    columns = {name: [row[name] for row in rows] for name in schema.names}  # by column: no rows, still columns
    output.parent.mkdir(parents=True, exist_ok=True)
    if parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with replacing(output) as partial:
            pq.write_table(pa.Table.from_pydict(columns, schema=schema), partial)
        return output
    from datasets import Dataset, Features

    dataset = Dataset.from_dict(columns, features=Features.from_arrow_schema(schema))
    with replacing(output, folder=True) as partial:
        # No rows would be saved as no shard at all, which then does not concatenate: save one.
        dataset.save_to_disk(str(partial), num_shards=None if rows else 1)
    return output
