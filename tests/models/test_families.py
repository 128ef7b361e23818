"""The paper's model families through ``hf:``, each a tiny random model built from its config
(families.py): every role (target, reference, auditor, GRPO auditor, fine-tuned target) runs
end to end. Families whose processors need torchvision say so where it is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from transformers.utils import is_torchvision_available

from auditdm.cli import main
from auditdm.errors import UserError
from auditdm.finetune import FinetuneSettings, finetune
from auditdm.grpo import GRPOSettings, train_auditor
from auditdm.models.hf import HFModel, ModelLoadError
from auditdm.records import Labelled

from families import FAMILIES, NEED_TORCHVISION, build

IMAGES = [Image.new("RGB", (40, 30), "red"), Image.new("RGB", (64, 64), "blue"), Image.new("L", (20, 50), 128)]
QUESTIONS = ["what color is the square ?", "how many objects are there ?", "is there a red circle ?"]


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    name: str = request.param
    folder = build(name, tmp_path_factory.mktemp(name))
    if name in NEED_TORCHVISION and not is_torchvision_available():
        with pytest.raises(ModelLoadError, match="needs torchvision"):
            HFModel(folder)
        pytest.skip(f"{name}: its processor needs torchvision (a video processor), and this machine has no "
                    "torchvision build for its torch; the message that says so is checked")  # fmt: skip
    return name, folder


def test_answers_samples_and_confidences(family: tuple[str, Path]) -> None:
    _, folder = family
    model = HFModel(folder, batch_size=2)
    greedy = model.generate(IMAGES, QUESTIONS)
    assert len(greedy) == 3 and greedy == model.generate(IMAGES, QUESTIONS)  # batches of 2 and 1, left-padded
    assert greedy[0] == model.generate(IMAGES[:1], QUESTIONS[:1])[0]
    sampled = model.generate(IMAGES, QUESTIONS, temperature=1.0, seed=3, max_new_tokens=6)
    assert sampled == model.generate(IMAGES, QUESTIONS, temperature=1.0, seed=3, max_new_tokens=6)
    rated = model.confidences(IMAGES, QUESTIONS)
    assert [text for text, _ in rated] == greedy and all(0 <= p <= 1 for _, p in rated)


def test_end_of_turn_from_the_generation_config_ends_a_reply(tmp_path: Path) -> None:
    model = HFModel(build("gemma3", tmp_path / "gemma3"))
    end_of_turn = model.processor.tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert end_of_turn != model.processor.tokenizer.eos_token_id and end_of_turn in model._end_tokens()


def test_a_tokenizer_without_a_pad_token_pads_with_its_end_token(tmp_path: Path) -> None:
    folder = build("idefics3", tmp_path / "idefics3")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "pad_token": None}))
    model = HFModel(folder)
    assert model.processor.tokenizer.pad_token == model.processor.tokenizer.eos_token
    assert len(model.generate(IMAGES, QUESTIONS)) == 3


@pytest.mark.slow
def test_every_role_in_an_audit(family: tuple[str, Path], tmp_path: Path) -> None:
    name, folder = family
    spec = f"hf:{folder}"
    out = tmp_path / "run"
    status = main(["audit", "--target", spec, "--references", f"{spec},world:ref-a", "--auditor", spec,
                   "--probes", "6", "--image-count", "3", "--commit-every", "3", "--weak-skill-questions", "1",
                   "-o", str(out), "--json"])  # fmt: skip
    assert status == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["probes"] == 6 and (out / "report.html").exists(), name


@pytest.mark.slow
def test_trained_as_an_auditor_and_fine_tuned_as_a_target(family: tuple[str, Path], tmp_path: Path) -> None:
    name, folder = family
    spec = f"hf:{folder}"
    if name == "paligemma":  # TRL writes GRPO prompts through a chat template; PaliGemma has none
        with pytest.raises(UserError, match="no chat template"):
            train_auditor(GRPOSettings(auditor=spec, steps=1, train_batch_size=4, group_size=2, images=2),
                          tmp_path / "a")
    else:
        settings = GRPOSettings(auditor=spec, references=("world:ref-a",), steps=1, train_batch_size=4, group_size=2,
                                images=2, save_every=1, prompts="auditdm")  # fmt: skip
        train_auditor(settings, tmp_path / "auditor", progress=False)
        assert (tmp_path / "auditor" / "final" / "model.safetensors").exists()
    pairs = [Labelled(image, question, "yes", "color") for image, question in zip(IMAGES, QUESTIONS)]
    tuned = finetune(spec, pairs, tmp_path / "tuned", FinetuneSettings(epochs=1, batch_size=3), progress=False)
    assert HFModel(tuned).generate(IMAGES[:1], QUESTIONS[:1])
