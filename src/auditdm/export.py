"""Export a run: an audit's probes, one row each with its answers, to JSONL or Parquet; an
audit's valid probes or a rectification's training pairs as one Hugging Face dataset.

The dataset has the columns TRL's VLM fine-tuning reads: ``images`` (embedded, a list of
one) and ``messages`` (the question about the image, then the answer: a rectification's
pseudo-label, an audit's reference consensus), beside what each row came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auditdm.errors import UserError
from auditdm.files import check_output, replacing, write_text
from auditdm.store import RunStore

FORMATS = ("jsonl", "parquet", "hf-dataset")


def export_run(run_dir: Path, fmt: str, output: Path | None = None) -> Path:
    """Write the run in ``run_dir`` to ``output`` (default: inside the run); returns the path."""
    from auditdm.rectify import CONFIG

    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    suffix = {"hf-dataset": "dataset"}.get(fmt, fmt)
    if output is not None:  # before the rows are read: a bad path is one line, at once
        _check_output(output, fmt)
    if (run_dir / CONFIG).is_file():
        if fmt != "hf-dataset":
            raise UserError(f"{run_dir} is a rectification run: export its training pairs with --format hf-dataset")
        return _save_dataset(_rectification_rows(run_dir), output or run_dir / f"pairs.{suffix}")
    store = RunStore.open(run_dir, write=False)
    output = output or run_dir / f"probes.{suffix}"
    if fmt == "hf-dataset":
        return _save_dataset(_audit_rows(store), output)
    rows = [probe.to_dict() for probe in store.probes()]
    store.close()
    if fmt == "jsonl":
        write_text(output, "".join(json.dumps(row) + "\n" for row in rows))
    else:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError("Parquet export needs pyarrow: pip install 'auditdm[export]'") from None
        # Answers by model become a list of {model, answer} structs: columns stay fixed across runs.
        table = pa.Table.from_pylist([{**r, "answers": [{"model": m, "answer": a} for m, a in r["answers"].items()]}
                                      for r in rows])  # fmt: skip
        with replacing(output) as partial:
            pq.write_table(table, partial)
    return output


def messages(question: str, answer: str) -> list[dict[str, Any]]:
    """A question about one image and its answer, as chat messages with typed content."""
    return [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": question}]},
            {"role": "assistant", "content": [{"type": "text", "text": answer}]}]  # fmt: skip


def _audit_rows(store: RunStore) -> list[dict[str, Any]]:
    """Every probe with a consensus: the probed image, the question, the consensus answer."""
    rows = []
    for p in store.probes():
        if p.error is None and p.image is not None and p.question and p.consensus is not None:
            rows.append({"images": [store.load_picture(p.image).image], "messages": messages(p.question, p.consensus),
                         "probe": p.idx, "kind": p.kind, "target_answer": p.target_answer, "flagged": bool(p.score),
                         "oracle_truth": p.truth})  # fmt: skip
    return rows


def _rectification_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Every pseudo-labelled pair a rectification generated, with its iteration and origin."""
    from auditdm.rectify import labelled_pairs
    from auditdm.sources import read_picture

    return [{"images": [read_picture(image).image], "messages": messages(pair.question, pair.answer),
             "iteration": int(pair.run.split("/")[0].removeprefix("iteration-")),
             "control": pair.run.split("/")[1].startswith("control"), "flagged": pair.flagged,
             "category": pair.category, "label_right": pair.right, "skill": pair.skill}
            for image, pair in labelled_pairs(run_dir)]  # fmt: skip


def _check_output(output: Path, fmt: str) -> None:
    check_output(output, folder=fmt == "hf-dataset")
    if output.is_dir() and not (output / "dataset_info.json").is_file():
        raise UserError(f"{output} is a folder but no dataset: name a new folder (an exported dataset is replaced)")


def _save_dataset(rows: list[dict[str, Any]], output: Path) -> Path:
    """Save rows as a Hugging Face dataset folder, written aside and renamed into place."""
    try:
        from datasets import Dataset
    except ImportError:
        raise UserError("dataset export needs datasets: pip install 'auditdm[train]'") from None
    if not rows:
        raise UserError("nothing to export: the run has no probe with a consensus")
    with replacing(output, folder=True) as partial:
        Dataset.from_list(rows).save_to_disk(str(partial))
    return output
