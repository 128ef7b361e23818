"""The ``openai:`` backend and ``auditdm serve``, over real HTTP on loopback: a served world
model answers as it does in process; a misbehaving server is retried, its lost replies
become failed probes, and a refused key stops the run."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
import socket
import subprocess
import sys
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from auditdm.cli import main
from auditdm.errors import UserError
from auditdm.judge import load_judge
from auditdm.models import ReplyError, load_model
from auditdm.models.openai import ServerRefused, _encoded, data_url
from auditdm.panel import Panel, load_panel
from auditdm.records import Probe
from auditdm.serve import create_app, read_image, serving
from auditdm.world.domain import WORLD

SECRET = "sk-test-do-not-store-0123456789"
SMALL = ["--probes", "6", "--commit-every", "3", "--image-count", "3", "--weak-skill-questions", "0",
         "--references", "world:ref-a", "--pairings", "question", "--json"]  # fmt: skip


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """world:target behind `auditdm serve`'s app, as the model ``target``."""
    with serving(create_app(load_model("world:target"), "target")) as url:
        yield url


class Misbehaving:
    """A server whose model name says how it misbehaves (``flaky``: 429 once per request,
    ``broken``: 500 always, ``empty``, ``garbled`` (not JSON), ``hollow`` (no choices),
    ``gate``: 401 once ``allowed`` requests are spent); otherwise it answers "yes". It logs
    every request's status."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int]] = []
        self.keys: dict[str, set[str]] = {}  # the Authorization headers each model got
        self.allowed = 1 << 30
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.get("/v1/models")(lambda: {"object": "list", "data": []})
        self.app.post("/v1/chat/completions")(self.complete)

    def complete(self, body: dict[str, Any], authorization: str = Header("")) -> Response:
        model = body["model"]
        fast = {"retry-after-ms": "1"}  # the client's backoff, shortened by the server's word
        with self._lock:
            self.keys.setdefault(model, set()).add(authorization)
            first = json.dumps(body) not in self._seen
            self._seen.add(json.dumps(body))
            self.allowed -= model == "gate"
            if model == "flaky" and first:
                return self._status(model, JSONResponse({"error": {"message": "slow down"}}, 429, headers=fast))
            if model == "broken":
                return self._status(model, JSONResponse({"error": {"message": "the GPU fell over"}}, 500, headers=fast))
            if model == "gate" and self.allowed < 0:  # echoes the key, as some servers do
                return self._status(model, JSONResponse({"error": {"message": f"bad key {authorization}"}}, 401))
            if model == "garbled":
                return self._status(model, PlainTextResponse("<html>proxy error", media_type="application/json"))
            if model == "hollow":
                return self._status(model, JSONResponse({"id": "x", "object": "chat.completion"}))
            text = "" if model == "empty" else "yes"
            return self._status(model, JSONResponse({"id": "x", "object": "chat.completion", "created": 0,
                                                     "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": text}}]}))  # fmt: skip

    def _status(self, model: str, response: Response) -> Response:
        self.log.append((model, response.status_code))
        return response


@pytest.fixture(scope="module")
def misbehaving() -> Iterator[tuple[Misbehaving, str]]:
    server = Misbehaving()
    with serving(server.app) as url:
        yield server, url


def world_questions(n: int) -> tuple[list[Any], list[str]]:
    sources = WORLD.images(n, seed=3)
    return [s.picture.image for s in sources], [s.question or "" for s in sources]


def audit(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["audit", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def target_answers(run_dir: Path) -> list[tuple[int, str | None, str | None, str | None]]:
    db = sqlite3.connect(run_dir / "run.sqlite")
    rows = db.execute("SELECT idx, question, target_answer, error FROM probes ORDER BY idx").fetchall()
    db.close()
    return rows


@pytest.mark.slow
def test_a_served_model_audits_as_in_process_and_the_key_stays_out(served, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert audit(*SMALL, "--target", "world:target", "-o", str(local), capsys=capsys)[0] == 0
    status, out, _ = audit(*SMALL, "--target", f"openai:target@{served}", "--concurrency", "4", "-o", str(remote),
                           capsys=capsys)  # fmt: skip
    assert status == 0 and json.loads(out)["probes"] == 6
    answered = target_answers(remote)
    assert answered == target_answers(local)  # the same questions, the same greedy answers, the same failures
    assert sum(answer is not None for _, _, answer, _ in answered) >= 3
    for path in remote.rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path


def test_a_panel_asks_a_served_model_beside_the_others_and_gets_the_same_answers(served) -> None:
    probes = [Probe(i, i, "question", None, 0, picture=s.picture, question=s.question)
              for i, s in enumerate(WORLD.images(8, seed=3))]  # fmt: skip
    remote = load_panel(f"openai:target@{served}", ["world:ref-a", "world:ref-b"], "exact", None)
    assert remote.concurrent and not load_panel("world:target", ["world:ref-a"], "exact", None).concurrent
    assert remote.answer(probes) == dataclasses.replace(remote, concurrent=False).answer(probes)


def test_an_image_is_encoded_once_for_every_model_that_asks_and_read_back_exactly() -> None:
    images, _ = world_questions(2)
    first = data_url(images[0])
    assert data_url(images[0]) is first  # the target and each reference send the same encoding
    assert np.array_equal(np.asarray(read_image(first)), np.asarray(images[0].convert("RGB")))
    changed = images[0].copy()
    changed.putpixel((0, 0), (1, 2, 3))
    assert data_url(changed) != first and data_url(images[1]) != first
    del changed
    gc.collect()
    assert all(ref() is not None for ref, _ in _encoded.values())  # a dead image's encoding is not kept


def test_confidences_come_from_logprobs(served) -> None:
    images, questions = world_questions(8)
    remote = load_model(f"openai:target@{served}").confidences(images, questions)
    local = load_model("world:target").confidences(images, questions)
    assert [answer for answer, _ in remote] == [answer for answer, _ in local]
    assert [p for _, p in remote] == pytest.approx([p for _, p in local], rel=1e-3, abs=1e-5)
    assert len({round(p, 3) for _, p in remote}) > 1  # real probabilities, not a constant


def post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(url + "/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["error"]["message"]


@pytest.mark.parametrize(("model", "content", "says"), [
    ("target", [{"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}, {"type": "text", "text": "q"}],
     "data URL"),
    ("target", [{"type": "text", "text": "how many circles are there ?"}], "exactly one image_url"),
    ("target", [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}], "no readable image"),
    ("gpt-4o", "hello", "unknown model 'gpt-4o'"),
])  # fmt: skip
def test_serve_refuses_bad_input_with_400(served, model, content, says) -> None:
    status, message = post(served, {"model": model, "messages": [{"role": "user", "content": content}]})
    assert status == 400 and says in message


def test_serve_lists_its_model_and_answers_a_plain_client(served) -> None:
    with urllib.request.urlopen(served + "/models") as response:
        assert [m["id"] for m in json.loads(response.read())["data"]] == ["target"]
    images, questions = world_questions(2)
    model = load_model(f"openai:target@{served}", concurrency=2)
    assert model.generate(images, questions) == load_model("world:target").generate(images, questions)


def test_a_served_model_continues_the_words_its_reply_is_given_as_in_process(served) -> None:
    images, questions = world_questions(4)
    starts = ["the", "", "no", "3"]
    remote = load_model(f"openai:target@{served}", concurrency=2).generate(images, questions, starts=starts)
    assert remote == load_model("world:target").generate(images, questions, starts=starts)
    assert all(reply.startswith(start) for reply, start in zip(remote, starts)) and remote[0] != "the"
    user = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(images[0])}},
                                        {"type": "text", "text": questions[0]}]}  # fmt: skip
    status, body = post(served, {"model": "target", "messages": [user, {"role": "assistant", "content": "the"}],
                                 "continue_final_message": True, "temperature": 0})  # fmt: skip
    assert status == 200 and remote[0] == "the " + json.loads(body)["choices"][0]["message"]["content"]
    status, message = post(served, {"model": "target", "messages": [user], "continue_final_message": True})
    assert status == 400 and "the assistant message to continue" in message


def test_a_rate_limit_is_retried(misbehaving) -> None:
    server, url = misbehaving
    images, questions = world_questions(3)
    assert load_model(f"openai:flaky@{url}").generate(images, questions) == ["yes"] * 3
    assert sorted(status for model, status in server.log if model == "flaky") == [200] * 3 + [429] * 3


@pytest.mark.parametrize(("model", "says"), [("broken", "the GPU fell over"), ("empty", "empty reply"),
                                             ("garbled", "not JSON"), ("hollow", "malformed reply")])  # fmt: skip
def test_a_lost_reply_fails_its_probe_alone(misbehaving, model, says) -> None:
    _, url = misbehaving
    images, questions = world_questions(3)
    with pytest.raises(ReplyError) as raised:
        load_model(f"openai:{model}@{url}", max_retries=1).generate(images, questions)
    assert all(says in reason for reason in raised.value.reasons if reason)
    probes = [Probe(i, i, "question", None, 0, picture=s.picture, question=s.question)
              for i, s in enumerate(WORLD.images(2, seed=3))]  # fmt: skip
    panel = Panel(load_model("world:target"), [load_model(f"openai:{model}@{url}", max_retries=1)], load_judge("exact"))
    made, answers = panel.answer(probes)
    assert answers == [None, None] and all(p.error and f"openai:{model}@" in p.error and says in p.error for p in made)


@pytest.mark.slow
def test_a_broken_server_leaves_failed_probes_and_the_run_finishes(misbehaving, tmp_path, capsys) -> None:
    _, url = misbehaving
    status, out, _ = audit(*SMALL, "--target", f"openai:broken@{url}", "-o", str(tmp_path / "run"), capsys=capsys)
    assert status == 0 and json.loads(out)["probes"] == 6
    errors = [error or "" for *_, error in target_answers(tmp_path / "run")]
    lost = [error for error in errors if not error.startswith("invalid question")]  # the auditor's are its own
    assert lost and all("500" in error and "the GPU fell over" in error for error in lost)


@pytest.mark.slow
def test_an_auditor_behind_a_server_writes_probes_and_a_broken_one_fails_them(misbehaving, tmp_path, capsys) -> None:
    with serving(create_app(load_model("world:auditor"), "auditor")) as url:
        status, out, _ = audit(*SMALL, "--auditor", f"openai:auditor@{url}", "-o", str(tmp_path / "served"),
                               capsys=capsys)  # fmt: skip
    assert status == 0 and json.loads(out)["probes"] == 6
    assert sum(answer is not None for *_, answer, _ in target_answers(tmp_path / "served")) >= 3  # sampled remotely
    _, broken = misbehaving
    status, _, _ = audit(*SMALL, "--auditor", f"openai:broken@{broken}", "-o", str(tmp_path / "broken"), capsys=capsys)
    errors = [error or "" for *_, error in target_answers(tmp_path / "broken")]
    assert status == 0 and all("no question from the auditor" in e and "the GPU fell over" in e for e in errors)


@pytest.mark.slow
def test_a_refused_key_stops_the_run_in_one_line_and_resume_asks_only_what_is_missing(
    misbehaving, tmp_path, monkeypatch, capsys
) -> None:
    server, url = misbehaving
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    target = ["--target", f"openai:gate@{url}"]
    assert audit(*SMALL, *target, "-o", str(tmp_path / "whole"), capsys=capsys)[0] == 0
    whole = target_answers(tmp_path / "whole")
    first_batch = sum(error is None for idx, _, _, error in whole if idx < 3)
    server.allowed = first_batch  # the key is refused once the first batch is answered
    status, _, err = audit(*SMALL, *target, "-o", str(tmp_path / "run"), capsys=capsys)
    lines = [line for line in err.splitlines() if line.startswith("auditdm")]
    assert status == 2 and len(lines) == 1 and "HTTP 401" in lines[0] and "Traceback" not in err
    assert SECRET not in err and server.keys["gate"] == {f"Bearer {SECRET}"}
    assert [idx for idx, *_ in target_answers(tmp_path / "run")] == [0, 1, 2]  # batch 0 was stored
    server.allowed, before = 1 << 30, len(server.log)
    gc.collect()  # the stopped audit's frames hold its run's lock; a stopped command would have exited
    assert main(["audit", "--resume", str(tmp_path / "run")]) == 0
    assert len(server.log) - before == sum(error is None for idx, _, _, error in whole if idx >= 3)
    assert target_answers(tmp_path / "run") == whole


@pytest.mark.slow
@pytest.mark.parametrize("role", ["--target", "--references"])
def test_a_resume_answers_again_exactly_the_probes_whose_replies_were_lost(role, tmp_path, capsys) -> None:
    served = "world:target" if role == "--target" else "world:ref-a"  # SMALL's
    app, counts = create_app(load_model(served), "remote"), {"requests": 0, "to_fail": 12}

    @app.middleware("http")
    async def fail_the_first(request: Any, call_next: Any) -> Response:
        if not request.url.path.endswith("/chat/completions"):
            return await call_next(request)
        counts["requests"] += 1
        counts["to_fail"] -= 1
        if counts["to_fail"] >= 0:
            return JSONResponse({"error": {"message": "warming up"}}, 500, headers={"retry-after-ms": "1"})
        return await call_next(request)

    local, remote = tmp_path / "local", tmp_path / "remote"
    assert audit(*SMALL, "--target", "world:target", "-o", str(local), capsys=capsys)[0] == 0
    with serving(app) as url:
        status, out, _ = audit(*SMALL, role, f"openai:remote@{url}", "--concurrency", "1", "-o", str(remote),
                               capsys=capsys)  # fmt: skip
        failed_before = json.loads(out)["failed"]
        lost = [idx for idx, *_, error in target_answers(remote) if error and error.startswith(
            f"openai:remote@{url} gave no answer: InternalServerError") and "warming up" in error]  # fmt: skip
        assert status == 0 and len(lost) == 2  # one request at a time: 12 failures lose 2 (1 try + 5 retries each)
        asked = counts["requests"]
        gc.collect()  # the finished audit's frames hold its run's lock; a finished command would have exited
        status, out, _ = audit("--resume", str(remote), "--json", capsys=capsys)  # on a finished run
        assert status == 0 and counts["requests"] - asked == len(lost)  # nothing else is asked again
    assert json.loads(out)["failed"] == failed_before - len(lost)
    assert json.loads((remote / "summary.json").read_text())["failed"] == failed_before - len(lost)
    assert target_answers(remote) == target_answers(local)  # other failures kept, lost ones answered


@pytest.mark.parametrize(("spec", "says"), [("openai:x@http://127.0.0.1:9/v1", "cannot reach"),
                                            ("openai:@http://127.0.0.1:9/v1", "name the model")])  # fmt: skip
def test_a_bad_spec_or_unreachable_server_fails_at_load(spec, says) -> None:
    with pytest.raises(UserError, match=says):
        load_model(spec, max_retries=0)


def test_a_refused_key_is_one_clear_error_without_the_key(misbehaving, monkeypatch) -> None:
    server, url = misbehaving
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server.allowed = 0
    try:
        with pytest.raises(ServerRefused) as raised:
            load_model(f"openai:gate@{url}").generate(*world_questions(2))
    finally:
        server.allowed = 1 << 30
    assert "401" in str(raised.value) and SECRET not in str(raised.value)


def test_openai_models_without_the_library_name_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "auditdm.models.openai")
    with pytest.raises(UserError, match=re.escape("pip install 'auditdm[openai]'")):
        load_model("openai:gpt-4o")


@pytest.mark.slow
def test_the_serve_command_serves(tmp_path) -> None:
    with socket.socket() as probe:  # a free port, for the command to take
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "auditdm.cli", "serve", "world:target", "--port", str(port), "--threads", "1"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(url + "/models") as response:
                    listed = json.loads(response.read())
                break
            except urllib.error.URLError:
                assert server.poll() is None, server.communicate()[0]
                time.sleep(0.1)
        else:
            pytest.fail("auditdm serve did not answer within a minute")
        assert [m["id"] for m in listed["data"]] == ["target"]
        images, questions = world_questions(2)
        assert load_model(f"openai:target@{url}").generate(images, questions) == (
            load_model("world:target").generate(images, questions))  # fmt: skip
    finally:
        server.terminate()
        printed = server.communicate(timeout=30)[0]
    assert "serving world:target as 'target'" in printed
    assert "POST /v1/chat/completions" not in printed  # no line per request unless --access-log


def test_serve_explains_itself(capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["serve", "--help"])
    assert raised.value.code == 0 and "openai:target@http://HOST:PORT/v1" in capsys.readouterr().out
    assert main(["serve", "world:target", "--threads", "0"]) == 2
    assert "--threads 0: must be at least 1" in capsys.readouterr().err
