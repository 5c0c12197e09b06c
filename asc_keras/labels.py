"""Class lists of DCASE 2020 Task 1A/1B, the 10 -> 3 class map, and filename parsing.

A DCASE file name is `audio/<scene>-<city>-<location>-<segment>-<device>.wav`, e.g.
`audio/airport-lisbon-1000-40000-a.wav`. Challenge evaluation files (`audio/0.wav`) carry none.
"""

from __future__ import annotations

import dataclasses
import os

SCENES_1A = (
    "airport",
    "bus",
    "metro",
    "metro_station",
    "park",
    "public_square",
    "shopping_mall",
    "street_pedestrian",
    "street_traffic",
    "tram",
)
CLASSES_1B = ("indoor", "outdoor", "transportation")
SCENE_TO_1B = {
    "airport": "indoor",
    "shopping_mall": "indoor",
    "metro_station": "indoor",
    "park": "outdoor",
    "public_square": "outdoor",
    "street_pedestrian": "outdoor",
    "street_traffic": "outdoor",
    "bus": "transportation",
    "metro": "transportation",
    "tram": "transportation",
}
DEVICES_1A = ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")
DEVICES_1A_EVAL_ONLY = ("s4", "s5", "s6")
DEVICES_1B = ("a",)
CITIES = (
    "barcelona",
    "helsinki",
    "lisbon",
    "london",
    "lyon",
    "milan",
    "paris",
    "prague",
    "stockholm",
    "vienna",
)


def classes(task: str) -> tuple[str, ...]:
    """The class list of a task, in the order of the model's outputs."""
    if task == "1a":
        return SCENES_1A
    if task == "1b":
        return CLASSES_1B
    raise ValueError(f"unknown task {task!r}; expected '1a' or '1b'")


def devices(task: str) -> tuple[str, ...]:
    return DEVICES_1A if task == "1a" else DEVICES_1B


def label_index(label: str, task: str) -> int:
    """Index of `label` in the task's class list; a 1A scene name is mapped to its 1B class."""
    names = classes(task)
    if task == "1b" and label in SCENE_TO_1B:
        label = SCENE_TO_1B[label]
    try:
        return names.index(label)
    except ValueError:
        raise ValueError(
            f"unknown label {label!r} for task {task}; expected one of {names}") from None


@dataclasses.dataclass(frozen=True)
class ClipName:
    scene: str
    city: str
    location: str
    segment: str
    device: str

    @property
    def identifier(self) -> str:
        return f"{self.city}-{self.location}"


def parse_filename(filename: str) -> ClipName | None:
    """Parse an official development-set file name; None for names without the pattern."""
    stem = os.path.splitext(os.path.basename(filename))[0]
    parts = stem.split("-")
    if len(parts) != 5:
        return None
    return ClipName(*parts)
