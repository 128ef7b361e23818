"""Tiny randomly initialised models of the paper's model families, built offline from their
configs: each family's model class, processor, image processor (PIL backend), special tokens
and chat format, so that the ``hf:`` backend meets them as it would meet the real ones.

``build(family, folder)`` saves one and returns the folder. Qwen2-VL, Qwen2.5-VL and SmolVLM
processors need torchvision (their video processors); where it is missing, their folders are
saved without a processor config, as the backend then finds them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import transformers as tf
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from auditdm.prompts import PROMPTS

WORDS = sorted({word for prompts in PROMPTS.values() for prompt in prompts.values() for word in prompt.split()}
               | set("what color is the how many are there ? yes no red green blue one two".split()))  # fmt: skip
TINY_TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
             "num_key_value_heads": 1, "head_dim": 16}  # fmt: skip
TINY_SIGLIP = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
               "image_size": 32, "patch_size": 8}  # fmt: skip


def tokenizer(specials: list[str], **tokens: Any) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the auditor prompts' words and a family's special tokens."""
    vocab: dict[str, int] = {}
    for word in ["<pad>", "<unk>", "<bos>", "<eos>", *specials, *WORDS]:
        vocab.setdefault(word, len(vocab))
    model = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.Split(Regex(r"\S+"), behavior="removed", invert=True)
    return PreTrainedTokenizerFast(tokenizer_object=model, unk_token="<unk>", **tokens)


def _ids(tok: PreTrainedTokenizerFast, **tokens: str) -> dict[str, int]:
    return {name: tok.convert_tokens_to_ids(token) for name, token in tokens.items()}


def paligemma() -> tuple[Any, Any]:
    """PaliGemma: no chat template; the processor puts the image tokens and <bos> first."""
    tok = tokenizer(["<image>"], pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
                    extra_special_tokens={"image_token": "<image>"})  # fmt: skip
    image_processor = tf.SiglipImageProcessorPil(size={"height": 32, "width": 32}, image_seq_length=16)
    processor = tf.PaliGemmaProcessor(image_processor=image_processor, tokenizer=tok)  # adds its <loc> tokens
    config = tf.PaliGemmaConfig(vision_config=TINY_SIGLIP, text_config={**TINY_TEXT, "model_type": "gemma",
                                "vocab_size": len(tok)}, image_token_index=tok.convert_tokens_to_ids("<image>"),
                                projection_dim=32, hidden_size=32)  # fmt: skip
    return tf.PaliGemmaForConditionalGeneration(config), processor


GEMMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m.role == 'assistant' else m.role }}\n"
    "{% for c in m.content %}{% if c.type == 'image' %}<start_of_image>{% else %}{{ c.text }}{% endif %}{% endfor %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def gemma3() -> tuple[Any, Any]:
    """Gemma3: a reply ends with <end_of_turn>, which only its generation config names."""
    specials = ["<start_of_image>", "<end_of_image>", "<image_soft_token>", "<start_of_turn>", "<end_of_turn>"]
    tok = tokenizer(specials, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
                    extra_special_tokens={"image_token": "<image_soft_token>", "boi_token": "<start_of_image>",
                                          "eoi_token": "<end_of_image>"})  # fmt: skip
    processor = tf.Gemma3Processor(image_processor=tf.Gemma3ImageProcessorPil(size={"height": 32, "width": 32}),
                                   tokenizer=tok, chat_template=GEMMA3_TEMPLATE, image_seq_length=4)  # fmt: skip
    ids = _ids(tok, image_token_index="<image_soft_token>", boi_token_index="<start_of_image>",
               eoi_token_index="<end_of_image>")  # fmt: skip
    config = tf.Gemma3Config(vision_config=TINY_SIGLIP, mm_tokens_per_image=4, **ids,
                             text_config={**TINY_TEXT, "vocab_size": len(tok), "sliding_window": 16})  # fmt: skip
    model = tf.Gemma3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = [tok.eos_token_id, tok.convert_tokens_to_ids("<end_of_turn>")]
    return model, processor


QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{% for c in m.content %}{% if c.type == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c.text }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def qwen(version: str) -> tuple[Any, Any]:
    """Qwen2-VL ("2") or Qwen2.5-VL ("2.5"): no <bos>, <|endoftext|> pads."""
    specials = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", "<|im_start|>", "<|im_end|>",
                "<|endoftext|>"]  # fmt: skip
    tok = tokenizer(specials, pad_token="<|endoftext|>", eos_token="<|im_end|>",
                    extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                                          "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"})  # fmt: skip
    image_processor = tf.Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=56 * 56, patch_size=14,
                                                  merge_size=2, temporal_patch_size=2)  # fmt: skip
    ids = _ids(tok, image_token_id="<|image_pad|>", video_token_id="<|video_pad|>",
               vision_start_token_id="<|vision_start|>", vision_end_token_id="<|vision_end|>")  # fmt: skip
    text = {**TINY_TEXT, "vocab_size": len(tok), "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
            "bos_token_id": None, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    vision = {"depth": 1, "hidden_size": 32, "num_heads": 2, "patch_size": 14, "spatial_merge_size": 2,
              "temporal_patch_size": 2}  # fmt: skip
    if version == "2.5":
        vision |= {"intermediate_size": 64, "out_hidden_size": 32, "window_size": 56, "fullatt_block_indexes": [0]}
        model: Any = tf.Qwen2_5_VLForConditionalGeneration(tf.Qwen2_5_VLConfig(vision_config=vision, text_config=text,
                                                                                **ids))  # fmt: skip
        kind: Any = tf.Qwen2_5_VLProcessor
    else:
        vision |= {"embed_dim": 32, "mlp_ratio": 2}
        model = tf.Qwen2VLForConditionalGeneration(tf.Qwen2VLConfig(vision_config=vision, text_config=text, **ids))
        kind = tf.Qwen2VLProcessor
    return model, _processor(kind, image_processor, tok, QWEN_TEMPLATE)


IDEFICS_TEMPLATE = (
    "<|im_start|>{% for m in messages %}{{ m.role | capitalize }}:{% for c in m.content %}{% if c.type == 'image' %}"
    "<image>{% else %} {{ c.text }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def idefics(smol: bool) -> tuple[Any, Any]:
    """Idefics3, or SmolVLM (its descendant, whose processor also wants a video processor)."""
    specials = ["<fake_token_around_image>", "<image>", "<global-img>", "<end_of_utterance>", "<|im_start|>"]
    tok = tokenizer(specials, pad_token="<pad>", bos_token="<bos>", eos_token="<end_of_utterance>",
                    extra_special_tokens={"image_token": "<image>", "fake_image_token": "<fake_token_around_image>",
                                          "global_image_token": "<global-img>",
                                          "end_of_utterance_token": "<end_of_utterance>"})  # fmt: skip
    sizes = {"size": {"longest_edge": 32}, "max_image_size": {"longest_edge": 32}, "do_image_splitting": False}
    config = {"vision_config": {k: v for k, v in TINY_SIGLIP.items()}, "scale_factor": 2,
              "text_config": {**TINY_TEXT, "model_type": "llama", "vocab_size": len(tok)},
              "image_token_id": tok.convert_tokens_to_ids("<image>")}  # fmt: skip
    if smol:
        model: Any = tf.SmolVLMForConditionalGeneration(tf.SmolVLMConfig(**config))
        return model, _processor(tf.SmolVLMProcessor, tf.SmolVLMImageProcessorPil(**sizes), tok, IDEFICS_TEMPLATE,
                                 image_seq_len=4)  # fmt: skip
    model = tf.Idefics3ForConditionalGeneration(tf.Idefics3Config(**config))
    return model, tf.Idefics3Processor(image_processor=tf.Idefics3ImageProcessorPil(**sizes), tokenizer=tok,
                                       image_seq_len=4, chat_template=IDEFICS_TEMPLATE)  # fmt: skip


def _processor(kind: Any, image_processor: Any, tok: Any, template: str, **options: Any) -> Any:
    """The processor, or (no torchvision for its video processor) its parts and a config that
    names it, as a folder saved where torchvision is installed would hold them."""
    try:
        return kind(image_processor=image_processor, tokenizer=tok, video_processor=None, chat_template=template,
                    **options)
    except (AttributeError, ImportError):  # the placeholder of a missing video processor; num2words
        return _Parts(kind.__name__, image_processor, tok, template)


class _Parts:
    def __init__(self, name: str, image_processor: Any, tok: Any, template: str) -> None:
        self.name, self.image_processor, self.tok, self.template = name, image_processor, tok, template

    def save_pretrained(self, folder: Path) -> None:
        self.image_processor.save_pretrained(folder)
        self.tok.save_pretrained(folder)
        (folder / "processor_config.json").write_text(json.dumps({"processor_class": self.name}))
        (folder / "chat_template.jinja").write_text(self.template)


FAMILIES: dict[str, Callable[[], tuple[Any, Any]]] = {
    "paligemma": paligemma, "gemma3": gemma3, "idefics3": lambda: idefics(smol=False),
    "smolvlm": lambda: idefics(smol=True), "qwen2-vl": lambda: qwen("2"), "qwen2.5-vl": lambda: qwen("2.5"),
}  # fmt: skip
NEED_TORCHVISION = ("smolvlm", "qwen2-vl", "qwen2.5-vl")


def build(family: str, folder: Path) -> Path:
    """Save a tiny random model of ``family`` in ``folder``."""
    model, processor = FAMILIES[family]()
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder
