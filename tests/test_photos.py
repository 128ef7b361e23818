"""Audits of real photographs (scikit-image's) with tiny diffusers pipelines as G and E: a
folder of bare photographs, a dataset that asks questions about them, a comparison; and bad
datasets, each one line naming it."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from test_audit import audit
from tiny_pipelines import synthesis_args

from auditdm.errors import UserError
from auditdm.judge import normalize_answer
from auditdm.models import load_model
from auditdm.probes import NO_QUESTION
from auditdm.qa_data import Columns, read_questions
from auditdm.store import RunStore

skimage = pytest.importorskip("skimage")

# Each photograph with a question about it and its answer, as a VQA dataset has them.
ASKED = {
    "astronaut.png": ("what is the person wearing ?", "spacesuit"),
    "coffee.png": ("what color is the cup ?", "white"),
    "chelsea.png": ("what animal is this ?", "cat"),
    "rocket.jpg": ("how many rockets are there ?", "1"),
}
SIDE = 96  # the tiny VAE only halves an image, so a full-size photograph would take the editor minutes


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-image's photographs, downscaled (still photographs: JPEG and PNG, odd sizes)."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ASKED:
        with Image.open(Path(skimage.data_dir) / name) as image:
            image.thumbnail((SIDE, SIDE))
            image.save(folder / name)
    return folder


def jsonl_dataset(folder: Path, photos: Path, broken: bool = False) -> Path:
    """A VQAv2-style JSONL of the photographs (image paths relative to it), with one row whose
    image does not decode when ``broken``."""
    folder.mkdir()
    rows = []
    for name, (question, answer) in ASKED.items():
        (folder / name).write_bytes((photos / name).read_bytes())
        rows.append({"image": name, "question": question, "answer": answer})
    if broken:
        (folder / "damaged.jpg").write_bytes(b"\xff\xd8 not a JPEG after all")
        rows.insert(1, {"image": "damaged.jpg", "question": "what is it ?", "answer": "nothing"})
    (folder / "vqa.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder / "vqa.jsonl"


def probe_blocks(report: Path) -> list[tuple[str, str]]:
    """Each probe the report shows: its HTML and its pairing."""
    return re.findall(r'<div class="probe">(.*?)probe \d+, (\w+)', report.read_text(), flags=re.S)


@pytest.mark.slow
def test_a_folder_of_photographs_is_audited_without_the_oracle(pipelines, photos, tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = audit("--images", str(photos), "--probes", "12", "--commit-every", "6", *synthesis_args(pipelines),
                   "-o", str(run_dir), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    dropped = [line for line in result.stderr.splitlines() if "dropped" in line]
    assert dropped == [f"auditdm: dropped pairing image: {NO_QUESTION} (--dataset gives images with their questions)"]
    summary = json.loads(result.stdout)
    assert summary["dropped_pairings"] == {"image": NO_QUESTION}
    assert summary["verified"] is None and summary["dataset_accuracy"] is None
    assert set(summary["by_kind"]) == {"question", "both+caption", "both+edit"}
    assert all(kind["genuine"] is None for kind in summary["by_kind"].values())  # nothing claimed as verified
    assert summary["categories"], "the world's models disagree on photographs: there is something to group"
    store = RunStore.open(run_dir)
    sizes = {source.name: source.picture.image.size for source in store.sources()}
    for probe in store.probes():
        assert not probe.verifiable and probe.oracle_status is None
        if probe.synthesis == "edit" and probe.image:  # an edit keeps the photograph's size; G draws 32 px
            assert store.load_picture(probe.image).image.size == sizes[store.sources()[probe.source].name]
    report = run_dir / "report.html"
    page = report.read_text()
    assert 'id="unverified"' in page and 'id="verified"' not in page and "genuine (oracle)" not in page
    assert f"No image probes: {NO_QUESTION}." in page.replace("&#39;", "'")
    shown = [block for block, pairing in probe_blocks(report) if pairing == "both"]
    assert shown and all(block.count('<div class="image image-') == 2 for block in shown)  # old and new, side by side


@pytest.mark.slow
def test_a_dataset_asks_its_own_questions_and_scores_the_originals(pipelines, photos, tmp_path) -> None:
    data = jsonl_dataset(tmp_path / "data", photos, broken=True)
    run_dir = tmp_path / "run"
    result = audit("--dataset", str(data), "--probes", "12", "--commit-every", "6", *synthesis_args(pipelines),
                   "-o", str(run_dir), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and skipped[0].startswith(f"{data}: skipped 1 of 5 rows whose image is missing or does "
                                                       "not decode (")  # fmt: skip
    assert "damaged.jpg: not a readable image" in skipped[0] and "dropped" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["dropped_pairings"] == {} and summary["verified"] is None
    assert {"image+caption", "image+edit"} <= set(summary["by_kind"])
    store = RunStore.open(run_dir)
    sources = store.sources()
    assert [s.question for s in sources] == [question for question, _ in ASKED.values()]
    image_probes = [p for p in store.probes() if p.pairing == "image"]
    assert image_probes and all(p.question == sources[p.source].question for p in image_probes)  # (Q, I*) asks Q
    # The target's accuracy on the originals, against the dataset's answers: as the target itself answers them.
    target = load_model("world:target")
    given = target.generate([s.picture.image for s in sources], [s.question or "" for s in sources])
    right = [normalize_answer(g) == normalize_answer(a) for g, (_, a) in zip(given, ASKED.values())]
    accuracy = summary["dataset_accuracy"]
    assert accuracy["questions"] == 4 and accuracy["target"] == sum(right) / 4
    assert set(accuracy["references"]) == set(summary["references"]) and 0 <= accuracy["consensus"] <= 1
    page = (run_dir / "report.html").read_text().replace("&#39;", "'")
    assert 'id="dataset-accuracy"' in page and "against the dataset's answers (not an oracle)" in page
    for block, pairing in probe_blocks(run_dir / "report.html"):
        if pairing == "image":  # a (Q, I*) probe shows its question as the original one, and the dataset's answer
            assert "Original question" in block and "the dataset&#39;s answer, for the original image" in block


@pytest.mark.slow
def test_a_comparison_on_photographs_decides_nothing_it_cannot_check(photos, tmp_path) -> None:
    out = tmp_path / "cmp"
    result = subprocess.run([sys.executable, "-m", "auditdm.cli", "compare", "world:target", "world:target-large",
                             "--images", str(photos), "--pairings", "question", "--probes", "8", "-o", str(out)],
                            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    comparison = json.loads((out / "comparison.json").read_text())
    categories = [c for d in comparison["directions"] for c in d["categories"]]
    assert categories and all(c["checked"] == 0 and c["worse"] is None for c in categories)
    assert "which model is wrong is not checked" in result.stdout and "is worse in" not in result.stdout


def test_every_format_reads_alike_with_columns_found_or_named(photos, tmp_path) -> None:
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

    expected = [(q, a) for q, a in ASKED.values()]
    from_jsonl = read_questions(jsonl_dataset(tmp_path / "data", photos))
    assert [(s.question, s.answer) for s in from_jsonl] == expected
    assert [s.question for s in read_questions(tmp_path / "data" / "vqa.jsonl", limit=2)] == [q for q, _ in expected[:2]]
    rows = {"img": [str(photos / name) for name in ASKED], "prompt": [q for q, _ in expected],
            "answers": [[{"answer": a}, {"answer": a}, {"answer": "other"}] for _, a in expected]}  # fmt: skip
    features = Features({"img": ImageFeature(), "prompt": Value("string"), "answers": [{"answer": Value("string")}]})
    Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "folder"))
    Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / "data.parquet"))
    for path in (tmp_path / "folder", tmp_path / "data.parquet"):
        sources = read_questions(path)  # img, prompt and answers: found among the usual names
        assert [(s.question, s.answer) for s in sources] == expected  # of VQAv2's answers, the most common
        assert [s.picture.image.tobytes() for s in sources] == [s.picture.image.tobytes() for s in from_jsonl]
    named = read_questions(tmp_path / "folder", Columns(question="prompt", answer=None))
    assert [s.question for s in named] == [q for q, _ in expected]
    no_answers = tmp_path / "questions.jsonl"
    no_answers.write_text(json.dumps({"image": str(photos / "coffee.png"), "question": "what is it ?"}) + "\n")
    assert [(s.question, s.answer) for s in read_questions(no_answers)] == [("what is it ?", None)]


def test_bad_datasets_are_one_line_naming_them(photos, tmp_path, caplog) -> None:
    from datasets import Dataset, DatasetDict

    def write(name: str, *rows: dict) -> Path:
        (tmp_path / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
        return tmp_path / name

    photo = str(photos / "coffee.png")
    cases = [
        (write("nq.jsonl", {"image": photo, "caption": "a cup"}), Columns(),
         "nq.jsonl: no question column (looked for question, query, prompt; its columns are image, caption): "
         "name it with --question-column"),
        (write("ni.jsonl", {"picture": photo, "question": "q ?"}), Columns(),
         "ni.jsonl: no image column (looked for image, images, img, image_path, file_name, filename; its columns "
         "are picture, question): name it with --image-column"),
        (write("named.jsonl", {"image": photo, "question": "q ?"}), Columns(answer="label"),
         "named.jsonl: no column 'label' (--answer-column); its columns are image, question"),
        (write("empty.jsonl"), Columns(), "empty.jsonl: the dataset has no rows"),
        (write("damaged.jsonl", {"image": "a.jpg", "question": "q ?"}, {"image": None, "question": "q ?"}), Columns(),
         f"damaged.jsonl: none of its 2 images decodes ({tmp_path / 'a.jpg'}: no such file)"),
        (tmp_path / "empty.parquet", Columns(), "empty.parquet: the dataset has no rows"),
        (tmp_path / "splits", Columns(),
         f"splits: a dataset of splits (train): give one split's folder, such as {tmp_path / 'splits' / 'train'}"),
    ]  # fmt: skip
    Dataset.from_dict({"image": [], "question": []}).to_parquet(str(tmp_path / "empty.parquet"))
    DatasetDict({"train": Dataset.from_dict({"image": [photo], "question": ["q ?"]})}).save_to_disk(
        str(tmp_path / "splits"))
    for path, columns, message in cases:
        with pytest.raises(UserError) as raised:
            read_questions(path, columns)
        assert str(raised.value) == f"{tmp_path}/{message}"
    mixed = write("mixed.jsonl", {"image": photo, "question": "q ?"}, {"image": None, "question": "q ?"})
    with caplog.at_level(logging.WARNING, logger="auditdm.qa_data"):
        assert len(read_questions(mixed)) == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"{mixed}: skipped 1 of 2 rows whose image is missing or does not decode (row 1: no image)"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "d.jsonl", "--images", "photos"],
         "--dataset d.jsonl and --images photos both name the images to audit: give one"),
        (["--question-column", "q"], "--question-column q: names a column of --dataset, and none is given"),
        (["--dataset", "/no/such/data.parquet"], "/no/such/data.parquet: no such file or folder"),
    ],
)  # fmt: skip
def test_conflicting_or_missing_datasets_are_one_line(args, message) -> None:
    result = audit(*args)
    assert result.returncode == 2 and result.stderr.strip() == f"auditdm: error: {message}"


def test_a_pairing_asked_for_by_name_that_no_photograph_allows_fails(photos, tmp_path) -> None:
    out = tmp_path / "run"
    result = audit("--images", str(photos), "--pairings", "question,image", "-o", str(out))
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.strip() == (f"auditdm: error: --pairings question,image: {NO_QUESTION} (give --dataset with "
                                     "a question column, or leave image out)")  # fmt: skip
