"""Rectification: the whole loop on the shipped zoo at smoke size, its resume after a real
kill, labels that come from the references and never from the oracle, and bad input."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from auditdm.errors import UserError
from auditdm.grpo import GRPOSettings, probe_form
from auditdm.models import load_model, read_card
from auditdm.rectify import Pair, RectifyConfig, _balanced, labelled_pairs, resume_rectify, start_rectify
from auditdm.store import RunStore

SMOKE = ["--pool-size", "12", "--probes", "40", "--epochs", "1", "--auditor-steps", "2", "--auditor-checkpoints", "1",
         "--eval-questions", "3", "--train-batch-size", "4", "--keep", "all"]  # fmt: skip
TIMING = {"seconds"}


def rectify(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "auditdm.cli", "rectify", *args], capture_output=True, text=True,
                          env=env)  # fmt: skip


def untimed(result: dict) -> dict:
    return {**result, "iterations": [{k: v for k, v in it.items() if k not in TIMING} for it in result["iterations"]]}


# A train-auditor run's settings: its recipe trains the second iteration's auditor, not its target or steps.
RECIPE = GRPOSettings(target="world:ref-a", steps=999, crowding_of="answer", explore=0.5, novelty_power=3)


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rect") / "whole"
    recipe = out.parent / "recipe"
    recipe.mkdir()
    (recipe / "settings.json").write_text(json.dumps(dataclasses.asdict(RECIPE)))
    result = rectify(*SMOKE, "--control", "--auditor-recipe", str(recipe), "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_the_whole_loop_writes_models_pairs_and_figures(whole) -> None:
    result = json.loads((whole / "rectification.json").read_text())
    assert result["target"] == "world:target" and set(result["before"]) == {"overall", "per_skill"}
    assert result["compare_to"]["name"] == "world:target-large"
    assert [it["iteration"] for it in result["iterations"]] == [1, 2]
    for it in result["iterations"]:
        assert it["pairs"] > 0 and 0 <= it["label_accuracy"] <= 1 and 0 <= it["overall"] <= 1
        assert set(it["per_skill"]) == set(result["before"]["per_skill"]) and it["control"]["overall"] is not None
        model = Path(it["model"].removeprefix("hf:"))
        assert read_card(model)["finetuned_from"] and load_model(it["model"]).name == it["model"]
    # The second iteration's probes come from a new auditor, trained against the first model.
    settings = json.loads((whole / "iteration-2" / "auditor" / "settings.json").read_text())
    assert settings["target"] == result["iterations"][0]["model"] and settings["auditor"] == "world:auditor"
    assert settings["steps"] == 2 and settings["references"] == ["world:ref-a", "world:ref-b", "world:ref-c"]
    assert {k: settings[k] for k in ("crowding_of", "explore", "novelty_power")} == {
        "crowding_of": "answer", "explore": 0.5, "novelty_power": 3}  # as the recipe trained, not the defaults
    pairs = labelled_pairs(whole)
    assert pairs and all(image.exists() for image, _ in pairs)


@pytest.mark.slow
def test_the_report_shows_every_skill_before_and_after(whole, tmp_path) -> None:
    result = json.loads((whole / "rectification.json").read_text())
    page = (whole / "report.html").read_text()
    assert 'id="accuracy"' in page and page.count("<h3>Iteration ") == 2 and "world:target-large" in page
    for skill in result["before"]["per_skill"]:
        assert f"<td>{skill}</td>" in page
    for it in result["iterations"]:
        assert f"{it['pairs']} pseudo-labelled pairs" in page
        assert set(it["label_accuracy_by_skill"]) <= set(result["before"]["per_skill"])
    copy = tmp_path / "copy"
    shutil.copytree(whole, copy)
    (copy / "report.html").unlink()
    rebuilt = subprocess.run([sys.executable, "-m", "auditdm.cli", "report", str(copy)], capture_output=True, text=True)
    assert rebuilt.returncode == 0 and (copy / "report.html").read_text().replace(str(copy), str(whole)) == page


@pytest.mark.slow
def test_labels_are_the_references_consensus_never_the_oracle(whole, tmp_path) -> None:
    # The pairs' answers are the stored consensus, right or wrong by the oracle.
    stored = {run: {p.idx: p for p in RunStore.open(whole / run).probes()}
              for run in {pair.run for _, pair in labelled_pairs(whole)}}  # fmt: skip
    for _, pair in labelled_pairs(whole):
        probe = stored[pair.run][pair.probe]
        assert pair.answer == probe.consensus and pair.right == (probe.truth == probe.consensus)
    # With world:target as the only reference, the consensus is often wrong: the labels follow it.
    out = tmp_path / "weak-reference"
    config = RectifyConfig(target="world:target-large", references=("world:target",), compare_to=None, pool_size=12,
                           probes=40, epochs=1, train_batch_size=4, iterations=1, eval_questions=2, keep="all")  # fmt: skip
    start_rectify(config, out, progress=False)
    wrong = [pair for _, pair in labelled_pairs(out) if pair.right is False]
    assert wrong, "a weak reference should give some wrong labels"


@pytest.mark.slow
def test_the_paths_and_the_fraction_choose_the_training_pairs(tmp_path) -> None:
    # The paper's ablations: one path alone (here editing), and a fraction of the generated pairs.
    config = RectifyConfig(pool_size=12, probes=40, epochs=1, train_batch_size=4, iterations=1, eval_questions=2,
                           keep="all", compare_to=None, pairings=("both",), syntheses=("edit",),
                           max_answer_share=1.0)  # fmt: skip
    start_rectify(config, tmp_path / "all", progress=False)
    pairs = [pair for _, pair in labelled_pairs(tmp_path / "all")]
    stored = {p.idx: p for p in RunStore.open(tmp_path / "all" / "iteration-1" / "generate-0").probes()}
    assert {stored[p.probe].kind for p in pairs} == {"both+edit"} and len(pairs) >= 4
    # World images carry questions, so their pool can ask them of edited images too.
    start_rectify(dataclasses.replace(config, pairings=("image",)), tmp_path / "image", progress=False)
    edited = {p.idx: p for p in RunStore.open(tmp_path / "image" / "iteration-1" / "generate-0").probes()}
    assert {edited[p.probe].kind for _, p in labelled_pairs(tmp_path / "image")} == {"image+edit"}
    # The same generation, a fifth of its pairs: spread over it, in its order.
    shutil.copytree(tmp_path / "all" / "iteration-1" / "generate-0", tmp_path / "fifth" / "iteration-1" / "generate-0")
    start_rectify(dataclasses.replace(config, fraction=0.2), tmp_path / "fifth", progress=False)
    fifth = [pair for _, pair in labelled_pairs(tmp_path / "fifth")]
    assert len(fifth) == len(pairs) // 5 and fifth == [pairs[5 * i + 4] for i in range(len(fifth))]
    # At most half of a question form's pairs give one answer: the commonest are thinned, in order.
    shutil.copytree(tmp_path / "all" / "iteration-1" / "generate-0", tmp_path / "half" / "iteration-1" / "generate-0")
    start_rectify(dataclasses.replace(config, max_answer_share=0.5), tmp_path / "half", progress=False)
    half = [pair for _, pair in labelled_pairs(tmp_path / "half")]
    forms = Counter(probe_form(p.question) for p in half)
    assert half and all(n <= forms[form] / 2 for (form, _), n in Counter((probe_form(p.question), p.answer)
                                                                        for p in half).items())  # fmt: skip
    assert [p for p in pairs if p in half] == half and len(half) < len(pairs)


def test_a_form_s_rarer_answers_are_filled_with_pairs_the_target_already_answers() -> None:
    def pair(i: int, question: str, answer: str, flagged: bool) -> Pair:
        return Pair("run", i, f"image-{i}", question, answer, flagged, None, None, None)

    flagged = [pair(i, "is there a red circle ?", "no", True) for i in range(6)]
    flagged.append(pair(6, "is there a blue star ?", "yes", True))
    spare = [pair(10 + i, "is there a green square ?", "yes", False) for i in range(3)]
    spare.append(pair(20, "how many circles are there ?", "2", False))  # a form with no flagged pair
    # Thinning alone keeps one "no" for the one "yes".
    assert _balanced(flagged, 0.5) == [flagged[0], flagged[6]]
    # Filling first: the three right "yes" pairs join, and four of the six "no" pairs stay.
    assert _balanced(flagged + spare, 0.5, fill=True) == [*flagged[:4], flagged[6], *spare[:3]]
    # A form takes at most as many unflagged pairs as it has flagged ones.
    assert _balanced([flagged[0], *spare], 0.5, fill=True) == [flagged[0], spare[0]]


@pytest.mark.slow
def test_a_killed_rectification_resumes_to_the_uninterrupted_result(whole, tmp_path) -> None:
    out, recipe = tmp_path / "killed", tmp_path / "recipe"
    shutil.copytree(whole.parent / "recipe", recipe)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "auditdm.cli", "rectify", *SMOKE, "--control", "--auditor-recipe",
                                str(recipe), "-o", str(out)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (out / "iteration-1" / "model" / "model.safetensors").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # mid-iteration: the model is saved, the control not yet
    process.wait()
    assert not (out / "rectification.json").exists(), "the kill should land within the first iteration"
    shutil.rmtree(recipe)  # the run keeps its own copy
    resumed = rectify("--resume", str(out), "--json")
    assert resumed.returncode == 0, resumed.stderr
    expected = json.loads((whole / "rectification.json").read_text())
    relocated = json.loads(json.dumps(expected).replace(str(whole), str(out)))
    assert untimed(json.loads(resumed.stdout)) == untimed(relocated)
    for name in ("generate-pairs.jsonl", "control-generate-pairs.jsonl"):
        assert (out / "iteration-2" / name).read_text() == (whole / "iteration-2" / name).read_text()


@pytest.mark.slow
def test_each_stage_is_redone_from_what_is_stored(whole, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(whole, copy)
    config = json.loads((copy / "rectify.json").read_text())
    expected = json.loads(json.dumps(json.loads((whole / "rectification.json").read_text())).replace(str(whole), str(copy)))
    shutil.rmtree(copy / "iteration-2" / "model")  # a stage that never finished
    (copy / "iteration-2" / "eval.json").unlink()
    (copy / "rectification.json").unlink()
    assert untimed(resume_rectify(copy, progress=False)) == untimed(expected)
    assert json.loads((copy / "rectify.json").read_text()) == config


def test_bad_input_is_one_clear_line(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, message in ((["--pool", str(empty)], "the pool has no images"),
                          (["--resume", str(tmp_path)], "not a rectification run"),
                          (["--keep", "some"], "invalid choice"), (["--balance", "even"], "invalid choice"),
                          (["--target", "hf:org/remote-vlm"], "is not a local model folder"),
                          (["--target", f"hf:{empty}"], "name the reference models with --references"),
                          (["--iterations", "0"], "--iterations, --probes, --pool-size and --per-question"),
                          (["--pool", str(empty), "--pairings", "image"], "a folder of images has none"),
                          (["--fraction", "1.5"], "--fraction 1.5"),
                          (["--max-answer-share", "0"], "--max-answer-share 0.0: must be above 0"),
                          (["--mix-data", str(tmp_path / "nope.json")], "nope.json: no such file"),
                          (["--auditor-recipe", str(empty)], "not an auditor training")):  # fmt: skip
        result = rectify(*args, "-o", str(tmp_path / "run"))
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert not (tmp_path / "run").exists()
    with pytest.raises(UserError, match="already holds a rectification"):
        (tmp_path / "held").mkdir()
        (tmp_path / "held" / "rectify.json").write_text("{}")
        start_rectify(RectifyConfig(), tmp_path / "held")


@pytest.mark.slow
def test_the_training_pairs_export_as_a_dataset_trl_fine_tunes_on(whole, tmp_path) -> None:
    from datasets import load_from_disk
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import SFTConfig, SFTTrainer

    from auditdm.backends import ModelSpec
    from auditdm.export import export_run

    dataset = load_from_disk(str(export_run(whole, "hf-dataset", tmp_path / "pairs")))
    assert len(dataset) == len(labelled_pairs(whole)) and {"images", "messages", "iteration", "control"} <= set(
        dataset.column_names)  # fmt: skip
    row = dataset[0]
    assert row["messages"][0]["role"] == "user" and row["messages"][1]["content"][0]["text"]
    assert row["images"][0].size == (128, 128)
    folder = ModelSpec.parse("world:target").folder()
    processor = AutoProcessor.from_pretrained(folder, backend="pil")
    model = AutoModelForImageTextToText.from_pretrained(folder)
    config = SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=1, per_device_train_batch_size=2, use_cpu=True,
                       report_to=[], save_strategy="no")  # fmt: skip
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset.select(range(4)), processing_class=processor)
    assert trainer.train().global_step == 1  # TRL's own VLM collator reads the exported format


@pytest.mark.slow
def test_a_world_trained_folder_mixes_in_its_own_recipe_data(tmp_path) -> None:
    # An hf: folder `auditdm world train` wrote is fine-tuned as its world: self is: the same
    # data mixed in, so the same model comes out. Without its card, auditdm knows no data of its
    # own, says so, and mixes nothing in.
    from safetensors.torch import load_file

    from auditdm.backends import ModelSpec

    copy = tmp_path / "target"
    shutil.copytree(ModelSpec.parse("world:target").folder(), copy)
    one = [*SMOKE, "--iterations", "1", "--compare-to", "none", "--references",
           "world:ref-a,world:ref-b,world:ref-c"]
    models = {}
    for name, target in (("world", "world:target"), ("folder", f"hf:{copy}")):
        result = rectify(*one, "--target", target, "-o", str(tmp_path / name))
        assert result.returncode == 0 and "mixes nothing in" not in result.stderr, result.stderr
        models[name] = load_file(tmp_path / name / "iteration-1" / "model" / "model.safetensors")
    (copy / "auditdm.json").unlink()
    result = rectify(*one, "--target", f"hf:{copy}", "-o", str(tmp_path / "bare"))
    assert result.returncode == 0 and f"hf:{copy} has no training data of its own" in result.stderr, result.stderr
    models["bare"] = load_file(tmp_path / "bare" / "iteration-1" / "model" / "model.safetensors")
    assert all(models["folder"][k].equal(models["world"][k]) for k in models["world"])
    assert not all(models["bare"][k].equal(models["world"][k]) for k in models["world"])
