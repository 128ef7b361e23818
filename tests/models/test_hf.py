"""HFModel on a zoo model trained here on a one-skill task, and its load errors."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from auditdm.models.hf import HFModel, ModelLoadError
from auditdm.prompts import chat
from auditdm.world.zoo.build import VLMSize, build_model, build_processor, build_tokenizer, save_vlm
from auditdm.world.zoo.sft import Example, TrainConfig, train_vlm

COLORS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 30, 220)}
QUESTIONS = ["what color is the square ?", "which color does the square on the white background have ?"]
SIDE = 32  # big enough that a 30 k parameter model learns the task in ~100 steps
TINY = VLMSize(
    vision_hidden=32, vision_layers=1, vision_heads=2,
    text_hidden=32, text_layers=1, text_heads=2,
    image_size=32, patch_size=8,
)  # fmt: skip


def square(rng: random.Random, color: str) -> Image.Image:
    """A 64 px white image with a square of `color` somewhere in it."""
    image = Image.new("RGB", (64, 64), "white")
    x, y = rng.randrange(64 - SIDE), rng.randrange(64 - SIDE)
    ImageDraw.Draw(image).rectangle([x, y, x + SIDE - 1, y + SIDE - 1], fill=COLORS[color])
    return image


def batches(rng: random.Random, size: int) -> Iterator[list[Example]]:
    while True:
        colors = [rng.choice(list(COLORS)) for _ in range(size)]
        yield [(square(rng, c), [(rng.choice(QUESTIONS), c)]) for c in colors]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """A tiny zoo model trained to name the square's colour, saved to a folder."""
    words = [w for q in QUESTIONS for w in q.split()] + list(COLORS)
    tokenizer = build_tokenizer(words)
    model = build_model(TINY, tokenizer)
    processor = build_processor(tokenizer, TINY.image_size, TINY.patch_size)
    config = TrainConfig(steps=150, batch_size=16, lr=3e-3)
    losses = train_vlm(model, processor, batches(random.Random(0), config.batch_size), config, progress=False)
    return save_vlm(model, processor, tmp_path_factory.mktemp("zoo") / "tiny"), losses


def test_training_lowers_the_loss(trained: tuple[Path, list[float]]) -> None:
    _, losses = trained
    assert len(losses) == 150
    assert sum(losses[-10:]) / 10 < 0.1 * sum(losses[:10]) / 10


def test_reloaded_model_names_the_colour(trained: tuple[Path, list[float]]) -> None:
    folder, _ = trained
    answerer = HFModel(folder, batch_size=8)
    rng = random.Random(1)
    colors = [rng.choice(list(COLORS)) for _ in range(30)]
    answers = answerer.generate([square(rng, c) for c in colors], [rng.choice(QUESTIONS) for _ in colors])
    assert answerer.name == f"hf:{folder}"
    assert sum(a == c for a, c in zip(answers, colors)) >= 27


def test_left_padded_batches_answer_as_single_questions(trained: tuple[Path, list[float]]) -> None:
    folder, _ = trained
    rng = random.Random(2)
    images = [square(rng, c) for c in COLORS]
    questions = [QUESTIONS[i % 2] for i in range(len(images))]  # different lengths: padding
    batched = HFModel(folder, batch_size=8).generate(images, questions)
    single = HFModel(folder, batch_size=1).generate(images, questions)
    assert batched == single


def test_confidence_is_the_probability_of_the_answer(trained: tuple[Path, list[float]]) -> None:
    folder, _ = trained
    answerer = HFModel(folder, batch_size=8)
    rng = random.Random(3)
    images, questions = [square(rng, c) for c in COLORS], QUESTIONS[:1] * len(COLORS)
    rated = answerer.confidences(images, questions)
    assert [a for a, _ in rated] == answerer.generate(images, questions)
    # Each answer is one word, so its probability is the first step's highest one.
    texts = answerer.processor.apply_chat_template([chat(q) for q in questions], add_generation_prompt=True,
                                                   tokenize=False)  # fmt: skip
    inputs = answerer.processor(text=texts, images=images, padding=True, padding_side="left", return_tensors="pt")
    with torch.inference_mode():
        first = answerer.model(**inputs).logits[:, -1].softmax(-1).max(-1).values
    assert [p for _, p in rated] == pytest.approx(first.tolist(), rel=1e-4)
    assert all(0 < p <= 1 for _, p in rated)


def test_greedy_replies_leave_the_random_state_alone(trained: tuple[Path, list[float]]) -> None:
    """Answering is greedy and draws nothing: it must not reseed the caller's random state."""
    answerer = HFModel(trained[0], batch_size=8)
    rng = random.Random(4)
    images, questions = [square(rng, c) for c in COLORS], QUESTIONS[:1] * len(COLORS)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    answerer.generate(images, questions, seed=7)
    answerer.confidences(images, questions)
    assert torch.equal(torch.get_rng_state(), before)
    answerer.generate(images, questions, temperature=1.0, seed=7)  # sampling draws, from its own seed
    assert not torch.equal(torch.get_rng_state(), before)


def test_mismatched_lengths_are_rejected(trained: tuple[Path, list[float]]) -> None:
    with pytest.raises(ValueError):
        HFModel(trained[0]).generate([Image.new("RGB", (8, 8))], [])


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="nowhere"):
        HFModel(tmp_path / "nowhere")


def test_folder_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelLoadError, match=str(tmp_path)):
        HFModel(tmp_path)


def test_folder_without_chat_template(trained: tuple[Path, list[float]], tmp_path: Path) -> None:
    folder, _ = trained
    tokenizer = build_tokenizer(QUESTIONS[0].split())
    tokenizer.chat_template = None
    processor = build_processor(tokenizer, TINY.image_size, TINY.patch_size)
    processor.chat_template = None
    save_vlm(build_model(TINY, tokenizer), processor, tmp_path)
    with pytest.raises(ModelLoadError, match="chat template"):
        HFModel(tmp_path)


def test_hub_ids_and_folders_are_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network here: a hub id fails to load, clearly
    with pytest.raises(ModelLoadError, match="cannot load AutoProcessor from some-org/some-vlm"):
        HFModel("some-org/some-vlm")
    for missing in ("/no/such/folder", "./nope", "a/b/c"):  # paths, not hub ids
        with pytest.raises(ModelLoadError, match="does not exist"):
            HFModel(missing)
