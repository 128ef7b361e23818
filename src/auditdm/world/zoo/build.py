"""Build small LLaVA-style vision-language models from scratch, with no download.

A zoo model is a CLIP vision tower and a Llama text model joined by LLaVA's projector, a
word-level tokenizer over the world's vocabulary, and a processor that any transformers
user can load: the saved folder goes through the same `HFModel` as a real model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

SPECIAL_TOKENS: dict[str, str] = {
    "pad": "<pad>",
    "unk": "<unk>",
    "bos": "<s>",
    "eos": "</s>",
    "image": "<image>",
}

# Times ("3:30") first so the colon does not split them; then words, then lone symbols.
WORD_PATTERN = r"\d+:\d+|\w+|[^\w\s]"

# One line per message, "role : content"; an assistant turn ends with eos so the model
# learns to stop. Whitespace never becomes a token, so the layout is only for reading.
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{ message['role'] }} :"
    "{%- if message['content'] is string %} {{ message['content'] }}"
    "{%- else -%}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' %} <image>"
    "{%- elif part['type'] == 'text' %} {{ part['text'] }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- if message['role'] == 'assistant' %}{{ eos_token }}{% endif -%}"
    "{{ '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt %}assistant :{% endif -%}"
)
TEMPLATE_WORDS = ("system", "user", "assistant", ":")

# Numbers and times are spelled one character at a time ("53" -> "5" "##3", "3:30" -> "3"
# "##:" "##3" "##0"): a model then reads a sign digit by digit and a clock hand by hand,
# as a handful of frequent tokens instead of a hundred rare ones.
CONTINUATION = "##"
NUMBER_PIECES = tuple(f"{prefix}{c}" for prefix in ("", CONTINUATION) for c in "0123456789:")

# Text model and projector start from N(0, 0.08), not Llama's 0.02: a narrow (128-wide)
# model trained from scratch learns to route each question to its image token only with
# the larger start (ref-a, 1,500 steps: 38 % -> 53 % held-out; 0.15 fell back to 36 %).
TEXT_INIT_STD = 0.08


@dataclass(frozen=True)
class VLMSize:
    """Shape of a zoo model: vision tower, text model, and the input resolution.

    `image_size` is the side the processor resizes every image to; the model sees
    `(image_size // patch_size) ** 2` image tokens. `mlp_ratio` sets both MLP widths.
    """

    vision_hidden: int
    vision_layers: int
    vision_heads: int
    text_hidden: int
    text_layers: int
    text_heads: int
    image_size: int
    patch_size: int
    mlp_ratio: int = 2

    @property
    def image_tokens(self) -> int:
        """Number of image tokens one image expands to."""
        return (self.image_size // self.patch_size) ** 2


def build_tokenizer(words: Iterable[str]) -> PreTrainedTokenizerFast:
    """A lowercase tokenizer over the specials, the chat template words and `words`.

    Words are whole tokens; anything with a digit is spelled with `NUMBER_PIECES` and
    decodes back to one word. Ids follow first appearance in that order, so the same words
    always give the same vocabulary. Unknown words map to `<unk>`.
    """
    vocab: dict[str, int] = {}
    whole_words = (w.lower() for w in words if not any(c.isdigit() for c in w))
    for word in [*SPECIAL_TOKENS.values(), *TEMPLATE_WORDS, *NUMBER_PIECES, *whole_words]:
        vocab.setdefault(word, len(vocab))
    model = Tokenizer(
        models.WordPiece(vocab, unk_token=SPECIAL_TOKENS["unk"], continuing_subword_prefix=CONTINUATION)
    )
    model.normalizer = normalizers.Lowercase()
    # Keep the matches, drop what lies between them (whitespace).
    model.pre_tokenizer = pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="removed", invert=True)
    # Joins "##" pieces onto the piece before; everything else is joined with spaces.
    model.decoder = decoders.WordPiece(prefix=CONTINUATION, cleanup=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=model,
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
        extra_special_tokens={"image_token": SPECIAL_TOKENS["image"]},
        chat_template=CHAT_TEMPLATE,
        # The decoder already spaces words; the clean-up would glue "?" onto the word before.
        clean_up_tokenization_spaces=False,
    )


def build_processor(
    tokenizer: PreTrainedTokenizerFast, image_size: int, patch_size: int
) -> LlavaProcessor:
    """A LLaVA processor that stretches any RGB image to `image_size` square.

    The PIL backend keeps preprocessing identical with or without torchvision. Every
    `<image>` in the text expands to `(image_size // patch_size) ** 2` image tokens.
    """
    square = {"height": image_size, "width": image_size}
    image_processor = CLIPImageProcessorPil(size=square, crop_size=square, do_center_crop=False)
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        # The CLIP tower adds a CLS token and the "default" strategy drops it again.
        num_additional_image_tokens=1,
        vision_feature_select_strategy="default",
        chat_template=tokenizer.chat_template,
    )


def build_model(size: VLMSize, tokenizer: PreTrainedTokenizerFast) -> LlavaForConditionalGeneration:
    """A randomly initialised LLaVA model whose vocabulary and special ids match `tokenizer`."""
    vision = CLIPVisionConfig(
        hidden_size=size.vision_hidden,
        intermediate_size=size.vision_hidden * size.mlp_ratio,
        num_hidden_layers=size.vision_layers,
        num_attention_heads=size.vision_heads,
        image_size=size.image_size,
        patch_size=size.patch_size,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.text_hidden,
        intermediate_size=size.text_hidden * size.mlp_ratio,
        num_hidden_layers=size.text_layers,
        num_attention_heads=size.text_heads,
        num_key_value_heads=size.text_heads,
        # Room for the image tokens plus a conversation (an auditor's: three prompts and replies).
        max_position_embeddings=size.image_tokens + 512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        initializer_range=TEXT_INIT_STD,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.image_token_id,
        image_seq_length=size.image_tokens,
        vision_feature_select_strategy="default",
        # The last layer: a tiny tower cannot spare the one LLaVA's default skips.
        vision_feature_layer=-1,
    )
    model = LlavaForConditionalGeneration(config)
    generation = model.generation_config
    generation.pad_token_id = tokenizer.pad_token_id
    generation.bos_token_id = tokenizer.bos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    return model


def count_parameters(model: LlavaForConditionalGeneration) -> dict[str, int]:
    """Parameter counts of the vision tower, projector, text model (with head) and total."""
    vision = sum(p.numel() for p in model.model.vision_tower.parameters())
    projector = sum(p.numel() for p in model.model.multi_modal_projector.parameters())
    total = sum(p.numel() for p in model.parameters())
    return {"vision": vision, "projector": projector, "text": total - vision - projector, "total": total}


def save_vlm(model: LlavaForConditionalGeneration, processor: LlavaProcessor, folder: str | Path) -> Path:
    """Save model (safetensors) and processor so `AutoProcessor` and
    `AutoModelForImageTextToText` load them back from `folder` offline."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder
