"""One table of task definitions: everything that differs between DCASE 2020 1A, 1B, the TAU
Urban Acoustic Scenes 2022 Mobile benchmark (DCASE 2022-2025 Task 1) and a user's own folder.

A `Task` holds the class list (None for `custom`: the sorted labels of the training list, see
`Task.with_classes`), an optional label map (1B's 10 scenes -> 3 classes), the devices, the clip
length and sample rate the audio is brought to, the dash-separated fields of a development file
name (`audio/airport-lisbon-1000-40000-a.wav`), the default Log-Mel bins and backbone, the bins
and backbones a task refuses to change, and the complexity limits of its challenge. Every other
module asks this table (`get(name)`) instead of testing for "1a" / "1b".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

SCENES_10 = ("airport", "bus", "metro", "metro_station", "park", "public_square",
             "shopping_mall", "street_pedestrian", "street_traffic", "tram")
CLASSES_3 = ("indoor", "outdoor", "transportation")
SCENE_TO_3 = MappingProxyType({
    "airport": "indoor", "shopping_mall": "indoor", "metro_station": "indoor",
    "park": "outdoor", "public_square": "outdoor", "street_pedestrian": "outdoor",
    "street_traffic": "outdoor",
    "bus": "transportation", "metro": "transportation", "tram": "transportation",
})
DEVICES_MOBILE = ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")
FIELDS_2020 = ("scene", "city", "location", "segment", "device")
FIELDS_2022 = ("scene", "city", "location", "segment", "subsegment", "device")


@dataclasses.dataclass(frozen=True)
class Limits:
    """A challenge's complexity rule: parameter memory in KB (1024 bytes) at `dtype`, counting
    BatchNorm or not, and multiply-accumulates per clip (None: no limit)."""

    kb: float
    dtype: str = "float32"
    count_batchnorm: bool = True
    macs: int | None = None


@dataclasses.dataclass(frozen=True)
class Task:
    """One row of the task table.

    Attributes:
        name: `--task` value.
        title: The dataset it reads.
        classes: Model output order; None when the data decides (`custom`).
        class_map: Labels of the lists mapped to classes (1B: 10 scenes -> 3 classes).
        devices: Recording devices in report order (empty: unknown / any).
        eval_only_devices: Devices that occur only in the evaluate split.
        clip_seconds: Audio is padded or cut to this length.
        sample_rate: Audio is resampled to this rate (Hz).
        filename_fields: Dash-separated fields of an official file name; empty: not parsed.
        logmel_bins: Default Log-Mel bands.
        backbones: Backbones the task allows, the first being its default.
        fixed_bins: `{representation: bins}` that an explicit flag may not change.
        limits: The complexity rule of the task's challenge, or None.
    """

    name: str
    title: str
    classes: tuple[str, ...] | None
    class_map: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    devices: tuple[str, ...] = ()
    eval_only_devices: tuple[str, ...] = ()
    clip_seconds: float = 10.0
    sample_rate: int = 44100
    filename_fields: tuple[str, ...] = FIELDS_2020
    logmel_bins: int = 40
    backbones: tuple[str, ...] = ("1a", "1b")
    fixed_bins: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}))
    limits: Limits | None = None

    @property
    def backbone(self) -> str:
        return self.backbones[0]

    @property
    def data_defined(self) -> bool:
        """Whether the class list comes from the data (`custom`)."""
        return self.classes is None

    def with_classes(self, classes) -> Task:
        """This task with its class list fixed (a `custom` task once its labels are read)."""
        return dataclasses.replace(self, classes=tuple(classes))

    def label_index(self, label: str) -> int:
        """Index of `label` (mapped by `class_map` first) in the class list."""
        if self.classes is None:
            raise ValueError(f"task {self.name}: the classes come from the training list; "
                             "read them first (Task.with_classes)")
        label = self.class_map.get(label, label)
        try:
            return self.classes.index(label)
        except ValueError:
            raise ValueError(f"unknown label {label!r} for task {self.name}; expected one of "
                             f"{self.classes}") from None


TASKS: Mapping[str, Task] = MappingProxyType({
    "1a": Task(
        name="1a", title="TAU Urban Acoustic Scenes 2020 Mobile (DCASE 2020 Task 1A)",
        classes=SCENES_10, devices=DEVICES_MOBILE, eval_only_devices=("s4", "s5", "s6"),
        backbones=("1a", "1b")),
    "1b": Task(
        name="1b", title="TAU Urban Acoustic Scenes 2020 3Class (DCASE 2020 Task 1B)",
        classes=CLASSES_3, class_map=SCENE_TO_3, devices=("a",), logmel_bins=64,
        backbones=("1b",), fixed_bins=MappingProxyType({"logmel": 64}),
        limits=Limits(kb=500.0, dtype="float32", count_batchnorm=False)),
    "tau2022": Task(
        name="tau2022",
        title="TAU Urban Acoustic Scenes 2022 Mobile (DCASE 2022-2025 Task 1), 1 s clips",
        classes=SCENES_10, devices=DEVICES_MOBILE, eval_only_devices=("s4", "s5", "s6"),
        clip_seconds=1.0, filename_fields=FIELDS_2022, logmel_bins=64, backbones=("1b", "1a"),
        limits=Limits(kb=128.0, dtype="int8", count_batchnorm=True, macs=30_000_000)),
    "custom": Task(
        name="custom", title="any folder: the official layout or train/<class>/*.wav",
        classes=None, filename_fields=()),
})


def names() -> tuple[str, ...]:
    return tuple(TASKS)


def get(name: str) -> Task:
    """The task called `name`; a one-line ValueError naming the known ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}") from None
