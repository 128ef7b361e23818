"""The LLM judge (``--judge openai:MODEL@URL``) against a small deterministic judge on loopback:
verdicts follow the judge, decisions are stored and never asked twice, a malformed verdict
counts as different, a lost one fails its probe until a resume, and the key stays out."""

from __future__ import annotations

import gc
import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

from auditdm.cli import main
from auditdm.errors import UserError
from auditdm.judge import Decision, Verdict, load_judge, normalize_answer, score_many
from auditdm.llm_judge import parse_verdict
from auditdm.serve import serving

SECRET = "sk-judge-test-do-not-store-42"
SMALL = ["--probes", "8", "--commit-every", "4", "--image-count", "4", "--weak-skill-questions", "0", "--pairings",
         "question", "--json"]  # fmt: skip


class JudgeServer:
    """Answers like a judge: "Yes." when the two answers share a normalised word, else "no";
    "Perhaps." (no verdict) when either says "garbled". While ``down``, every request gets a
    500. Counts every pair it is asked (either order) and the keys it is sent."""

    def __init__(self) -> None:
        self.asked: Counter[frozenset[str]] = Counter()
        self.keys: set[str] = set()
        self.down = False
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.get("/v1/models")(lambda: {"object": "list", "data": [{"id": "judge", "object": "model"}]})
        self.app.post("/v1/chat/completions")(self.complete)

    def complete(self, body: dict[str, Any], authorization: str = Header("")) -> JSONResponse:
        with self._lock:
            self.keys.add(authorization)
            if self.down:
                return JSONResponse({"error": {"message": "judge overloaded"}}, 500, headers={"retry-after-ms": "1"})
            [message] = body["messages"]
            a, b = re.search(r"Answer 1: (.*)\nAnswer 2: (.*)\n", message["content"]).groups()  # text only: a str
            self.asked[frozenset((a, b))] += 1
        return JSONResponse({"id": "x", "object": "chat.completion", "created": 0, "model": "judge",
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": verdict(a, b)}}]})  # fmt: skip


def verdict(a: str, b: str) -> str:
    if "garbled" in (a + b):
        return "Perhaps."
    return "Yes." if set(normalize_answer(a).split()) & set(normalize_answer(b).split()) else "no"


@pytest.fixture
def judge_server() -> Iterator[tuple[JudgeServer, str]]:
    server = JudgeServer()
    with serving(server.app) as url:
        yield server, url


def stored(run_dir: Path, query: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(run_dir / "run.sqlite")
    rows = db.execute(query).fetchall()
    db.close()
    return rows


PROBES = "SELECT idx, question, error, target_answer, consensus, score FROM probes ORDER BY idx"


@pytest.mark.parametrize(("reply", "same"), [("Yes.", True), ("yes, they match", True), ("No", False),
                                             ("  no.", False), ("Perhaps.", None), ("", None), ("yesno", None)])  # fmt: skip
def test_parse_verdict(reply: str, same: bool | None) -> None:
    assert parse_verdict(reply) is same


def test_verdicts_follow_the_judge_and_each_pair_is_asked_once(judge_server) -> None:
    server, url = judge_server
    judge = load_judge(f"openai:judge@{url}")
    targets = ["dark red", "blue", "garbled", "3 cats"]
    references = [["red", "red"], ["red", "light red"], ["red", "the red"], ["3", "three", "3 dogs"]]
    assert score_many(targets, references, judge) == [
        Verdict("red", 0),  # shares "red" with the consensus: the same, where the exact judge flags it
        Verdict("red", 1),  # "red" and "light red" agree; tie of the group's answers: the first
        Verdict("red", 1),  # no verdict counts as different: flagged
        Verdict("3", 0),
    ]
    assert load_judge("exact").same([("dark red", "red")]) == [False]
    assert score_many(["light red"], [["red", "light red"]], judge) == [Verdict("red", 0)]  # asked before, either way
    assert set(server.asked.values()) == {1}  # each distinct pair once: reversed and repeated pairs are remembered
    made = {frozenset((d.a, d.b)): d for d in judge.unsaved()}  # type: ignore[attr-defined]
    assert made[frozenset(("garbled", "red"))] == Decision("garbled", "red", False, "Perhaps.")  # the raw reply kept
    assert made.keys() == server.asked.keys() and judge.unsaved() == []  # type: ignore[attr-defined]


def test_a_judge_that_cannot_be_reached_or_refuses_the_key_is_one_line(judge_server, monkeypatch) -> None:
    with pytest.raises(UserError, match=r"^--judge: openai:judge@http://127.0.0.1:9/v1: cannot reach"):
        load_judge("openai:judge@http://127.0.0.1:9/v1")
    refusing = FastAPI()
    refusing.get("/v1/models")(lambda: JSONResponse({"error": {"message": f"bad key {SECRET}"}}, 401))
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with serving(refusing) as url, pytest.raises(UserError) as raised:
        load_judge(f"openai:judge@{url}")
    assert str(raised.value).startswith("--judge: ") and "HTTP 401" in str(raised.value)
    assert SECRET not in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.slow
def test_an_audit_stores_the_judges_decisions_and_a_resume_asks_none_again(judge_server, tmp_path, monkeypatch,
                                                                            capsys) -> None:  # fmt: skip
    server, url = judge_server
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    run = tmp_path / "run"
    assert main(["audit", *SMALL, "--judge", f"openai:judge@{url}", "-o", str(run)]) == 0
    assert json.loads(capsys.readouterr().out)["judge"] == f"openai:judge@{url}"
    decisions = stored(run, "SELECT a, b, same, reply FROM judgements")
    assert decisions and {frozenset((a, b)) for a, b, *_ in decisions} == server.asked.keys()
    assert all(a < b and reply == verdict(a, b) and same == (reply == "Yes.") for a, b, same, reply in decisions)
    assert set(server.asked.values()) == {1}
    for answers_of_a_probe in stored(run, "SELECT group_concat(answer, '|') FROM answers GROUP BY probe"):
        assert len(answers_of_a_probe[0].split("|")) == 4  # the target and the three world references
    whole = stored(run, PROBES)
    # As if killed after the first batch: its decisions are stored, so the redone batch asks nothing.
    db = sqlite3.connect(run / "run.sqlite")
    with db:
        db.execute("DELETE FROM answers WHERE probe >= 4")
        db.execute("DELETE FROM probes WHERE idx >= 4")
        db.execute("DELETE FROM batches WHERE idx = 1")
    db.close()
    asked = sum(server.asked.values())
    gc.collect()  # the finished audit's frames may hold its run's lock; a finished command would have exited
    assert main(["audit", "--resume", str(run), "--json"]) == 0
    assert sum(server.asked.values()) == asked and stored(run, PROBES) == whole
    assert server.keys == {f"Bearer {SECRET}"}
    for path in run.rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_a_lost_verdict_fails_its_probe_until_a_resume_asks_again(judge_server, tmp_path, capsys) -> None:
    server, url = judge_server
    clean, run = tmp_path / "clean", tmp_path / "run"
    assert main(["audit", *SMALL, "--judge", f"openai:judge@{url}", "-o", str(clean)]) == 0
    clean_failed = json.loads(capsys.readouterr().out)["failed"]
    server.asked.clear()
    server.down = True  # after the load's check: every verdict is lost
    assert main(["audit", *SMALL, "--judge", f"openai:judge@{url}", "-o", str(run)]) == 0
    lost = [row for row in stored(run, PROBES) if row[2] and row[2].startswith(f"openai:judge@{url} gave no answer")]
    assert lost and all("judge overloaded" in row[2] for row in lost)
    assert json.loads(capsys.readouterr().out)["failed"] == clean_failed + len(lost)
    server.down = False
    gc.collect()
    assert main(["audit", "--resume", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["failed"] == clean_failed
    assert stored(run, PROBES) == stored(clean, PROBES)
    assert sum(server.asked.values()) == len(server.asked)  # asked again, each pair once
