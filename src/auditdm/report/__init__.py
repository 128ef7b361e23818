"""The HTML report of a run: one self-contained page, readable offline in any browser.

Built from the store alone (``auditdm report RUN_DIR`` rebuilds it): the summary, a chart
of the failure categories, the auditor's training curves when it has them, and for each
category its most telling probes, original and counterfactual image side by side with
every model's answer. Images are inlined as data URIs and charts drawn as inline SVG, so
the page needs no network and no script. All text from models is escaped by Jinja2.
"""

from __future__ import annotations

import base64
from pathlib import Path

from auditdm.report.charts import bar_chart, line_chart
from auditdm.files import write_text
from auditdm.records import RunSummary
from auditdm.store import RunStore

REPORT = "report.html"
TEMPLATE = Path(__file__).parent / "template.html"


def write_report(store: RunStore, summary: RunSummary) -> Path:
    """Render ``report.html`` into the run directory; returns its path."""
    import jinja2

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(TEMPLATE.read_text())
    probes = {p.idx: p for p in store.probes()}
    sources = store.source_addresses()
    images: dict[str, str] = {}

    def data_uri(address: str | None) -> str | None:
        if address is None:
            return None
        if address not in images:
            images[address] = "data:image/png;base64," + base64.b64encode(store.image_path(address).read_bytes()).decode()
        return images[address]

    categories = [
        {**category, "examples": [{**probes[i].to_dict(), "original": data_uri(sources[probes[i].source]),
                                   "probed": data_uri(probes[i].image)} for i in category["examples"]]}
        for category in summary.to_dict()["categories"]
    ]  # fmt: skip
    curves = store.meta().get("auditor_curves") or {}
    failures: dict[str, int] = {}
    for p in probes.values():
        if p.error:
            reason = p.error.split(":", 1)[0]
            failures[reason] = failures.get(reason, 0) + 1
    page = template.render(
        summary=summary,
        categories=categories,
        category_chart=bar_chart([(c["name"], c["flag_rate"], f"{c['size']} / {c['probes']}") for c in categories]),
        curves=[(name, line_chart(values)) for name, values in curves.items() if len(values) > 1],
        failures=sorted(failures.items(), key=lambda kv: -kv[1]),
        references=summary.references,
    )
    path = store.folder / REPORT
    write_text(path, page)
    return path
