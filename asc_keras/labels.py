"""Class lists, the 10 -> 3 class map and file-name parsing, read from the task table.

A DCASE 2020 file name is `audio/<scene>-<city>-<location>-<segment>-<device>.wav`, e.g.
`audio/airport-lisbon-1000-40000-a.wav`; a TAU 2022 one adds a sub-segment,
`audio/airport-barcelona-0-0-0-a.wav` (`asc_keras.tasks` holds the fields of each task).
Challenge evaluation files (`audio/0.wav`) carry none.
"""

from __future__ import annotations

import dataclasses
import os

from asc_keras import tasks as tasks_lib

SCENES_1A = tasks_lib.SCENES_10
CLASSES_1B = tasks_lib.CLASSES_3
SCENE_TO_1B = tasks_lib.SCENE_TO_3
DEVICES_1A = tasks_lib.TASKS["1a"].devices
DEVICES_1A_EVAL_ONLY = tasks_lib.TASKS["1a"].eval_only_devices
DEVICES_1B = tasks_lib.TASKS["1b"].devices
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
    """The class list of a task with fixed classes, in the order of the model's outputs."""
    spec = tasks_lib.get(task)
    if spec.classes is None:
        raise ValueError(
            f"task {task}: the classes come from the training list of the data "
            "folder (DataConfig.classes), not from the task table"
        )
    return spec.classes


def devices(task: str) -> tuple[str, ...]:
    """Devices of a task in report order (empty for a task whose devices are not known)."""
    return tasks_lib.get(task).devices


def label_index(label: str, task: str) -> int:
    """Index of `label` in the task's class list; a 1A scene name is mapped to its 1B class."""
    return tasks_lib.get(task).label_index(label)


@dataclasses.dataclass(frozen=True)
class ClipName:
    scene: str
    city: str
    location: str
    segment: str  # "<segment>-<subsegment>" for TAU 2022 names
    device: str

    @property
    def identifier(self) -> str:
        return f"{self.city}-{self.location}"


_KNOWN_FIELDS = (tasks_lib.FIELDS_2020, tasks_lib.FIELDS_2022)


def parse_filename(filename: str, fields: tuple[str, ...] | None = None) -> ClipName | None:
    """Parse a development-set file name; None for names without the pattern.

    Args:
        filename: e.g. `audio/airport-lisbon-1000-40000-a.wav`.
        fields: the task's `filename_fields`; None accepts the 2020 and the 2022 patterns, an
            empty tuple parses nothing (`custom`).
    """
    stem = os.path.splitext(os.path.basename(filename))[0]
    parts = stem.split("-")
    candidates = _KNOWN_FIELDS if fields is None else (fields,)
    for names in candidates:
        if names and len(parts) == len(names):
            d = dict(zip(names, parts, strict=True))
            segment = "-".join(d[k] for k in ("segment", "subsegment") if k in d)
            return ClipName(d["scene"], d["city"], d["location"], segment, d["device"])
    return None
