"""Print the figures of the "Real models" issue: the audit over HTTP against in process, and
an audit through a server that fails.

    python benchmarks/http_audit.py                  # 1,000 probes
    python benchmarks/http_audit.py --probes 100

1. The default world audit (world:auditor, world:target, the three world references) of
   ``--probes`` probes, in process, then with the target and each reference served by
   ``auditdm serve`` on loopback (one subprocess per model, each computing on
   ``--server-threads`` threads, as four servers sharing a machine with the audit should; the
   auditor in process): probes
   per second of the audit loop each way and HTTP's overhead factor (the issue's bar: at most
   2x), and whether the two runs stored the same answers. Both skip the weak-skill benchmark,
   which is not part of the loop.
2. The HTTP audit again, through a loopback proxy that fails 20 % of requests at random (fixed
   seed): half with HTTP 500, half as timeouts (held ``--hold`` s, then 504, as a gateway
   answers when its upstream times out; the client's own timeout is 120 s). The proxy asks for
   a short back-off (``retry-after-ms``), as a rate-limiting server does. For the audit a failing
   request keeps failing on each of the client's 5 retries (a failure that did not stick would
   almost never lose a reply), so probes are stored as failed with their reason. Then the proxy
   fails 20 % of attempts, each on its own, and ``auditdm audit --resume`` answers the failed
   probes again: counts before and after, and whether the answers now equal the in-process run's.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from auditdm.serve import serving

MODELS = ("target", "ref-a", "ref-b", "ref-c")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
LOST = re.compile(r"openai:\S+ gave no answer: ")  # a panel member's lost reply; the auditor's start otherwise


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served_models(threads: int) -> Iterator[dict[str, str]]:
    """``auditdm serve world:NAME`` for each model, one subprocess each on ``threads`` threads;
    yields name -> base URL."""
    ports = {name: free_port() for name in MODELS}
    servers = [subprocess.Popen([sys.executable, "-m", "auditdm.cli", "serve", f"world:{name}", "--port", str(port),
                                 "--threads", str(threads)], env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
               for name, port in ports.items()]  # fmt: skip
    urls = {name: f"http://127.0.0.1:{port}/v1" for name, port in ports.items()}
    try:
        for url in urls.values():
            for _ in range(1200):
                try:
                    with urllib.request.urlopen(url + "/models"):
                        break
                except urllib.error.URLError:
                    time.sleep(0.1)
            else:
                raise SystemExit(f"{url} did not answer within two minutes")
        yield urls
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)


class FailingProxy:
    """Forwards chat completions to the served model the request names, failing ``rate`` of
    them: by the request's content while ``sticky`` (a failing request fails on every retry),
    else each attempt on its own. Half the failures are 500s, half held then 504s."""

    def __init__(self, upstream: dict[str, str], rate: float, seed: int, hold: float) -> None:
        self.upstream, self.rate, self.seed, self.hold = upstream, rate, seed, hold
        self.sticky = True
        self.outcomes: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.get("/v1/models")(lambda: {"object": "list", "data": [{"id": m, "object": "model"} for m in upstream]})
        self.app.post("/v1/chat/completions")(self.complete)

    async def complete(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            if self.sticky:
                draw = random.Random(f"{self.seed}:{hashlib.sha256(body).hexdigest()}").random()
            else:
                draw = self._random.random()
        fast = {"retry-after-ms": "20"}
        if draw < self.rate / 2:
            self.outcomes["500"] += 1
            return JSONResponse({"error": {"message": "injected failure"}}, 500, headers=fast)
        if draw < self.rate:
            self.outcomes["timeout"] += 1
            await asyncio.sleep(self.hold)
            return JSONResponse({"error": {"message": "upstream timed out"}}, 504, headers=fast)
        self.outcomes["forwarded"] += 1
        model = json.loads(body)["model"]
        status, content = await asyncio.to_thread(_post, self.upstream[model] + "/chat/completions", body)
        return Response(content, status, media_type="application/json")


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


        thread.join()


def audit(*args: str) -> tuple[dict[str, Any], float]:
    """``auditdm audit ARGS --json`` in a subprocess: its summary and wall time."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "auditdm.cli", "audit", *args, "--json"], env=ENV,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"auditdm audit {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout), time.perf_counter() - started


def http_flags(urls: dict[str, str]) -> list[str]:
    return ["--target", f"openai:target@{urls['target']}",
            "--references", ",".join(f"openai:{m}@{urls[m]}" for m in MODELS[1:])]  # fmt: skip


def stored(run: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The probes' answers and scores, and every answer by role in order (model names differ by backend)."""
    db = sqlite3.connect(run / "run.sqlite")
    probes = db.execute("SELECT idx, question, error, target_answer, consensus, score FROM probes ORDER BY idx")
    answers = db.execute("SELECT probe, role, answer FROM answers ORDER BY probe, rowid")
    found = probes.fetchall(), answers.fetchall()
    db.close()
    return found


def failures(run: Path) -> Counter[str]:
    """Probes by outcome: answered, failed for a lost reply, failed otherwise."""
    outcomes: Counter[str] = Counter()
    for _, _, error, answer, _, _ in stored(run)[0]:
        outcomes["answered" if error is None and answer is not None else
                 "lost reply" if error and LOST.match(error) else
                 "failed (auditor or synthesis)" if error else "no answer, no reason"] += 1  # fmt: skip
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--server-threads", type=int, default=1, help="CPU threads of each server")
    parser.add_argument("--rate", type=float, default=0.2, help="share of requests the proxy fails")
    parser.add_argument("--hold", type=float, default=0.3, help="seconds a timeout is held before its 504")
    parser.add_argument("--seed", type=int, default=0, help="the proxy's")
    args = parser.parse_args()
    common = ["--probes", str(args.probes), "--weak-skill-questions", "0"]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        local, local_wall = audit(*common, "-o", str(root / "local"))
        with served_models(args.server_threads) as urls:
            remote, remote_wall = audit(*common, *http_flags(urls), "-o", str(root / "http"))
            proxy = FailingProxy(urls, args.rate, args.seed, args.hold)
            with serving(proxy.app) as via:
                flaky, flaky_wall = audit(*common, *http_flags(dict.fromkeys(MODELS, via)), "-o", str(root / "flaky"))
                before, sticky = failures(root / "flaky"), dict(proxy.outcomes)
                proxy.sticky, proxy.outcomes = False, Counter()
                resumed, resume_wall = audit("--resume", str(root / "flaky"))
                after = failures(root / "flaky")
        factor = local["probes_per_second"] / remote["probes_per_second"]
        print(f"1. {args.probes} probes, default world audit (weak-skill benchmark skipped)")
        print(f"   in process: {local['probes_per_second']} probes/s (loop {local['seconds']} s, command "
              f"{local_wall:.1f} s)")
        print(f"   over HTTP ({len(MODELS)} auditdm serve subprocesses, {args.server_threads} thread(s) each): "
              f"{remote['probes_per_second']} probes/s "
              f"(loop {remote['seconds']} s, command {remote_wall:.1f} s)")
        print(f"   HTTP overhead factor {factor:.2f}x (bar: at most 2x): {'met' if factor <= 2 else 'NOT met'}")
        same = stored(root / "local") == stored(root / "http")
        print(f"   stored answers identical: {same} ({local['flagged']} vs {remote['flagged']} flagged)")
        print(f"2. through a proxy failing {args.rate:.0%} of requests (seed {args.seed}; 500s and "
              f"{args.hold} s timeouts), failures sticking for the audit")
        print(f"   audit finished in {flaky_wall:.1f} s: {flaky['probes']} probes, {dict(before)}; proxy: {sticky}")
        print(f"   every probe answered or failed with its reason: {'no answer, no reason' not in before}")
        print(f"   --resume through the proxy failing {args.rate:.0%} of attempts ({resume_wall:.1f} s): {dict(after)}; "
              f"proxy: {dict(proxy.outcomes)}")
        print(f"   summary failed {flaky['failed']} -> {resumed['failed']}; answers now identical to the in-process "
              f"run's: {stored(root / 'flaky') == stored(root / 'local')}")


if __name__ == "__main__":
    main()
