"""Tiny random diffusers pipelines for tests, built offline as diffusers' own tests build
them: a Stable Diffusion text-to-image pipeline (G) and an InstructPix2Pix editing one (E)."""

from __future__ import annotations

import json
import string
from pathlib import Path


def _tokenizer(folder: Path) -> object:
    """A CLIP tokenizer over single characters (no merges), written locally: no downloads."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for char in sorted(set(string.printable) - set(string.whitespace)):
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def _components(tokenizer: object, in_channels: int) -> dict[str, object]:
    """diffusers' tiny test configs, smaller still: images of 32 px, a few thousand weights."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=16, in_channels=in_channels,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=8,
                                norm_num_groups=2)  # fmt: skip
    vae = AutoencoderKL(block_out_channels=[4, 8], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        norm_num_groups=2)  # fmt: skip
    text = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=8,
                                        intermediate_size=16, num_attention_heads=2, num_hidden_layers=1,
                                        vocab_size=len(tokenizer)))  # type: ignore[arg-type]  # fmt: skip
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)  # fmt: skip
    return {"unet": unet, "vae": vae, "text_encoder": text, "tokenizer": tokenizer, "scheduler": scheduler,
            "safety_checker": None, "feature_extractor": None, "image_encoder": None}  # fmt: skip


def build_pipelines(folder: Path) -> tuple[Path, Path]:
    """Save a tiny text-to-image pipeline and a tiny editing pipeline into ``folder``; returns
    their folders (for ``--generator diffusers:FOLDER`` and ``--editor diffusers:FOLDER``)."""
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

    tokenizer = _tokenizer(folder)
    StableDiffusionPipeline(**_components(tokenizer, 4), requires_safety_checker=False).save_pretrained(folder / "sd")
    StableDiffusionInstructPix2PixPipeline(**_components(tokenizer, 8),  # the image's latents ride along: 4 + 4
                                           requires_safety_checker=False).save_pretrained(folder / "ip2p")  # fmt: skip
    return folder / "sd", folder / "ip2p"


def synthesis_args(pipelines: tuple[Path, Path]) -> list[str]:
    """The audit flags that make the tiny pipelines G and E, one denoising step each."""
    return ["--generator", f"diffusers:{pipelines[0]}", "--editor", f"diffusers:{pipelines[1]}",
            "--synthesis-steps", "1"]  # fmt: skip
