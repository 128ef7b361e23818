"""The transformers backend: any image-text-to-text model, from a local folder (loaded
offline) or a hub id. World models load through it too.

Checked families (tests/models/test_families.py): LLaVA, Idefics3, Gemma3, PaliGemma, and,
where torchvision is installed (their processors need it), Qwen2-VL, Qwen2.5-VL and SmolVLM.
Prompts go through the model's chat template; PaliGemma, which has none, gets the prompt
format it was trained on: the image, then ``answer en QUESTION``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import AutoModelForImageTextToText, AutoProcessor

from auditdm.errors import UserError
from auditdm.models import begun
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
    A hub id loads at `revision` (a branch, tag or commit; None: the default branch);
    `trust_remote_code` lets a model whose code lives on the hub run that code.
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
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.name = name or f"hf:{path}"
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.progress = progress
        where, dtype = placement(device, dtype)  # bad values fail before any weight is read
        source = resolve(path)
        self.processor = load_processor(source, revision, trust_remote_code)
        self.model = load_pretrained(AutoModelForImageTextToText, source, revision, dtype=dtype, use_safetensors=True,
                                     trust_remote_code=trust_remote_code)  # fmt: skip
        self.model.to(where).eval()
        if self.model.generation_config.pad_token_id is None:
            self.model.generation_config.pad_token_id = self.processor.tokenizer.pad_token_id

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
        starts: Sequence[str] = (),
    ) -> list[str]:
        """The reply to `prompts[i]` about `images[i]`, for every i, stripped.

        `temperature` 0 decodes greedily; above 0 samples, reproducibly from `seed` for the
        same inputs in the same batches. `max_new_tokens` defaults to the model's, and does
        not count the words `starts[i]` that reply i is given to begin with.
        """
        replies = self._run(images, prompts, max_new_tokens or self.max_new_tokens, temperature, seed, starts=starts)
        return [text for text, _ in replies]

    def num_parameters(self) -> int:
        """Number of parameters of the model."""
        return int(self.model.num_parameters())

    def _run(self, images: Sequence[Image.Image], prompts: Sequence[str], max_new_tokens: int, temperature: float,
             seed: int, confidence: bool = False, starts: Sequence[str] = ()) -> list[tuple[str, float]]:  # fmt: skip
        if len(images) != len(prompts) or (starts and len(starts) != len(prompts)):
            raise ValueError(f"{len(images)} images, {len(prompts)} prompts and {len(starts)} starts")
        starts = starts or [""] * len(prompts)
        if temperature > 0:  # only sampling draws: a greedy call leaves torch's random state to its caller
            torch.manual_seed(seed)
        replies: list[tuple[str, float]] = []
        for first in tqdm(range(0, len(images), self.batch_size), desc=self.name, disable=not self.progress,
                          leave=False):  # fmt: skip
            batch = slice(first, first + self.batch_size)
            replies += self._generate_batch(images[batch], prompts[batch], max_new_tokens, temperature, confidence,
                                            starts[batch])  # fmt: skip
        return replies

    @torch.inference_mode()
    def _generate_batch(
        self, images: Sequence[Image.Image], prompts: Sequence[str], max_new_tokens: int, temperature: float,
        confidence: bool, starts: Sequence[str],
    ) -> list[tuple[str, float]]:
        """The replies, each with its probability when ``confidence`` (else 1.0; the words a
        reply is given to start with are not counted in it)."""
        inputs = encode(self.processor, prompts, images, padding_side="left", starts=starts)
        inputs = inputs.to(self.model.device, dtype=self.model.dtype)
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:  # plain sampling from the model's distribution: no top-k or top-p cut
            sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, return_dict_in_generate=True,
                                     output_scores=confidence, **sampling)  # fmt: skip
        # With left padding every prompt ends at the same column; what follows is new.
        new_tokens = output.sequences[:, inputs["input_ids"].shape[1] :]
        texts = [begun(start, text)
                 for start, text in zip(starts, self.processor.batch_decode(new_tokens, skip_special_tokens=True))]
        if not confidence:
            return [(text, 1.0) for text in texts]
        log_probs = self.model.compute_transition_scores(output.sequences, output.scores, normalize_logits=True)
        ends = torch.tensor(self._end_tokens(), device=new_tokens.device)
        answer = (~torch.isin(new_tokens, ends)).cumprod(dim=1)  # up to the first end token: then padding
        probabilities = torch.exp((log_probs.float() * answer).sum(dim=1))
        return list(zip(texts, probabilities.tolist()))

    def _end_tokens(self) -> list[int]:
        """The tokens that end a reply: the generation config's (end of turn too), end and padding."""
        configured = self.model.generation_config.eos_token_id
        tokenizer = self.processor.tokenizer
        ends = [*(configured if isinstance(configured, list) else [configured]), tokenizer.eos_token_id,
                tokenizer.pad_token_id]  # fmt: skip
        return [token for token in ends if token is not None]


def encode(processor: Any, prompts: Sequence[str], images: Sequence[Image.Image], padding_side: str,
           replies: Sequence[str] | None = None, starts: Sequence[str] = ()) -> Any:  # fmt: skip
    """The model inputs of ``prompts[i]`` about ``images[i]`` (followed by ``replies[i]``, to
    train on; or by the words ``starts[i]`` its reply is to begin with), in the model's own
    prompt format; one image per prompt."""
    if _has_chat_template(processor):
        conversations = [chat(p) if replies is None else chat(p, r) for p, r in zip(prompts, replies or prompts)]
        texts = processor.apply_chat_template(conversations, add_generation_prompt=replies is None, tokenize=False)
        texts = [text + start for text, start in zip(texts, starts)] if any(starts) else texts
        extra = {}
    elif any(starts):  # its prompt format ends the prompt after the words
        raise UserError("a model without a chat template (PaliGemma) cannot be given the start of its reply")
    else:  # PaliGemma: the image, then the prompt (the processor adds <bos> and "\n"); an answer is the suffix
        texts = [processor.image_token + PALIGEMMA_PREFIX + prompt for prompt in prompts]
        extra = {} if replies is None else {"suffix": list(replies)}
    # One list of images per prompt: the form every family's processor takes (Gemma3's only).
    return processor(text=texts, images=[[image.convert("RGB")] for image in images], padding=True,
                     padding_side=padding_side, return_tensors="pt", **extra)  # fmt: skip


PALIGEMMA_PREFIX = "answer en "  # the task prefix of PaliGemma's visual question answering


def _has_chat_template(processor: Any) -> bool:
    return getattr(processor, "chat_template", None) is not None


def load_processor(source: Path | str, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    """The model's processor (images through PIL, as on every machine), with a pad token: a
    tokenizer without one pads with its end token. A processor that needs a library which is
    not installed says which; one with no prompt format we know (a chat template, or
    PaliGemma's) is an error."""
    from transformers.utils import is_torchvision_available

    try:
        processor = load_pretrained(AutoProcessor, source, revision=revision, trust_remote_code=trust_remote_code,
                                    backend="pil")  # fmt: skip
    except (ImportError, ModelLoadError, AttributeError) as error:  # ImportError: transformers names the package
        if not is_torchvision_available() and "video_processor" in str(error).lower().replace(" ", "_"):
            raise ModelLoadError(f"the processor of {source} needs torchvision (for its video processor): "
                                 "pip install torchvision, the build that matches your torch") from None  # fmt: skip
        if isinstance(error, ModelLoadError):  # it names the source already
            raise
        raise ModelLoadError(f"cannot load the processor of {source}: {error}") from None
    if not _has_chat_template(processor) and type(processor).__name__ != "PaliGemmaProcessor":
        raise ModelLoadError(f"model {source} has no chat template")
    tokenizer = processor.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return processor


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


@functools.cache
def _from_cache_only(repo: str, revision: str | None) -> bool:
    """Whether a hub id must load from the local cache: the hub is off (HF_HUB_OFFLINE) or
    does not answer within seconds (then a cached copy is used; without one, an error now,
    not after minutes of retries for every file)."""
    from huggingface_hub import constants, model_info, try_to_load_from_cache

    if constants.HF_HUB_OFFLINE:
        return True
    try:
        model_info(repo, revision=revision, timeout=HUB_TIMEOUT)
        return False
    except Exception as error:  # no network, a proxy, a private or missing repo: all end the same way
        if isinstance(try_to_load_from_cache(repo, "config.json", revision=revision), str):
            return True
        raise ModelLoadError(f"cannot reach the Hugging Face hub for {repo} ({type(error).__name__}) and it is not "
                             "in the local cache: download it where there is a network, or name a local folder") from None  # fmt: skip


HUB_TIMEOUT = 10.0  # seconds


def load_pretrained(auto_class: Any, source: Path | str, revision: str | None = None, **kwargs: Any) -> Any:
    """`auto_class.from_pretrained(source)`, a folder from local files only, a hub id (at
    `revision`) from the hub or, when it cannot be reached, the cache; failures as ModelLoadError."""
    if isinstance(source, Path):  # a folder has no revisions
        local, hub = True, {}
    else:
        local, hub = _from_cache_only(source, revision), {"revision": revision}
    try:
        return auto_class.from_pretrained(source, local_files_only=local, **hub, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"cannot load {auto_class.__name__} from {source}: {error}") from error


def load(name: str, *, revision: str | None = None, trust_remote_code: bool = False, **options: Any) -> HFModel:
    """``hf:NAME``: the model in folder or hub id ``name``. ``revision`` and
    ``trust_remote_code`` are named here, so that only this backend is given them."""
    return HFModel(name, name=f"hf:{name}", revision=revision, trust_remote_code=trust_remote_code, **options)
