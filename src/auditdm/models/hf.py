"""The transformers backend: any image-text-to-text model with a chat template, from a
local folder (loaded offline) or a hub id. World models load through it too."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import AutoModelForImageTextToText, AutoProcessor

from auditdm.errors import UserError
from auditdm.prompts import chat


class ModelLoadError(UserError):
    """A model folder is missing, incomplete, or not an image-text-to-text model."""


class HFModel:
    """A transformers VLM: greedy replies answer questions; sampled ones are the auditor's
    questions, captions and commands.

    ``path`` is a local folder (loaded offline) or a hub id, holding a processor with a chat
    template and safetensors weights that `AutoModelForImageTextToText` loads. `dtype=None`
    keeps the dtype the weights were saved in; `device` is any torch device ("cuda:0").
    Prompts are run `batch_size` at a time, left-padded; `progress` shows a bar.
    `max_new_tokens` is the reply length when a call does not say (short: answers).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        device: str = "cpu",
        dtype: str | torch.dtype | None = None,
        batch_size: int = 32,
        max_new_tokens: int = 8,
        progress: bool = False,
    ) -> None:
        self.name = name or f"hf:{path}"
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.progress = progress
        where, dtype = placement(device, dtype)  # bad values fail before any weight is read
        source = resolve(path)
        self.processor = _load(AutoProcessor, source, backend="pil")
        if getattr(self.processor, "chat_template", None) is None:
            raise ModelLoadError(f"model {source} has no chat template")
        self.model = _load(AutoModelForImageTextToText, source, dtype=dtype, use_safetensors=True)
        self.model.to(where).eval()

    def confidences(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[tuple[str, float]]:
        """Greedy replies, each with the model's probability of it: the product of its
        tokens' probabilities (the end-of-reply token left out)."""
        return self._run(images, prompts, self.max_new_tokens, 0.0, 0, confidence=True)

    def generate(
        self,
        images: Sequence[Image.Image],
        prompts: Sequence[str],
        *,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[str]:
        """The reply to `prompts[i]` about `images[i]`, for every i, stripped.

        `temperature` 0 decodes greedily; above 0 samples, reproducibly from `seed` for the
        same inputs in the same batches. `max_new_tokens` defaults to the model's.
        """
        replies = self._run(images, prompts, max_new_tokens or self.max_new_tokens, temperature, seed)
        return [text for text, _ in replies]

    def num_parameters(self) -> int:
        """Number of parameters of the model."""
        return int(self.model.num_parameters())

    def _run(self, images: Sequence[Image.Image], prompts: Sequence[str], max_new_tokens: int, temperature: float,
             seed: int, confidence: bool = False) -> list[tuple[str, float]]:  # fmt: skip
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        torch.manual_seed(seed)
        replies: list[tuple[str, float]] = []
        starts = range(0, len(images), self.batch_size)
        for start in tqdm(starts, desc=self.name, disable=not self.progress, leave=False):
            end = start + self.batch_size
            replies += self._generate_batch(images[start:end], prompts[start:end], max_new_tokens, temperature,
                                            confidence)  # fmt: skip
        return replies

    @torch.inference_mode()
    def _generate_batch(
        self, images: Sequence[Image.Image], prompts: Sequence[str], max_new_tokens: int, temperature: float,
        confidence: bool,
    ) -> list[tuple[str, float]]:
        """The replies, each with its probability when ``confidence`` (else 1.0)."""
        texts = self.processor.apply_chat_template(
            [chat(prompt) for prompt in prompts], add_generation_prompt=True, tokenize=False
        )
        inputs = self.processor(
            text=texts, images=[image.convert("RGB") for image in images], padding=True, padding_side="left",
            return_tensors="pt",
        ).to(self.model.device, dtype=self.model.dtype)  # fmt: skip
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:  # plain sampling from the model's distribution: no top-k or top-p cut
            sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, return_dict_in_generate=True,
                                     output_scores=confidence, **sampling)  # fmt: skip
        # With left padding every prompt ends at the same column; what follows is new.
        new_tokens = output.sequences[:, inputs["input_ids"].shape[1] :]
        texts = [text.strip() for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]
        if not confidence:
            return [(text, 1.0) for text in texts]
        log_probs = self.model.compute_transition_scores(output.sequences, output.scores, normalize_logits=True)
        tokenizer = self.processor.tokenizer
        ends = torch.tensor([tokenizer.eos_token_id, tokenizer.pad_token_id], device=new_tokens.device)
        answer = (~torch.isin(new_tokens, ends)).cumprod(dim=1)  # up to the first end token: then padding
        probabilities = torch.exp((log_probs.float() * answer).sum(dim=1))
        return list(zip(texts, probabilities.tolist()))


def placement(device: str, dtype: str | torch.dtype | None) -> tuple[torch.device, torch.dtype | None]:
    """``--device`` and ``--dtype`` as torch objects, or one clear error for either."""
    try:
        where = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"--device {device!r}: not a device (cpu, cuda, cuda:0, mps, ...)") from None
    if where.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available here (torch {torch.__version__}, no usable GPU)")
    if where.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {device}: MPS is not available here")
    if dtype is None or isinstance(dtype, torch.dtype):
        return where, dtype
    found = getattr(torch, dtype, None)
    if not isinstance(found, torch.dtype) or not found.is_floating_point:
        raise UserError(f"--dtype {dtype!r}: not a floating-point torch dtype (float32, bfloat16, float16)")
    return where, found


def resolve(path: str | Path) -> Path | str:
    """A local folder, or a hub id ("org/name": neither absolute nor relative-looking)."""
    folder = Path(path)
    if folder.is_dir():
        return folder
    text = str(path)
    if text.startswith(("/", ".", "~")) or text.count("/") != 1:
        raise ModelLoadError(f"model folder {folder} does not exist")
    return text


def _load(auto_class: Any, source: Path | str, **kwargs: Any) -> Any:
    """`auto_class.from_pretrained(source)`, a folder from local files only (a hub id may
    download unless HF_HUB_OFFLINE is set), failures as ModelLoadError."""
    try:
        return auto_class.from_pretrained(source, local_files_only=isinstance(source, Path), **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"cannot load {auto_class.__name__} from {source}: {error}") from error


def load(name: str, **options: Any) -> HFModel:
    """``hf:NAME``: the model in folder or hub id ``name``."""
    return HFModel(name, name=f"hf:{name}", **options)
