"""Model comparison on two zoo models, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def compare(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "auditdm.cli", "compare", *args], capture_output=True, text=True,
                          env=env)  # fmt: skip


@pytest.mark.slow
def test_compare_audits_both_directions(tmp_path) -> None:
    out = tmp_path / "cmp"
    result = compare("world:target", "world:target-large", "--probes", "20", "--image-count", "5",
                     "--weak-skill-questions", "3", "-o", str(out), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    comparison = json.loads(result.stdout)
    assert json.loads((out / "comparison.json").read_text()) == comparison
    forward, backward = comparison["directions"]
    assert (forward["target"], forward["reference"]) == ("world:target", "world:target-large")
    assert (backward["target"], backward["reference"]) == ("world:target-large", "world:target")
    for direction in comparison["directions"]:
        summary = json.loads((out / direction["run_dir"].split("/")[-1] / "summary.json").read_text())
        assert summary["references"] == [direction["reference"]] and summary["distinct_flagged"] == direction["disagreements"]
        assert sum(c["disagreements"] for c in direction["categories"]) == direction["disagreements"]
        for category in direction["categories"]:
            wrong = category["wrong"]
            assert set(wrong) == {"world:target", "world:target-large"}
            assert category["worse"] in (None, *wrong)
            if category["worse"]:
                assert wrong[category["worse"]] > min(wrong.values())
    assert set(comparison["worse_in"]) == {"world:target", "world:target-large"}
    # The same command again keeps what is done: a stopped comparison is completed this way.
    again = compare("world:target", "world:target-large", "--probes", "20", "--image-count", "5",
                    "--weak-skill-questions", "3", "-o", str(out), "--json")  # fmt: skip
    assert again.returncode == 0 and json.loads(again.stdout) == comparison


@pytest.mark.slow
def test_a_killed_comparison_completes_when_run_again(tmp_path) -> None:
    import signal
    import time

    out = tmp_path / "cmp"
    args = ["world:target", "world:target-large", "--probes", "20", "--image-count", "5", "--weak-skill-questions",
            "3", "--commit-every", "5", "-o", str(out)]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "auditdm.cli", "compare", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    first = out / "target-vs-target-large" / "run.sqlite"
    deadline = time.monotonic() + 120
    while not first.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # in the first direction
    process.wait()
    result = compare(*args, "--json")
    assert result.returncode == 0, result.stderr
    assert [d["probes"] for d in json.loads(result.stdout)["directions"]] == [20, 20]


def test_a_model_is_not_compared_with_itself() -> None:
    result = compare("world:target", "world:target")
    assert result.returncode == 2 and "two different models" in result.stderr
