"""Zoo model building blocks: tokenizer, processor, model, saving, batch encoding, loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from auditdm.prompts import chat
from auditdm.world.zoo.build import (
    SPECIAL_TOKENS,
    VLMSize,
    build_model,
    build_processor,
    build_tokenizer,
    count_parameters,
    save_vlm,
)
from auditdm.world.zoo.sft import Example, TrainConfig, answer_loss, conversation, encode_batch, train_vlm

WORDS = "what time is it the clock shows how many red circles are there ? , 3:30 42".split()
SMALL = VLMSize(
    vision_hidden=32, vision_layers=1, vision_heads=2,
    text_hidden=32, text_layers=1, text_heads=2,
    image_size=32, patch_size=8,
)  # fmt: skip


def test_tokenizer_round_trips_words_punctuation_and_times() -> None:
    tokenizer = build_tokenizer(WORDS)
    text = "What time is it? The clock shows 3:30, 42 red circles."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[:5] == ["what", "time", "is", "it", "?"]
    # Numbers and times are spelled piece by piece, and decode back to whole words.
    assert tokens[8:14] == ["3", "##:", "##3", "##0", ",", "4"] and tokens[14] == "##2"
    assert tokens[-1] == SPECIAL_TOKENS["unk"]  # "." was never given
    words = "what time is it ? the clock shows 3:30 , 42 red circles"
    assert tokenizer.decode(ids[:-1]) == words
    with_specials = [tokenizer.bos_token_id, *ids[:-1], tokenizer.eos_token_id, tokenizer.pad_token_id]
    assert tokenizer.decode(with_specials, skip_special_tokens=True) == words


def test_vocabulary_is_deterministic_and_deduplicated() -> None:
    first = build_tokenizer(WORDS + ["red", "Red"])
    assert first.get_vocab() == build_tokenizer(WORDS).get_vocab()
    assert sorted(first.get_vocab().values()) == list(range(len(first)))
    assert [first.convert_ids_to_tokens(i) for i in range(5)] == list(SPECIAL_TOKENS.values())


def test_chat_template_renders_turns_and_generation_prompt() -> None:
    tokenizer = build_tokenizer(WORDS)
    prompt = tokenizer.apply_chat_template(chat("how many red"), tokenize=False, add_generation_prompt=True)
    assert prompt == "<s>user : <image> how many red\nassistant :"
    two_turns = chat("how many red circles ?", "42") + [{"role": "user", "content": "what time is it ?"}]
    assert tokenizer.apply_chat_template(two_turns, tokenize=False) == (
        "<s>user : <image> how many red circles ?\nassistant : 42</s>\nuser : what time is it ?\n"
    )


@pytest.mark.parametrize(("image_size", "patch_size", "tokens"), [(32, 8, 16), (64, 8, 64), (128, 16, 64)])
def test_processor_expands_the_image_token(image_size: int, patch_size: int, tokens: int) -> None:
    tokenizer = build_tokenizer(WORDS)
    processor = build_processor(tokenizer, image_size, patch_size)
    text = processor.apply_chat_template(chat("what time is it ?"), tokenize=False, add_generation_prompt=True)
    batch = processor(text=[text], images=[Image.new("RGB", (200, 90), "red")], return_tensors="pt")
    assert batch["pixel_values"].shape == (1, 3, image_size, image_size)
    assert (batch["input_ids"] == processor.image_token_id).sum() == tokens
    assert VLMSize(1, 1, 1, 1, 1, 1, image_size, patch_size).image_tokens == tokens


def test_parameter_counts_of_a_3m_model() -> None:
    size = VLMSize(128, 4, 4, 256, 4, 4, image_size=128, patch_size=16)
    counts = count_parameters(build_model(size, build_tokenizer(WORDS)))
    assert counts["total"] == counts["vision"] + counts["projector"] + counts["text"]
    assert 3_000_000 < counts["total"] < 3_600_000


def test_saved_model_reloads_offline_with_identical_logits(tmp_path: Path) -> None:
    tokenizer = build_tokenizer(WORDS)
    model = build_model(SMALL, tokenizer).eval()
    processor = build_processor(tokenizer, SMALL.image_size, SMALL.patch_size)
    save_vlm(model, processor, tmp_path)

    loaded_processor = AutoProcessor.from_pretrained(tmp_path, backend="pil")
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path, use_safetensors=True)
    text = processor.apply_chat_template(chat("what time is it ?"), tokenize=False, add_generation_prompt=True)
    image = Image.new("RGB", (128, 128), "blue")
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    reloaded_inputs = loaded_processor(text=[text], images=[image], return_tensors="pt")
    assert all(torch.equal(inputs[key], reloaded_inputs[key]) for key in inputs)
    decoded = loaded_processor.decode(inputs["input_ids"][0], skip_special_tokens=True)
    assert decoded == "user : what time is it ? assistant :"
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, loaded.eval()(**reloaded_inputs).logits)
    assert loaded.generation_config.eos_token_id == tokenizer.eos_token_id


def examples() -> list[Example]:
    return [
        (Image.new("RGB", (64, 64), "red"), [("how many red circles are there ?", "42")]),
        (Image.new("RGB", (128, 128), "blue"),
         [("what time is it ?", "the clock shows 3:30"), ("how many red circles ?", "42 red circles")]),
    ]  # fmt: skip


def test_encode_batch_labels_only_the_answers_and_their_eos() -> None:
    tokenizer = build_tokenizer(WORDS)
    processor = build_processor(tokenizer, SMALL.image_size, SMALL.patch_size)
    batch = encode_batch(processor, examples())
    texts = processor.apply_chat_template([conversation(turns) for _, turns in examples()], tokenize=False)
    reference = processor(text=texts, images=[i for i, _ in examples()], padding=True, return_tensors="pt")
    assert all(torch.equal(batch[key], reference[key]) for key in reference)
    for labels, (_, turns) in zip(batch["labels"], examples()):
        assert tokenizer.decode(labels[labels != -100]) == " ".join(f"{answer} </s>" for _, answer in turns)


def test_a_conversation_opens_like_a_single_question_prompt() -> None:
    tokenizer = build_tokenizer(WORDS)
    single = tokenizer.apply_chat_template(chat("what time is it ?"), tokenize=False, add_generation_prompt=True)
    dialogue = tokenizer.apply_chat_template(conversation([("what time is it ?", "3:30"), ("how many ?", "42")]),
                                             tokenize=False)  # fmt: skip
    assert dialogue.startswith(single + " 3:30</s>")


def test_answer_loss_equals_the_model_loss() -> None:
    tokenizer = build_tokenizer(WORDS)
    processor = build_processor(tokenizer, SMALL.image_size, SMALL.patch_size)
    model = build_model(SMALL, tokenizer).eval()
    batch = encode_batch(processor, examples())
    with torch.no_grad():
        assert torch.allclose(answer_loss(model, batch), model(**batch).loss)


def test_training_is_deterministic() -> None:
    tokenizer = build_tokenizer(WORDS)
    processor = build_processor(tokenizer, SMALL.image_size, SMALL.patch_size)
    config = TrainConfig(steps=3, batch_size=2)

    def run() -> list[float]:
        torch.manual_seed(0)
        model = build_model(SMALL, tokenizer)
        return train_vlm(model, processor, iter([examples()] * 3), config, progress=False)

    assert run() == run()
