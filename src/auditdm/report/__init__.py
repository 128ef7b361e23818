"""The HTML report of a run: one self-contained page, readable offline in any browser.

Built from the store alone (``auditdm report RUN_DIR`` rebuilds it): the summary, a chart
of the failure categories, the auditor's training curves when it has them, and for each
category its most telling probes, original and counterfactual image side by side with
every model's answer. Images are inlined once each as data URIs (downscaled for display) and
charts drawn as inline SVG, so the page needs no network and no script. All text from models
is escaped by Jinja2, and Unicode bidirectional controls in it are shown, not obeyed, so model
text cannot reorder the page around it.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

from auditdm.report.charts import bar_chart, line_chart
from auditdm.files import write_text
from auditdm.records import RunSummary
from auditdm.store import RunStore

REPORT = "report.html"
TEMPLATES = Path(__file__).parent  # base.html, and a page per kind of run that extends it
THUMBNAIL = 256  # the longest side, in pixels, an image is inlined at (shown at 128)
# Embeddings, overrides, isolates and marks: they reorder the text that follows them.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(value: Any) -> Any:
    """Every value the template prints: bidirectional controls written out as code points."""
    return _BIDI.sub(lambda m: f"<U+{ord(m.group()):04X}>", value) if isinstance(value, str) else value


def render_page(template: str, **values: Any) -> str:
    """A page from the templates, every value escaped and shown (``shown``) as it prints."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined, finalize=shown)  # fmt: skip
    return environment.get_template(template).render(**values)


def is_small(path: Path) -> bool:
    """An image shown enlarged (world images): drawn with sharp pixels, not blurred."""
    from PIL import Image

    with Image.open(path) as image:
        return max(image.size) <= THUMBNAIL


def thumbnail_uri(path: Path) -> str:
    """A data URI of the image at ``path``: as stored when small (world images), else
    downscaled to ``THUMBNAIL`` pixels and, without transparency, as JPEG (photographs)."""
    from PIL import Image

    if is_small(path):
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    with Image.open(path) as image:
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        buffer = io.BytesIO()
        opaque = image.mode in ("RGB", "L")
        image.save(buffer, format="JPEG" if opaque else "PNG", quality=85)
    return f"data:image/{'jpeg' if opaque else 'png'};base64," + base64.b64encode(buffer.getvalue()).decode()


def write_report(store: RunStore, summary: RunSummary) -> Path:
    """Render ``report.html`` into the run directory; returns its path."""
    probes = {p.idx: p for p in store.probes()}
    sources = store.source_addresses()
    images: dict[str, int] = {}  # address -> its number in the page's image style sheet

    def image_class(address: str | None) -> str | None:
        if address is None:
            return None
        if address not in images:
            images[address] = len(images)
        return f"image-{images[address]}"

    categories = [
        {**category, "examples": [{**probes[i].to_dict(), "original": image_class(sources[probes[i].source]),
                                   "probed": image_class(probes[i].image)} for i in category["examples"]]}
        for category in summary.to_dict()["categories"]
    ]  # fmt: skip
    # Each image once, as a class of its own, however many probes show it.
    paths = {n: store.stored_image(address) for address, n in images.items()}
    image_styles = [(f"image-{n}", thumbnail_uri(path), is_small(path)) for n, path in paths.items()]
    meta = store.meta()
    curves = meta.get("auditor_curves") or {}
    failures: dict[str, int] = {}
    for p in probes.values():
        if p.error:
            reason = p.error.split(":", 1)[0]
            failures[reason] = failures.get(reason, 0) + 1
    page = render_page(
        "template.html",
        summary=summary,
        categories=categories,
        category_chart=bar_chart([(c["name"], c["flag_rate"], f"{c['size']} / {c['probes']}") for c in categories]),
        curves=[(name, line_chart(values)) for name, values in curves.items() if len(values) > 1],
        failures=sorted(failures.items(), key=lambda kv: -kv[1]),
        references=summary.references,
        image_styles=image_styles,
        dataset_answers=meta.get("dataset_answers") or [],
    )
    path = store.folder / REPORT
    write_text(path, page)
    return path
