"""Inline SVG charts for the report: no script, no network, every label escaped by the template."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    note: str
    y: float
    width: float
    value: float


PLOT_WIDTH = 420


@dataclass(frozen=True)
class BarChart:
    bars: tuple[Bar, ...]
    height: float
    label_width: float = 220
    plot_width: float = PLOT_WIDTH


def bar_chart(rows: Sequence[tuple[str, float, str]], row_height: float = 24) -> BarChart:
    """Horizontal bars for values in [0, 1]: one per (label, value, note)."""
    bars = tuple(Bar(label, note, i * row_height, max(0.0, min(1.0, value)) * PLOT_WIDTH, value)
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


def line_chart(values: Sequence[float], width: float = 520, height: float = 140) -> LineChart:
    """A polyline of ``values`` scaled into the box, with its range for the axis labels."""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - (v - low) / span * height:.1f}" for i, v in enumerate(values))
    return LineChart(points, width, height, low, high, len(values))
