"""The HTML report, opened in a real headless Chromium: sections, images, charts, escaping."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from auditdm.audit import conclude
from auditdm.records import Answers, OracleCheck, Picture, Probe, SourceImage
from auditdm.records import RunSummary
from auditdm.store import RunStore
from auditdm.world.synth import generate

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SCRIPT = "<script>document.title='owned'</script>"
REVERSED = "\u202eenod"  # a right-to-left override: "done" drawn backwards, and all that follows
ANSWERERS = [("world:target", "target"), ("world:ref-a", "reference"), ("world:ref-b", "reference")]


def chromium() -> str:
    """Debian's chromium: found, else installed (as root with apt), else the test skips saying why."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, timeout=600)
        found = shutil.which("chromium")
    if not found:
        pytest.skip("no chromium, and it cannot be installed here (needs root and apt-get): apt-get install chromium")
    return found


def browse(html: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", *flags, html.as_uri()],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunStore, RunSummary]:
    """A run whose failures come in two kinds; one target answer is a script."""
    image, scene = generate("a clock showing 3:30 at the center, a large red circle at the top left on a clear day")
    store = RunStore.create(tmp_path_factory.mktemp("run") / "run", {"config": {"target": "world:target",
                            "references": ["world:ref-a", "world:ref-b"], "auditor": "world:baseline",
                            "prompts": "baseline", "judge": "exact"}, "seconds": 1.0, "weak_skills": ["clock"],
                            "auditor_curves": {"loss": [3.0, 2.0, 1.5, 1.2]}},
                            [SourceImage("a", Picture(image, scene), "what time does the clock show ?")])  # fmt: skip
    kinds = [("what time does the clock show ?", "3:30", ["5:00", "7:00", SCRIPT]),
             ("what color is the circle ?", "red", ["blue", "green", "yellow" + REVERSED])]  # fmt: skip
    probes, answers, checks = [], [], []
    for question, truth, wrong in kinds:
        for answer in wrong:
            index = len(probes)
            caption = f"a clock showing {index + 4}:00 at the center on a clear night"  # an image per probe
            probes.append(Probe(index, 0, "image", "caption", index, store.source_addresses()[0],
                                Picture(*generate(caption)), question, instruction=caption))  # fmt: skip
            answers.append(Answers(answer, (truth, truth), truth, 1))
            checks.append(OracleCheck("answerable", truth, "clock" if "time" in question else "color"))
    store.commit_batch(0, probes, answers, checks, "world:baseline", "baseline", ANSWERERS)
    return store, conclude(store)


def test_report_opens_with_sections_images_and_charts(run) -> None:
    store, summary = run
    report = store.folder / "report.html"
    result = browse(report, "--dump-dom")
    dom = result.stdout
    assert "<h1>auditdm report</h1>" in dom and 'id="summary"' in dom and 'id="verified"' in dom
    assert dom.count('class="category"') == len(summary.categories) == 2
    assert summary.to_dict()["by_kind"] == {"image+caption": {"probes": 6, "flagged": 6, "genuine": 6}}
    assert "<th>genuine (oracle)</th>" in dom and "<td>image+caption</td><td>6</td><td>6</td><td>6</td>" in dom
    shown = 2 * 3  # two categories, three probes shown from each
    assert dom.count('<div class="image image-') == 2 * shown  # the original and the counterfactual of each
    assert dom.count("data:image/png;base64,") == 1 + shown  # each image inlined once: one original for all
    assert 'id="category-chart"' in dom and "<polyline" in dom  # category rates, auditor training curve
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    browse(report, f"--screenshot={shot}", "--window-size=1200,2400")
    assert shot.stat().st_size > 10_000


def test_model_output_is_shown_as_text(run) -> None:
    store, _ = run
    dom = browse(store.folder / "report.html", "--dump-dom").stdout
    assert "&lt;script&gt;document.title='owned'&lt;/script&gt;" in dom.replace("&#39;", "'")
    assert "<title>auditdm report: world:target</title>" in dom  # the script never ran
    assert "yellow&lt;U+202E&gt;enod" in dom and "\u202e" not in dom  # shown, not obeyed


def test_photographs_are_inlined_downscaled(tmp_path) -> None:
    import base64
    import io

    from PIL import Image

    from auditdm.report import THUMBNAIL, thumbnail_uri

    photo, small = tmp_path / "photo.jpg", tmp_path / "small.png"
    Image.effect_noise((1600, 1200), 60).convert("RGB").save(photo, quality=95)
    Image.new("RGB", (96, 96), "red").save(small)
    uri = thumbnail_uri(photo)
    assert uri.startswith("data:image/jpeg;base64,") and len(uri) < photo.stat().st_size / 4
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as shown:
        assert shown.size == (THUMBNAIL, THUMBNAIL * 3 // 4)
    assert thumbnail_uri(small) == "data:image/png;base64," + base64.b64encode(small.read_bytes()).decode()


def test_long_category_names_are_shortened_in_the_chart() -> None:
    from auditdm.report.charts import LABEL_CHARACTERS, bar_chart

    name = "how many large green striped objects are there in the picture at the top ?"
    bar = bar_chart([(name, 0.5, "1 / 2"), ("short", 1.0, "1 / 1")]).bars
    assert len(bar[0].label) == LABEL_CHARACTERS and bar[0].label.endswith("…") and bar[0].title == name
    assert bar[1].label == bar[1].title == "short"


def test_report_rebuilds_from_the_store_alone(run, tmp_path) -> None:
    store, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(store.folder, copy)
    (copy / "report.html").unlink()
    assert subprocess.run([sys.executable, "-m", "auditdm.cli", "report", str(copy)]).returncode == 0
    assert (copy / "report.html").read_text().count('class="category"') == 2


def test_long_curves_are_drawn_as_moving_averages() -> None:
    from auditdm.report.charts import line_chart

    noisy = line_chart([0.0, 1.0] * 60)  # a 0/1 reward per step
    assert (noisy.window, noisy.steps, noisy.high) == (2, 120, 0.5)  # the trend, not the noise
    short = line_chart([1.0, 2.0, 3.0])
    assert (short.window, short.low, short.high) == (1, 1.0, 3.0)
