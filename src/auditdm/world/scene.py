"""Scenes of the embedded world: what is in an image, exactly.

A scene places at most one item in each cell of a 3x3 grid, under a time of day, a weather
and a level of clutter. Images are rendered from scenes (``render.py``), questions are
answered from them (``oracle.py``), edits change them (``edit.py``). Everything is
immutable and JSON-serialisable, so a scene can travel inside a PNG.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, Literal, Union

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 38, 38),
    "green": (34, 160, 60),
    "blue": (40, 80, 225),
    "yellow": (240, 205, 25),
    "purple": (140, 55, 185),
    "orange": (245, 125, 20),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond")
SIZES = ("tiny", "small", "large")  # ordered: comparisons use this order
TEXTURES = ("plain", "striped", "dotted", "checkered")
DIRECTIONS = ("up", "down", "left", "right")
TIMES_OF_DAY = ("day", "night")
WEATHERS = ("clear", "rainy", "snowy", "foggy")
CLUTTER_LEVELS = {"none": 0, "light": 10, "heavy": 28}  # number of stray strokes drawn

# Cells, row-major; a name reads as the place in the picture.
CELLS = (
    "top left", "top middle", "top right",
    "middle left", "center", "middle right",
    "bottom left", "bottom middle", "bottom right",
)  # fmt: skip
HOURS = tuple(range(1, 13))
MINUTES = (0, 30)
SIGN_NUMBERS = tuple(range(100))


def cell_row_col(cell: str) -> tuple[int, int]:
    """Grid coordinates of a cell name (row 0 is the top)."""
    index = CELLS.index(cell)
    return index // 3, index % 3


def cell_at(row: int, col: int) -> str | None:
    """The cell name at grid coordinates, or None outside the grid."""
    if 0 <= row < 3 and 0 <= col < 3:
        return CELLS[row * 3 + col]
    return None


def format_time(hour: int, minute: int) -> str:
    return f"{hour}:{minute:02d}"


@dataclass(frozen=True)
class Shape:
    """A coloured geometric object; the only thing the grammar calls an "object"."""

    shape: str
    color: str
    size: str = "small"
    texture: str = "plain"
    kind: Literal["shape"] = "shape"

    @property
    def noun(self) -> str:
        return self.shape


@dataclass(frozen=True)
class Clock:
    """An analogue clock; hands show ``hour:minute``."""

    hour: int
    minute: int
    kind: Literal["clock"] = "clock"

    @property
    def noun(self) -> str:
        return "clock"

    @property
    def time(self) -> str:
        return format_time(self.hour, self.minute)


@dataclass(frozen=True)
class Sign:
    """A white board with a number written on it."""

    number: int
    kind: Literal["sign"] = "sign"

    @property
    def noun(self) -> str:
        return "sign"


@dataclass(frozen=True)
class Arrow:
    """A coloured arrow pointing in one of four directions."""

    direction: str
    color: str
    kind: Literal["arrow"] = "arrow"

    @property
    def noun(self) -> str:
        return "arrow"


Item = Union[Shape, Clock, Sign, Arrow]
_ITEM_TYPES: dict[str, type] = {"shape": Shape, "clock": Clock, "sign": Sign, "arrow": Arrow}


@dataclass(frozen=True)
class Scene:
    """Items by cell, plus the atmosphere. ``seed`` fixes the jitter and clutter strokes."""

    domain: ClassVar[str] = "world"  # the embedded domain that renders, edits and checks it
    items: dict[str, Item] = field(default_factory=dict)
    time_of_day: str = "day"
    weather: str = "clear"
    clutter: str = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        for cell in self.items:
            if cell not in CELLS:
                raise ValueError(f"unknown cell {cell!r}")
        if self.time_of_day not in TIMES_OF_DAY:
            raise ValueError(f"unknown time of day {self.time_of_day!r}")
        if self.weather not in WEATHERS:
            raise ValueError(f"unknown weather {self.weather!r}")
        if self.clutter not in CLUTTER_LEVELS:
            raise ValueError(f"unknown clutter level {self.clutter!r}")

    def with_items(self, items: dict[str, Item]) -> Scene:
        return replace(self, items=dict(sorted(items.items(), key=lambda kv: CELLS.index(kv[0]))))

    def free_cells(self) -> list[str]:
        return [c for c in CELLS if c not in self.items]

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": {cell: asdict(item) for cell, item in self.items.items()},
            "time_of_day": self.time_of_day,
            "weather": self.weather,
            "clutter": self.clutter,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        items: dict[str, Item] = {}
        for cell, raw in data["items"].items():
            fields = dict(raw)
            items[cell] = _ITEM_TYPES[fields.pop("kind")](**fields)
        return cls(
            items=items,
            time_of_day=data["time_of_day"],
            weather=data["weather"],
            clutter=data["clutter"],
            seed=int(data["seed"]),
        )
