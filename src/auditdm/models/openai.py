"""The OpenAI-compatible backend: ``openai:MODEL[@BASE_URL]``, a vision-language model behind
any server that speaks the chat-completions API, as target, reference or auditor.

Each (image, prompt) pair is one chat completion: a user message holding the image as a
PNG data URL (an ``image_url`` part) and the prompt text; temperature, seed and the reply
length go with it. The base URL is the spec's (``openai:qwen2.5-vl@http://gpu-box:8000/v1``),
else ``$OPENAI_BASE_URL``, else OpenAI's. The API key comes only from ``$OPENAI_API_KEY``
(unset: ``EMPTY``, what local servers expect); it is never stored, logged or shown.

    vllm serve Qwen/Qwen2.5-VL-7B-Instruct       # openai:Qwen/Qwen2.5-VL-7B-Instruct@http://HOST:8000/v1
    python -m sglang.launch_server --model-path M  # openai:M@http://HOST:30000/v1
    text-generation-launcher --model-id M         # TGI: openai:tgi@http://HOST:8080/v1
    ollama pull llava                             # openai:llava@http://localhost:11434/v1
    auditdm serve world:target                    # openai:target@http://127.0.0.1:8000/v1
    OPENAI_API_KEY=sk-... auditdm audit --target openai:gpt-4o --references ...   # a hosted API

Requests run ``concurrency`` at a time. The openai library retries rate limits (429),
server errors (5xx), timeouts and dropped connections ``max_retries`` times with
exponential backoff and jitter (honouring ``Retry-After``); a reply still missing then, or
empty, or malformed, fails alone (``ReplyError``: the audit stores its probe as failed,
with the reason). A refused key (401, 403) or an unknown model (404) stops the run at once.

A reply given the words it starts with (an auditor's ``--explore``) is asked as vLLM asks it:
the words as a last assistant message, with ``continue_final_message`` (SGLang and our
``auditdm serve`` take it too); the server's continuation follows the words.

Probabilities (``confidences``, for ``--min-confidence``) are the exp of the sum of the
reply's token logprobs (``logprobs: true``); a server that returns none stops the run
with a clear error rather than let every reference vote unchecked.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from auditdm.errors import UserError
from auditdm.models import CONCURRENCY, ReplyError, begun

try:
    import openai
except ImportError:
    raise UserError("openai: models need the openai library: pip install 'auditdm[openai]'") from None

if TYPE_CHECKING:
    from PIL import Image

T = TypeVar("T")
NO_KEY = "EMPTY"  # vLLM's convention for a server that checks no key


class ServerRefused(UserError):
    """The server refused the key or does not know the model: every request would fail the
    same way, so the run stops at once."""


@dataclass(frozen=True)
class _Failed:
    """A reply that could not be had, and why."""

    reason: str


class OpenAIModel:
    """A VLM behind an OpenAI-compatible chat-completions server.

    ``model`` is the server's name for it; ``base_url`` None means ``$OPENAI_BASE_URL`` or
    OpenAI's. ``max_new_tokens`` is the reply length when a call does not say; ``timeout``
    is per request, in seconds.
    """

    remote = True  # it computes elsewhere, so a panel asks it beside its other models

    def __init__(self, model: str, base_url: str | None, *, name: str, concurrency: int = CONCURRENCY, max_retries: int = 5,
                 timeout: float = 120.0, max_new_tokens: int = 16) -> None:  # fmt: skip
        if concurrency < 1:
            raise UserError(f"--concurrency {concurrency}: must be at least 1")
        self.name, self.model = name, model
        self.concurrency, self.max_new_tokens = concurrency, max_new_tokens
        self._key = os.environ.get("OPENAI_API_KEY") or NO_KEY
        self.client = openai.OpenAI(api_key=self._key, base_url=base_url, max_retries=max_retries, timeout=timeout)
        # One pool for the model's life: starting `concurrency` threads for every batch cost
        # more than the requests of a fast served model (BENCHMARKS.md, "over HTTP").
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix=f"auditdm-{model}")

    def generate(self, images: Sequence[Image.Image], prompts: Sequence[str], *, max_new_tokens: int | None = None,
                 temperature: float = 0.0, seed: int = 0, starts: Sequence[str] = ()) -> list[str]:  # fmt: skip
        """The reply to ``prompts[i]`` about ``images[i]``, for every i, stripped; request i
        is sampled with seed ``seed + i``, so that equal requests of a batch differ. Reply i
        starts with the words ``starts[i]`` where given."""
        results = self._run(images, prompts, max_new_tokens or self.max_new_tokens, temperature, seed, logprobs=False,
                            starts=starts)  # fmt: skip
        return self._replies([r if isinstance(r, _Failed) else r[0] for r in results])

    def confidences(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[tuple[str, float]]:
        """Greedy replies, each with its probability: exp of the sum of its tokens' logprobs."""
        return self._replies(self._run(images, prompts, self.max_new_tokens, 0.0, 0, logprobs=True))

    def check(self) -> None:
        """Fail now, not mid-run, on a server that cannot be reached or refuses the key."""
        try:
            self.client.models.list()
        except openai.APIConnectionError as error:
            raise UserError(f"{self.name}: cannot reach {self.client.base_url} ({self._scrub(str(error))})") from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise self._refused(error) from None
        except openai.APIStatusError:
            pass  # a server need not list its models

    def chat(self, prompts: Sequence[str], *, max_new_tokens: int | None = None) -> list[str]:
        """The greedy reply to each text-only prompt (one user message each), stripped;
        ``ReplyError`` once all are done if some could not be had. The LLM judge asks this way."""
        messages = [[{"role": "user", "content": prompt}] for prompt in prompts]
        results = self._complete_all(messages, max_new_tokens or self.max_new_tokens, 0.0, 0, logprobs=False)
        return self._replies([r if isinstance(r, _Failed) else r[0] for r in results])

    def _run(self, images: Sequence[Image.Image], prompts: Sequence[str], max_tokens: int, temperature: float,
             seed: int, logprobs: bool, starts: Sequence[str] = ()) -> list[tuple[str, float] | _Failed]:  # fmt: skip
        if len(images) != len(prompts) or (starts and len(starts) != len(prompts)):
            raise ValueError(f"{len(images)} images, {len(prompts)} prompts and {len(starts)} starts")
        messages = [[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(image)}},
                                                  {"type": "text", "text": prompt}]},
                     *([{"role": "assistant", "content": start}] if start else [])]
                    for image, prompt, start in zip(images, prompts, starts or [""] * len(prompts))]  # fmt: skip
        return self._complete_all(messages, max_tokens, temperature, seed, logprobs)

    def _complete_all(self, messages: Sequence[Any], max_tokens: int, temperature: float, seed: int,
                      logprobs: bool) -> list[tuple[str, float] | _Failed]:  # fmt: skip
        """Chat completion i of ``messages[i]``, sampled with seed ``seed + i``, ``concurrency`` at a time."""
        futures = [self._pool.submit(self._ask, asked, max_tokens, temperature, seed + i, logprobs)
                   for i, asked in enumerate(messages)]  # fmt: skip
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:  # a refused key stops the run now
                future.cancel()
            raise

    def _ask(self, messages: Any, max_tokens: int, temperature: float, seed: int,
             logprobs: bool) -> tuple[str, float] | _Failed:  # fmt: skip
        asked: dict[str, Any] = {"logprobs": True} if logprobs else {}  # only when wanted: not every server has it
        start = messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""
        if start:  # the reply's first words: vLLM's way to continue them
            asked["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        try:
            completion = self.client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens, temperature=temperature, seed=seed, **asked
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as error:
            raise self._refused(error) from None
        except openai.APIError as error:
            return _Failed(self._reason(error))
        except json.JSONDecodeError as error:  # the library parses a JSON body, and lets this through
            return _Failed(f"malformed reply (not JSON): {error}")
        return self._reply(completion, logprobs, start)

    def _reply(self, completion: Any, logprobs: bool, start: str = "") -> tuple[str, float] | _Failed:
        """The reply's text (after the words ``start`` it was given) and probability (1.0 unless
        asked for), or why it is none; a continuation of given words may be empty: they were the reply."""
        try:
            choice = completion.choices[0]
            text = choice.message.content
        except (AttributeError, IndexError, TypeError):
            return _Failed(self._scrub(f"malformed reply (no choices[0].message): {str(completion)[:200]}"))
        if not isinstance(text, str) or not (text.strip() or start):
            return _Failed("empty reply")
        if not logprobs:
            return begun(start, text), 1.0
        tokens = getattr(getattr(choice, "logprobs", None), "content", None)
        if not tokens:
            raise UserError(f"{self.name}: the server returns no logprobs, so its answers have no probability "
                            "(--min-confidence needs them)")  # fmt: skip
        return begun(start, text), math.exp(sum(token.logprob for token in tokens))

    def _replies(self, results: Sequence[T | _Failed]) -> list[T]:
        """The replies; once the batch is done, a ``ReplyError`` if any failed."""
        replies = [None if isinstance(r, _Failed) else r for r in results]
        reasons = [r.reason if isinstance(r, _Failed) else None for r in results]
        if any(reason is not None for reason in reasons):
            raise ReplyError(self.name, replies, reasons)
        return [r for r in replies if r is not None]

    def _reason(self, error: openai.APIError) -> str:
        """Why a request failed, in a line: its status and the server's message, or what
        stopped the response (a connection, a timeout)."""
        status = getattr(error, "status_code", None)
        retried = status is None or status in (408, 409, 429) or status >= 500  # what the library retries
        reason = f"{type(error).__name__}: {error}"[:300]
        return self._scrub(reason + (f" (after {self.client.max_retries} retries)" if retried else ""))

    def _refused(self, error: openai.APIStatusError) -> ServerRefused:
        """The one line for a refusal; the server's own message may quote the key, so it is left out."""
        if error.status_code == 404:
            return ServerRefused(f"{self.name}: {self.client.base_url} has no model {self.model!r} (HTTP 404; its "
                                 "/models lists the ones it has; a base URL usually ends in /v1)")  # fmt: skip
        key = "no OPENAI_API_KEY is set" if self._key == NO_KEY else "check OPENAI_API_KEY"
        return ServerRefused(f"{self.name}: {self.client.base_url} refused the request (HTTP {error.status_code}, "
                             f"not authorised): {key}")  # fmt: skip

    def _scrub(self, text: str) -> str:
        """``text`` without the key, should a server echo it."""
        return text if self._key == NO_KEY else text.replace(self._key, "***")


_encoded: dict[int, tuple[weakref.ref[Image.Image], str]] = {}  # id(image) -> (the image, its data URL)
_encoding = threading.Lock()


def data_url(image: Image.Image) -> str:
    """The image as a PNG data URL, what an ``image_url`` part carries. An audit sends each
    image to the target and to every reference at once, so the URL is kept while the image
    lives and made once (the encoding cost more than a world model's answer)."""
    with _encoding:  # the models' threads ask for the same images together: one encodes, the others wait
        kept = _encoded.get(id(image))
        if kept is not None and kept[0]() is image:
            return kept[1]
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG", compress_level=1)  # lossless either way; level 1 is fastest
        url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        key = id(image)
        _encoded[key] = (weakref.ref(image, lambda _: _encoded.pop(key, None)), url)
        return url


def _split(name: str) -> tuple[str, str | None]:
    model, _, base_url = name.partition("@")
    if not model:
        raise UserError(f"openai:{name}: name the model, as openai:MODEL or openai:MODEL@BASE_URL")
    return model, base_url or None


def resolve(name: str) -> str:
    """``openai:NAME``: a remote model has no local weights; its name stands for them."""
    _split(name)
    return name


def load(name: str, *, concurrency: int = CONCURRENCY, max_retries: int = 5, timeout: float = 120.0,
         max_new_tokens: int = 16, **placement: object) -> OpenAIModel:  # fmt: skip
    """``openai:MODEL[@BASE_URL]``: the model, once its server answers. Placement options
    (device, dtype, batch_size, progress) are the server's business and ignored."""
    model, base_url = _split(name)
    loaded = OpenAIModel(model, base_url, name=f"openai:{name}", concurrency=concurrency, max_retries=max_retries,
                         timeout=timeout, max_new_tokens=max_new_tokens)  # fmt: skip
    loaded.check()
    return loaded
