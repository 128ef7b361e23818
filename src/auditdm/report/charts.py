"""Inline SVG charts for the report: no script, no network, every label escaped by the template."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str  # shortened to fit beside the bar
    title: str  # the whole label, shown on hover
    note: str
    y: float
    width: float
    value: float


PLOT_WIDTH = 420
LABEL_CHARACTERS = 28  # what fits in the label column at the report's 12 px


def shorten(label: str, limit: int = LABEL_CHARACTERS) -> str:
    """``label`` cut to ``limit`` characters, ending in an ellipsis when cut."""
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class BarChart:
    bars: tuple[Bar, ...]
    height: float
    label_width: float = 220
    plot_width: float = PLOT_WIDTH


def bar_chart(rows: Sequence[tuple[str, float, str]], row_height: float = 24) -> BarChart:
    """Horizontal bars for values in [0, 1]: one per (label, value, note)."""
    bars = tuple(Bar(shorten(label), label, note, i * row_height, max(0.0, min(1.0, value)) * PLOT_WIDTH, value)
                 for i, (label, value, note) in enumerate(rows))  # fmt: skip
    return BarChart(bars, len(rows) * row_height)


@dataclass(frozen=True)
class LineChart:
    points: str  # the SVG polyline's points
    width: float
    height: float
    low: float
    high: float
    steps: int
    window: int  # the moving average drawn, in points


def line_chart(values: Sequence[float], width: float = 520, height: float = 140, points: int = 60) -> LineChart:
    """A polyline of ``values`` scaled into the box, with its range for the axis labels.

    Long per-step curves (GRPO rewards are 0 or 1 per probe) are drawn as a moving average
    over about ``len(values) / points`` steps, so that the trend shows, not the noise.
    """
    steps = len(values)
    window = max(1, steps // points)
    totals = [0.0, *accumulate(values)]
    values = [(totals[i + 1] - totals[max(0, i + 1 - window)]) / min(i + 1, window) for i in range(steps)]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(1, len(values) - 1)
    polyline = " ".join(f"{i * step:.1f},{height - (v - low) / span * height:.1f}" for i, v in enumerate(values))
    return LineChart(polyline, width, height, low, high, steps, window)
