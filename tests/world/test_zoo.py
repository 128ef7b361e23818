"""The zoo as users meet it: recipes, training and evaluation through the CLI, shipped models."""

import json
import subprocess
import sys

import pytest
from transformers import AutoModelForImageTextToText, AutoProcessor

from auditdm.errors import UserError
from auditdm.models import load_model
from auditdm.world.oracle import SKILLS
from auditdm.world.skills import benchmark
from auditdm.verify import majority, weak_skills
from auditdm.world.zoo.recipes import ZOO, select_recipes
from auditdm.world.zoo.train import train_zoo
from auditdm.world.zoo.cards import SHIPPED_ZOO, list_zoo


def test_recipes_take_overrides_and_names() -> None:
    (recipe,) = select_recipes(["target"], ["steps=123", "size.image_size=96", "weights.clock=0.2", "turns=3"],
                               rename="target-fewclocks")  # fmt: skip
    assert recipe.name == "target-fewclocks" and recipe.train.steps == 123
    assert recipe.size.image_size == 96 and recipe.weights["clock"] == 0.2 and recipe.turns == 3
    assert [r.name for r in select_recipes(None, [])] == [r.name for r in ZOO]


@pytest.mark.parametrize(
    ("only", "sets", "message"),
    [(["nope"], [], "no recipe named nope"), (None, ["steps"], "expected KEY=VALUE"),
     (None, ["weights.juggling=1"], "unknown skill"), (None, ["size.depth=3"], "unknown field"),
     (None, ["steps=many"], "expected a int")],
)  # fmt: skip
def test_bad_recipe_overrides_are_clear(only, sets, message) -> None:
    with pytest.raises(UserError, match=message):
        select_recipes(only, sets)


def test_majority_and_weak_skills() -> None:
    assert majority([["red", "2"], ["Red", "3"], ["blue", "4"]]) == ["red", None]
    assert weak_skills({"color": 0.5, "clock": 0.8}, {"color": 0.9, "clock": 0.85}) == ["color"]


def test_one_job_trains_in_this_process(tmp_path, capsys) -> None:
    (recipe,) = select_recipes(["ref-a"], [], smoke_run=True)
    (card,) = train_zoo([recipe], tmp_path, progress=False, jobs=1)
    assert card["name"] == "ref-a" and (tmp_path / "ref-a" / "model.safetensors").exists()
    assert "ref-a: " in capsys.readouterr().out


@pytest.mark.slow
def test_train_and_eval_a_smoke_zoo_through_the_cli(tmp_path) -> None:
    zoo = tmp_path / "zoo"
    train = [sys.executable, "-m", "auditdm.cli", "world", "train", "--smoke", "--out", str(zoo), "-q"]
    assert subprocess.run(train, capture_output=True, text=True).returncode == 0
    result = subprocess.run([sys.executable, "-m", "auditdm.cli", "world", "eval", "--zoo", str(zoo),
                             "--per-skill", "2", "--json", "--model", f"hf:{zoo / 'ref-a'}"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["skills"] == list(SKILLS)
    extra = report["models"].pop(f"hf:{zoo / 'ref-a'}")  # --model: any model beside the zoo, the same answers
    assert extra["role"] == "extra" and extra["per_skill"] == report["models"]["ref-a"]["per_skill"]
    assert set(report["models"]) == {r.name for r in ZOO if r.role != "auditor"}  # auditors answer nothing
    for model in report["models"].values():
        assert isinstance(model["params"], int) and 0 <= model["overall"] <= 1
        assert set(model["per_skill"]) == set(SKILLS)
    assert set(report["reference_majority"]["per_skill"]) == set(SKILLS)
    assert isinstance(report["weak_skills"], list)
    blind = [s for s, v in report["reference_majority"]["per_skill"].items() if v < 0.85]
    assert report["consensus_blind"] == blind


def test_every_shipped_model_loads_through_transformers_and_answers() -> None:
    example = benchmark(1)[0]
    models = list_zoo(SHIPPED_ZOO)
    assert {m.role for m in models} == {"target", "reference", "auditor"} and len(models) >= 6
    for model in (m for m in models if m.role != "auditor"):  # the auditor's own tests: tests/test_auditor.py
        processor = AutoProcessor.from_pretrained(model.path, backend="pil")
        assert AutoModelForImageTextToText.from_pretrained(model.path, use_safetensors=True) is not None
        assert processor.chat_template
        (answer,) = load_model(f"world:{model.name}").generate([example.image()], [example.question.text()])
        assert answer and len(answer.split()) <= 3


def test_model_strings_fail_clearly() -> None:
    with pytest.raises(UserError, match="unknown model 'gpt'"):
        load_model("gpt")
    with pytest.raises(UserError, match="no world model named 'nope' \\(have: target"):
        load_model("world:nope")
    with pytest.raises(UserError, match="does not exist"):
        load_model("hf:/no/such/folder")
