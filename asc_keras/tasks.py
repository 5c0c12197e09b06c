"""One table of task definitions: everything that differs between DCASE 2020 1A, 1B, the TAU
Urban Acoustic Scenes 2022 Mobile benchmark (DCASE 2022-2025 Task 1) and a user's own folder.

A `Task` holds the class list (None for `custom`: the sorted labels of the training list, see
`Task.with_classes`), an optional label map (1B's 10 scenes -> 3 classes), the devices, the clip
length and sample rate the audio is brought to, the dash-separated fields of a development file
name (`audio/airport-lisbon-1000-40000-a.wav`), the default Log-Mel bins and backbone, the bins
and backbones a task refuses to change, the complexity limits of its challenge and the device
groups its reports score together (real a, b, c; seen s1-s3; unseen s4-s6 and the evaluation
sets' D, S7-S11). Every other module asks this table (`get(name)`) instead of testing for
"1a" / "1b".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType

SCENES_10 = (
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
CLASSES_3 = ("indoor", "outdoor", "transportation")
SCENE_TO_3 = MappingProxyType(
    {
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
)
DEVICES_MOBILE = ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")
FIELDS_2020 = ("scene", "city", "location", "segment", "device")
FIELDS_2022 = ("scene", "city", "location", "segment", "subsegment", "device")
# Device groups of the DCASE reports (2024/25 baselines): real devices, simulated devices seen in
# training and simulated devices never seen in training; the evaluation sets add the real device
# D and the simulated S7-S11, all unseen. Names are lower case, as file names spell them.
DEVICE_GROUPS_MOBILE = MappingProxyType(
    {
        "real": ("a", "b", "c"),
        "seen": ("s1", "s2", "s3"),
        "unseen": ("s4", "s5", "s6", "d", "s7", "s8", "s9", "s10", "s11"),
    }
)


@dataclasses.dataclass(frozen=True)
class Limits:
    """A challenge's complexity rule, counted the way its own checker counts.

    Attributes:
        rule: The rule's name as reports print it.
        max_bytes: Most bytes of parameter memory allowed (inclusive).
        unit: The unit the rule states its limit in, as reports print it ("KB", "kB").
        unit_bytes: Bytes in that unit (1024 or 1000).
        dtype: Every counted parameter takes the bytes of this dtype; None: the bytes of each
            variable's own dtype.
        count_batchnorm: Whether BatchNorm layers' weights (moving statistics too) count.
        count_zeros: Whether parameters whose value is zero count.
        max_macs: Most multiply-accumulates per clip allowed (inclusive), or None.
    """

    rule: str
    max_bytes: int
    unit: str
    unit_bytes: int
    dtype: str | None = None
    count_batchnorm: bool = True
    count_zeros: bool = True
    max_macs: int | None = None

    @property
    def limit_in_unit(self) -> float:
        """`max_bytes` in the rule's own unit (500 KB, 128 kB)."""
        return self.max_bytes / self.unit_bytes


# DCASE 2020 Task 1B: "model size 500 KB" of non-zero parameters, BatchNorm excluded, bytes by
# dtype; KB = 1024 bytes (the task's published examples count 119,758 float32 parameters as
# 468 KB), so the limit is 512,000 bytes.
LIMITS_2020_1B = Limits(
    rule="DCASE 2020 Task 1B",
    max_bytes=500 * 1024,
    unit="KB",
    unit_bytes=1024,
    dtype=None,
    count_batchnorm=False,
    count_zeros=False,
)
# DCASE 2022-2025 Task 1: 128 K parameters at int8 (2022; 2024/25: 128 kB of parameter memory)
# and 30 M multiply-accumulates per 1 s clip; every parameter counts. The official checkers
# use 128,000 bytes (NeSsi `MAX_PARAMS = 128e3`, the 2024 baseline's `MAX_PARAMS_MEMORY =
# 128_000`), not 131,072.
LIMITS_2022_2025 = Limits(
    rule="DCASE 2022-2025 Task 1",
    max_bytes=128_000,
    unit="kB",
    unit_bytes=1000,
    dtype="int8",
    count_batchnorm=True,
    count_zeros=True,
    max_macs=30_000_000,
)


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
        device_groups: `{group: devices}` that reports score together (real / seen / unseen),
            empty for a task without groups.
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
    fixed_bins: Mapping[str, int] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    limits: Limits | None = None
    device_groups: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )

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

    def check_fixed_bins(self, given: Mapping[str, int]) -> None:
        """Refuse explicit bins (`{representation: bins}`) that contradict `fixed_bins`, in one
        ValueError line naming the flag."""
        for name, bins in self.fixed_bins.items():
            if name in given and given[name] != bins:
                flag = f"{name}_bins"
                raise ValueError(
                    f"--{flag}={given[name]}: task {self.name} uses {bins} bins "
                    f"(drop the flag or give --{flag}={bins})"
                )

    def check_backbone(self, backbone: str) -> None:
        """Refuse a backbone the task does not allow (a 1A CNN on 1B), in one ValueError line."""
        if backbone not in self.backbones:
            raise ValueError(
                f"--backbone={backbone}: task {self.name} takes the "
                f"{'/'.join(self.backbones)} backbone"
            )

    def label_index(self, label: str) -> int:
        """Index of `label` (mapped by `class_map` first) in the class list."""
        if self.classes is None:
            raise ValueError(
                f"task {self.name}: the classes come from the training list; "
                "read them first (Task.with_classes)"
            )
        label = self.class_map.get(label, label)
        try:
            return self.classes.index(label)
        except ValueError:
            raise ValueError(
                f"unknown label {label!r} for task {self.name}; expected one of {self.classes}"
            ) from None


TASKS: Mapping[str, Task] = MappingProxyType(
    {
        "1a": Task(
            name="1a",
            title="TAU Urban Acoustic Scenes 2020 Mobile (DCASE 2020 Task 1A)",
            classes=SCENES_10,
            devices=DEVICES_MOBILE,
            eval_only_devices=("s4", "s5", "s6"),
            backbones=("1a", "1b"),
            device_groups=DEVICE_GROUPS_MOBILE,
        ),
        "1b": Task(
            name="1b",
            title="TAU Urban Acoustic Scenes 2020 3Class (DCASE 2020 Task 1B)",
            classes=CLASSES_3,
            class_map=SCENE_TO_3,
            devices=("a",),
            logmel_bins=64,
            backbones=("1b",),
            fixed_bins=MappingProxyType({"logmel": 64}),
            limits=LIMITS_2020_1B,
        ),
        "tau2022": Task(
            name="tau2022",
            title="TAU Urban Acoustic Scenes 2022 Mobile (DCASE 2022-2025 Task 1), 1 s clips",
            classes=SCENES_10,
            devices=DEVICES_MOBILE,
            eval_only_devices=("s4", "s5", "s6"),
            clip_seconds=1.0,
            filename_fields=FIELDS_2022,
            logmel_bins=64,
            backbones=("1b", "1a"),
            limits=LIMITS_2022_2025,
            device_groups=DEVICE_GROUPS_MOBILE,
        ),
        "custom": Task(
            name="custom",
            title="any folder: the official layout or train/<class>/*.wav",
            classes=None,
            filename_fields=(),
        ),
    }
)


def names() -> tuple[str, ...]:
    return tuple(TASKS)


def get(name: str) -> Task:
    """The task called `name`; a one-line ValueError naming the known ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}") from None


def classes(name: str, data_dir: str, read_labels: Callable[[str], tuple[str, ...]]):
    """The classes of task `name`: the table's, or for a task whose data decides them (custom)
    `read_labels(data_dir)`, the labels of the folder's training list
    (`asc_keras.data.dcase.resolve_classes`).

    Raises:
        ValueError: The data decides and `data_dir` is empty (one line).
    """
    spec = get(name)
    if spec.classes is not None:
        return spec.classes
    if not data_dir:
        raise ValueError(
            f"--task={name} takes its classes from the training list: --data_dir is required"
        )
    return read_labels(data_dir)
