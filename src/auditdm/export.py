"""Export a run's probes, one row each with its answers, to JSONL or Parquet."""

from __future__ import annotations

import json
from pathlib import Path

from auditdm.errors import UserError
from auditdm.store import RunStore


def export_run(run_dir: Path, fmt: str, output: Path | None = None) -> Path:
    """Write every probe of the run in ``run_dir`` to ``output``; returns the path written."""
    store = RunStore.open(run_dir)
    rows = [probe.to_dict() for probe in store.probes()]
    store.close()
    output = output or run_dir / f"probes.{fmt}"
    if fmt == "jsonl":
        with output.open("w") as file:
            for row in rows:
                file.write(json.dumps(row) + "\n")
    elif fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError("Parquet export needs pyarrow: pip install 'auditdm[export]'") from None
        # Answers by model become a list of {model, answer} structs: columns stay fixed across runs.
        table = pa.Table.from_pylist([{**r, "answers": [{"model": m, "answer": a} for m, a in r["answers"].items()]}
                                      for r in rows])  # fmt: skip
        pq.write_table(table, output)
    else:
        raise UserError(f"unknown export format {fmt!r} (jsonl or parquet)")
    return output
