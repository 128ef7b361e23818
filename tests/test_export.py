"""Exports: every run's rows have the same columns, so several runs load as one dataset, and
the flagged probes are chat training data TRL fine-tunes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from auditdm.cli import main
from auditdm.errors import UserError
from auditdm.export import export_run
from auditdm.qa_data import read_qa_data
from auditdm.records import Answers, Category, OracleCheck, Picture, Probe, SourceImage
from auditdm.store import RunStore
from auditdm.world.render import render
from auditdm.world.scene import Scene, Sign

SCENES = [Scene(items={"center": Sign(n)}, seed=n) for n in (42, 7, 13)]
EDITED = Scene(items={"center": Sign(99)}, seed=13)
QUESTION = "what number is on the sign ?"


def world_run(folder: Path) -> Path:
    """An audit of world images with everything: flagged probes (one asked twice), a failed
    probe, an edited image, failure categories and oracle checks."""
    sources = [SourceImage(f"s{i}", Picture(render(s), s)) for i, s in enumerate(SCENES)]
    config = {"target": "world:target", "references": ["world:ref-a", "world:ref-b"]}
    store = RunStore.create(folder, {"config": config}, sources)
    parents = store.source_addresses()
    probes = [Probe(i, i % 3, "question", None, i, parents[i % 3], sources[i % 3].picture, question=QUESTION)
              for i in range(3)]  # fmt: skip
    probes += [Probe(3, 0, "question", None, 3, parents[0], sources[0].picture, question=QUESTION),  # probe 0 again
               Probe(4, 1, "both", "edit", 4, parents[1], None, instruction="make it", error="invalid edit: make it"),
               Probe(5, 2, "image", "edit", 5, parents[2], Picture(render(EDITED), EDITED), question=QUESTION,
                     instruction="make the sign say 99")]  # fmt: skip
    truths = ["42", "7", "13", "42", None, "99"]
    answers = [None if t is None else Answers(t if i == 5 else "1", (t, t), t, int(i != 5))
               for i, t in enumerate(truths)]  # fmt: skip
    checks = [None if t is None else OracleCheck("answerable", t, "text") for t in truths]
    models = [("world:target", "target"), ("world:ref-a", "reference"), ("world:ref-b", "reference")]
    store.commit_batch(0, probes, answers, checks, "world:auditor", "auditdm", models)
    store.replace_categories([Category("sign numbers", "reading signs", 4, 5, 0.8, (0, 1), (0, 1, 2, 3))])
    store.close()
    return folder


def photo_run(folder: Path) -> Path:
    """An audit of a photograph with none of that: one reference, nothing flagged or checked,
    no category, no synthesis, a probe without a consensus."""
    photo = SourceImage("cat.jpg", Picture(Image.new("RGB", (40, 30), "orange")), "what animal is it ?")
    store = RunStore.create(folder, {"config": {"target": "openai:small@http://localhost:8000/v1",
                                                "references": ["openai:large@http://localhost:8000/v1"]}},
                            [photo])  # fmt: skip
    parent = store.source_addresses()[0]
    probes = [Probe(i, 0, "question", None, i, parent, photo.picture, question=q)
              for i, q in enumerate(["what color is the cat ?", "is it asleep ?"])]  # fmt: skip
    answers = [Answers("orange", ("orange",), "orange", 0), Answers("yes", ("",), None, 0)]
    store.commit_batch(0, probes, answers, [None, None], "hf:/auditor", "auditdm",
                       [("openai:small@http://localhost:8000/v1", "target"),
                        ("openai:large@http://localhost:8000/v1", "reference")])  # fmt: skip
    store.close()
    return folder


@pytest.fixture
def runs(tmp_path) -> tuple[Path, Path]:
    return world_run(tmp_path / "world"), photo_run(tmp_path / "photo")


def test_two_runs_parquet_files_read_as_one_table(runs, tmp_path) -> None:
    import pyarrow.parquet as pq
    from datasets import load_dataset

    world, photo = runs
    for run in runs:  # through the command line, into a folder it makes
        assert main(["export", str(run), "--format", "parquet", "-o", str(tmp_path / "all" / f"{run.name}.pq")]) == 0
    table = pq.read_table(tmp_path / "all")  # both files, as one table
    assert table.num_rows == 8 and not [c for c in table.column_names if table.column(c).null_count == 8]
    rows = {(r["run"], r["probe"]): r for r in table.to_pylist()}
    flagged = rows["world", 0]
    assert flagged["answers"] == [{"model": "world:target", "role": "target", "answer": "1"},
                                  {"model": "world:ref-a", "role": "reference", "answer": "42"},
                                  {"model": "world:ref-b", "role": "reference", "answer": "42"}]  # fmt: skip
    assert flagged["consensus"] == "42" and flagged["score"] == 1 and flagged["category"] == "sign numbers"
    assert flagged["oracle"] == {"status": "answerable", "truth": "42", "skill": "text"}
    assert flagged["references"] == ["world:ref-a", "world:ref-b"] and flagged["kind"] == "question"
    edited = rows["world", 5]
    assert (edited["kind"], edited["synthesis"]) == ("image+edit", "edit") and edited["instruction"].endswith("99")
    assert edited["category"] is None and edited["score"] == 0
    failed = rows["world", 4]
    assert failed["error"] == "invalid edit: make it" and failed["image"] is None and failed["answers"] == []
    unsure = rows["photo", 1]
    assert unsure["consensus"] is None and unsure["oracle"] is None and unsure["target"].startswith("openai:small")
    # `datasets` reads the same files as one dataset, the images decoded.
    data = load_dataset("parquet", data_files=[str(p) for p in sorted((tmp_path / "all").iterdir())], split="train",
                        cache_dir=str(tmp_path / "cache"))  # fmt: skip
    images = {(r["run"], r["probe"]): r["image"] for r in data}
    assert images["photo", 0].size == (40, 30) and images["world", 0].size == (128, 128)


def test_two_runs_datasets_concatenate(runs, tmp_path) -> None:
    from datasets import concatenate_datasets, load_dataset, load_from_disk

    parts = [load_from_disk(str(export_run(run, "hf-dataset", tmp_path / "new" / run.name))) for run in runs]
    both = concatenate_datasets(parts)
    assert len(both) == 8 and both.features["image"].__class__.__name__ == "Image"
    assert [r["probe"] for r in both if r["run"] == "photo"] == [0, 1]
    # The same features as the Parquet file's: the formats hold one schema.
    parquet = load_dataset("parquet", data_files=str(export_run(runs[1], "parquet")), split="train",
                           cache_dir=str(tmp_path / "cache"))  # fmt: skip
    assert parquet.features == both.features


def test_sft_rows_are_the_flagged_probes_answered_by_the_consensus(runs, tmp_path) -> None:
    from datasets import concatenate_datasets, load_from_disk

    world, photo = runs
    data = load_from_disk(str(export_run(world, "sft")))
    assert (world / "sft.dataset").is_dir()
    assert [r["probe"] for r in data] == [0, 1, 2]  # not the repeat 3, nor the unflagged 5
    first = data[0]
    assert first["messages"] == [
        {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": QUESTION}]},
        {"role": "assistant", "content": [{"type": "text", "text": "42"}]}]  # fmt: skip
    assert first["images"][0].size == (128, 128) and first["category"] == "sign numbers"
    assert first["target"] == "world:target" and first["run"] == "world"
    mixed = read_qa_data(world / "sft.dataset")  # as rectification mixes a dataset in
    assert (mixed[0].question, mixed[0].answer) == (QUESTION, "42")
    none = load_from_disk(str(export_run(photo, "sft", tmp_path / "photo.sft")))
    assert len(none) == 0 and len(concatenate_datasets([data, none])) == 3  # an empty export still has the columns


def test_a_rectifications_training_pairs_are_chat_data(tmp_path) -> None:
    import dataclasses

    from datasets import Value, load_from_disk

    from auditdm.rectify import Pair

    rect = tmp_path / "rect"
    runs = world_run(rect / "iteration-1" / "generate-0"), photo_run(rect / "iteration-1" / "control-generate-0")
    (rect / "rectify.json").write_text("{}")
    for run, right, skill in zip(runs, (True, None), ("text", None), strict=True):
        store = RunStore.open(run, write=False)
        first = next(store.probes())
        pair = Pair(f"iteration-1/{run.name}", 0, first.image or "", first.question or "", first.consensus or "",
                    flagged=bool(first.score), right=right, skill=skill, category=None)  # fmt: skip
        (run.parent / f"{run.name.removesuffix('-0')}-pairs.jsonl").write_text(json.dumps(dataclasses.asdict(pair)))
    for fmt in ("hf-dataset", "sft"):  # the same dataset
        data = load_from_disk(str(export_run(rect, fmt)))
        assert [(r["iteration"], r["control"], r["label_right"]) for r in data] == [(1, True, None), (1, False, True)]
        assert data.features["category"] == Value("string") and data[0]["images"][0].size == (40, 30)
        assert data[1]["messages"][1]["content"][0]["text"] == "42"
    with pytest.raises(UserError, match="is a rectification run: export its training pairs with --format sft"):
        export_run(rect, "parquet")


def test_outputs_are_made_checked_and_replaced(runs, tmp_path) -> None:
    world = runs[0]
    deep = tmp_path / "a" / "b" / "probes.dataset"
    assert export_run(world, "hf-dataset", deep) == deep and (deep / "dataset_info.json").is_file()
    assert export_run(world, "hf-dataset", deep) == deep  # an exported dataset is replaced
    assert json.loads(export_run(world, "jsonl", tmp_path / "c" / "p.jsonl").read_text().splitlines()[0])["idx"] == 0
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    for output, fmt, message in ((keep, "sft", "keep is a folder but no dataset"),
                                 (keep, "parquet", "keep is a folder: name a file"),
                                 (keep / "notes.txt" / "p.parquet", "parquet", "notes.txt is a file, not a folder"),
                                 (keep / "notes.txt", "hf-dataset", "notes.txt is a file: name a folder")):  # fmt: skip
        with pytest.raises(UserError, match=message):
            export_run(world, fmt, output)
    assert [p.name for p in keep.iterdir()] == ["notes.txt"] and (keep / "notes.txt").read_text() == "mine"


def test_help_lists_and_explains_the_formats(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = capsys.readouterr().out
    assert all(f"  {name} " in text for name in ("jsonl", "parquet", "hf-dataset", "sft")) and "SFTTrainer" in text


@pytest.mark.slow
def test_trl_fine_tunes_on_the_sft_export(runs, tmp_path) -> None:
    from datasets import load_from_disk
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import SFTConfig, SFTTrainer

    from auditdm.backends import ModelSpec

    dataset = load_from_disk(str(export_run(runs[0], "sft")))
    folder = ModelSpec.parse("world:target").folder()
    processor = AutoProcessor.from_pretrained(folder, backend="pil")
    model = AutoModelForImageTextToText.from_pretrained(folder)
    config = SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=1, per_device_train_batch_size=2, use_cpu=True,
                       report_to=[], save_strategy="no")  # fmt: skip
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor)
    assert trainer.train().global_step == 1  # TRL's own VLM collator reads the exported format
