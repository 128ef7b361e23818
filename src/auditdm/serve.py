"""``auditdm serve``: any model (``world:``, ``hf:``) as an OpenAI-compatible server, so that
the ``openai:`` backend, or any other client, can audit it over HTTP.

``GET /v1/models`` lists the one model, under its spec's name (``world:target`` serves
``target``). ``POST /v1/chat/completions`` takes one user message holding one image as a
data URL (an ``image_url`` part) and text parts (the prompt); ``temperature``, ``seed`` and
``max_tokens`` (or ``max_completion_tokens``) as the API has them. With ``logprobs: true``
(greedy only) the reply is the model's greedy one at its own length, and
``choices[0].logprobs.content`` holds one entry, the whole reply with its total logprob:
our models give a reply's probability, not each token's. Clients that sum the entries, as
the ``openai:`` backend does, read it as they read a per-token server. Input it cannot
take is answered with HTTP 400 and the reason. As in vLLM, ``continue_final_message: true``
with a last assistant message continues it: the model's reply starts with its words, and the
reply sent is what follows them (the ``openai:`` backend starts an auditor's texts so).

Requests are read in the event loop; model calls run one at a time in a thread of their own,
and greedy requests that arrive together are answered in one forward pass (``Batcher``), as
the model batches prompts in process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import math
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from PIL import Image, UnidentifiedImageError

from auditdm.backends import ModelSpec
from auditdm.errors import UserError, check_positive
from auditdm.models import VLM, load_model

try:
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field
except ImportError:
    raise UserError("auditdm serve needs fastapi and uvicorn: pip install 'auditdm[serve]'") from None

if TYPE_CHECKING:
    from collections.abc import Sequence

_DATA_URL = re.compile(r"data:image/[\w.+-]+;base64,(.*)", re.DOTALL)


class ImageURL(BaseModel):
    url: str


class Part(BaseModel):
    type: str
    text: str | None = None
    image_url: ImageURL | None = None


class Message(BaseModel):
    role: str
    content: str | list[Part]


class ChatRequest(BaseModel):
    """The fields of a chat-completions request we read; others are ignored."""

    model: str
    messages: list[Message]
    temperature: float = Field(1.0, ge=0)  # the API's default
    seed: int | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    n: int = 1
    stream: bool = False
    continue_final_message: bool = False  # vLLM's: the reply continues the last (assistant) message


class BadRequest(Exception):
    """A request we cannot answer: HTTP 400 with this message."""


def read_image(url: str) -> Image.Image:
    """The image a data URL holds."""
    found = _DATA_URL.fullmatch(url)
    if found is None:
        raise BadRequest(f"image_url must be a base64 data URL (data:image/png;base64,...), got {url[:40]!r}")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(found.group(1), validate=True)))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError) as error:
        raise BadRequest(f"image_url holds no readable image: {error}") from None
    return image


def read_messages(messages: Sequence[Message], continued: bool = False) -> tuple[Image.Image, str, str]:
    """The image and the prompt of the one user message, and the words of the assistant's
    message after it that the reply continues (``continued``; else "")."""
    roles = [message.role for message in messages]
    if continued and roles != ["user", "assistant"]:
        raise BadRequest("continue_final_message: send one user message (an image and its prompt), then the "
                         "assistant message to continue")  # fmt: skip
    if not continued and roles != ["user"]:
        raise BadRequest("send one user message: an image and its prompt (these models take no system prompt or "
                         "earlier turns)")  # fmt: skip
    start = _text(messages[1].content) if continued else ""
    content = messages[0].content
    parts = [Part(type="text", text=content)] if isinstance(content, str) else content
    images = [read_image(p.image_url.url) for p in parts if p.type == "image_url" and p.image_url is not None]
    if len(images) != 1:
        raise BadRequest(f"the message must hold exactly one image_url part, it holds {len(images)}")
    return images[0], _text(parts), start


def _text(content: str | list[Part]) -> str:
    return content if isinstance(content, str) else "\n".join(p.text for p in content if p.type == "text" and p.text)


class Batcher:
    """Runs the model for every request, one call at a time (a torch model is not made for
    concurrent calls), and answers greedy requests that arrive together in one forward pass:
    a client with many requests in flight (the ``openai:`` backend's ``--concurrency``) gets
    them batched as the model would batch them in process. A sampled request runs alone, so
    that its seed alone decides its reply."""

    def __init__(self, model: VLM, most: int = 64, gather: float = 0.005, longest: float = 0.05) -> None:
        self.model, self.most, self.gather, self.longest = model, most, gather, longest
        self.pending: list[tuple[tuple[Any, ...], Image.Image, str, str, Future[Any]]] = []
        self.ready = threading.Condition()
        threading.Thread(target=self._work, daemon=True, name="auditdm-serve-model").start()

    async def answer(self, request: ChatRequest, image: Image.Image, prompt: str, start: str = "") -> dict[str, Any]:
        """The choice a request gets: the reply (what follows ``start``) and, if asked, its logprob."""
        length = request.max_completion_tokens or request.max_tokens
        if request.logprobs:
            key: tuple[Any, ...] = ("confidences",)
        elif request.temperature > 0:
            key = ("sampled", uuid.uuid4().hex, length, request.temperature, request.seed or 0)  # batched with none
        else:
            key = ("greedy", length)
        done: Future[Any] = Future()
        with self.ready:
            self.pending.append((key, image, prompt, start, done))
            self.ready.notify()
        reply = await asyncio.wrap_future(done)
        if not request.logprobs:
            return _choice(reply.removeprefix(start).strip(), None)
        text, probability = reply
        logprob = math.log(max(probability, sys.float_info.min))  # an underflowed 0 still has a finite log
        return _choice(text, {"content": [{"token": text, "logprob": logprob, "bytes": list(text.encode()),
                                           "top_logprobs": []}]})  # fmt: skip

    def _work(self) -> None:
        while True:
            with self.ready:
                self.ready.wait_for(lambda: bool(self.pending))
                # Let the other requests in flight arrive: gather while they keep coming (a
                # client's requests reach us one by one), until a pause, a full batch or `longest`.
                deadline, seen = time.monotonic() + self.longest, 0
                while seen < len(self.pending) < self.most and time.monotonic() < deadline:
                    seen = len(self.pending)
                    self.ready.wait(timeout=self.gather)
                key = self.pending[0][0]
                group = [item for item in self.pending if item[0] == key][: self.most]
                taken = {id(item) for item in group}  # by identity: images compare by their pixels
                self.pending = [item for item in self.pending if id(item) not in taken]
            images, prompts = [item[1] for item in group], [item[2] for item in group]
            starts = [item[3] for item in group] if any(item[3] for item in group) else []
            try:
                if key[0] == "confidences":
                    replies: list[Any] = self.model.confidences(images, prompts)
                elif key[0] == "greedy":
                    replies = self.model.generate(images, prompts, max_new_tokens=key[1], starts=starts)
                else:
                    replies = self.model.generate(images, prompts, max_new_tokens=key[2], temperature=key[3],
                                                  seed=key[4], starts=starts)  # fmt: skip
            except Exception as error:  # the requests fail (HTTP 500), the server goes on
                for *_, done in group:
                    done.set_exception(error)
                continue
            for (*_, done), reply in zip(group, replies):
                done.set_result(reply)


def _choice(text: str, logprobs: dict[str, Any] | None) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {"index": 0, "message": message, "finish_reason": "stop", "logprobs": logprobs}


def create_app(model: VLM, served: str) -> FastAPI:
    """The server of ``model``, known to clients as ``served``."""
    app = FastAPI(title=f"auditdm: {served}")
    batcher = Batcher(model)

    def refuse(message: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "code": 400}}, 400)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in error.errors())
        return refuse(f"invalid request: {problems}")

    @app.exception_handler(BadRequest)
    async def bad(_: Request, error: BadRequest) -> JSONResponse:
        return refuse(str(error))

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": served, "object": "model", "created": 0, "owned_by": "auditdm"}]}

    @app.post("/v1/chat/completions")
    async def complete(request: ChatRequest) -> dict[str, Any]:  # in the event loop; the model in the Batcher's thread
        if request.model != served:
            raise BadRequest(f"unknown model {request.model!r}: this server serves {served!r}")
        if request.stream or request.n != 1:
            raise BadRequest("streaming and n > 1 are not supported")
        if request.logprobs and (request.temperature > 0 or request.continue_final_message):
            raise BadRequest("logprobs are given for greedy replies of the model's own only: send temperature 0, "
                             "without continue_final_message")  # fmt: skip
        image, prompt, start = read_messages(request.messages, request.continue_final_message)
        choice = await batcher.answer(request, image, prompt, start)
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": served, "choices": [choice]}  # fmt: skip

    return app


def serve(spec: str, host: str, port: int, threads: int | None = None, access_log: bool = False,
          **options: Any) -> None:  # fmt: skip
    """Load the model ``spec`` names (``options``: ``load_model``'s) and serve it until stopped,
    its computations on ``threads`` CPU threads (None: torch's default, one per core); with
    ``access_log``, a line per request (off by default: an audit sends thousands)."""
    if threads is not None:
        import torch

        check_positive(threads=threads)
        torch.set_num_threads(threads)
    model = load_model(spec, **options)
    served = ModelSpec.parse(spec).name
    print(f"serving {spec} as {served!r}: auditdm audit --target openai:{served}@http://{host}:{port}/v1")
    uvicorn.run(create_app(model, served), host=host, port=port, access_log=access_log)


@contextmanager
def serving(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """``app`` on a free port of ``host``, in a thread of this process (tests, benchmarks);
    yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}/v1"
    finally:
        server.should_exit = True
        thread.join()
