"""Folder layouts of the synthetic sets: DCASE 2020 1A/1B and TAU 2022 development sets and a
challenge-style unlabeled evaluation folder, in the official layouts.

`generate` writes `audio/<scene>-<city>-<location>-<segment>-<device>.wav` (2020; TAU 2022 adds a
`-<subsegment>` cut of 1 s before the device), `meta.csv`, `evaluation_setup/fold1_train.csv`,
`fold1_evaluate.csv` and `fold1_test.csv`, tab-separated and sorted by file name, and
`README.txt` saying that the data is synthetic; TAU 2022 adds the DCASE 2024/25 train subsets
`split_setup/split{5,10,25,50,100}.csv` and `split_setup/test.csv` (`write_split_setup`).
`make_unlabeled_eval` writes `audio/0.wav` ... and an unlabeled `fold1_test.csv`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import time
from collections.abc import Sequence
from types import MappingProxyType

from asc_keras import labels
from asc_keras.data.synthetic.devices import location_filters, render
from asc_keras.data.synthetic.grid import clip_grid
from asc_keras.data.synthetic.scenes import Location, draw_city_style, draw_location
from asc_keras.data.synthetic.signals import seeded_rng
from asc_keras.data.synthetic.writing import (
    DatasetSummary,
    check_out_dir,
    readme_text,
    write_tsv,
    write_wav,
)

TASKS = ("1a", "1b", "tau2022")
SAMPLE_RATES = MappingProxyType({"1a": 44100, "1b": 48000, "tau2022": 44100})
CHANNELS = MappingProxyType({"1a": 1, "1b": 2, "tau2022": 1})
TRAIN_DEVICES_1A = ("b", "c", "s1", "s2", "s3")  # recorded in parallel with `a` in train
_MOBILE = ("1a", "tau2022")  # ten scenes, nine devices
SPLIT_PERCENTS = (5, 10, 25, 50, 100)  # the DCASE 2024/25 train subsets (tau2022)
_SEGMENT_STEP = 10000  # segment ids of one location: 0, 10000, 20000, ...
_EVAL_THINNING_1A = 3  # 1A evaluate locations keep one segment in 3, recorded by all devices


@dataclasses.dataclass(frozen=True)
class _Clip:
    loc: Location
    segment: str
    split: str  # "train" or "evaluate"
    devices: tuple[str, ...]


def _plan(
    task: str,
    *,
    clips_per_class: int,
    clips_per_location: int,
    cities: Sequence[str],
    evaluate_fraction: float,
    parallel_fraction: float,
    seed: int,
) -> list[_Clip]:
    """Locations, segments, splits and devices of every clip (no audio yet)."""
    class_names = labels.classes(task)
    if task in _MOBILE:
        members = {scene: [scene] for scene in labels.SCENES_1A}
    else:
        members = {
            c: [s for s in labels.SCENES_1A if labels.SCENE_TO_1B[s] == c] for c in class_names
        }
    city_styles = {city: draw_city_style(seed, city) for city in cities}
    next_location = dict.fromkeys(cities, 0)
    clips: list[_Clip] = []
    for ci, cls in enumerate(class_names):
        scenes = members[cls]
        per_scene = [
            clips_per_class // len(scenes) + (j < clips_per_class % len(scenes))
            for j in range(len(scenes))
        ]
        by_scene = []  # locations of each scene: (loc, number of segments)
        for si, (scene, count) in enumerate(zip(scenes, per_scene, strict=True)):
            locs = []
            for k in range(math.ceil(count / clips_per_location)):
                city = cities[(k + ci + si) % len(cities)]
                location = str(next_location[city])
                next_location[city] += 1
                loc = draw_location(scene, city, location, seed=seed, city_style=city_styles[city])
                locs.append((loc, min(clips_per_location, count - k * clips_per_location)))
            by_scene.append(locs)
        # Interleave the scenes' locations so that evaluate covers every scene of the class.
        order = []
        split_rng = seeded_rng(seed, "split", cls)
        for locs in by_scene:
            split_rng.shuffle(locs)
        for k in range(max(len(locs) for locs in by_scene)):
            order.extend(locs[k] for locs in by_scene if k < len(locs))
        if len(order) < 2:
            raise ValueError(
                f"class {cls!r} has {len(order)} location(s); both splits need one: raise "
                "clips_per_class or lower clips_per_location"
            )
        num_eval = min(len(order) - 1, max(1, round(evaluate_fraction * len(order))))
        for i, (loc, count) in enumerate(order):
            split = "evaluate" if i < num_eval else "train"
            if split == "evaluate" and task in _MOBILE:  # only the parallel-recorded segments
                count = math.ceil(count / _EVAL_THINNING_1A)
            for k in range(count):
                clips.append(_Clip(loc, str(_SEGMENT_STEP * k), split, ("a",)))
    if task in _MOBILE:
        clips = _add_parallel_devices(clips, parallel_fraction=parallel_fraction, seed=seed)
    return clips


def _add_parallel_devices(
    clips: list[_Clip], *, parallel_fraction: float, seed: int
) -> list[_Clip]:
    """1A: every evaluate segment gets all devices, a fraction of train segments b, c, s1-s3."""
    rng = seeded_rng(seed, "devices")
    train = [i for i, c in enumerate(clips) if c.split == "train"]
    extra: dict[int, list[str]] = {i: [] for i in train}
    for dev in TRAIN_DEVICES_1A:
        count = round(parallel_fraction * len(train))
        for i in rng.choice(len(train), size=count, replace=False):
            extra[train[int(i)]].append(dev)
    out = []
    for i, clip in enumerate(clips):
        if clip.split == "evaluate":
            devs = labels.DEVICES_1A
        else:
            devs = ("a", *sorted(extra[i], key=labels.DEVICES_1A.index))
        out.append(dataclasses.replace(clip, devices=devs))
    return out


def _filename(loc: Location, segment: str, device: str) -> str:
    return f"audio/{loc.scene}-{loc.city}-{loc.location}-{segment}-{device}.wav"


def _validate(task: str, clip_seconds: float, seed: int) -> None:
    if task not in SAMPLE_RATES:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if clip_seconds <= 0:
        raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")


def generate(
    out_dir: str | os.PathLike,
    *,
    task: str,
    clips_per_class: int = 90,
    clips_per_location: int = 3,
    num_cities: int = 10,
    clip_seconds: float = 10.0,
    evaluate_fraction: float = 0.3,
    parallel_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
    subsegments: int = 2,
) -> DatasetSummary:
    """Writes a synthetic DCASE 2020 Task 1 or TAU 2022 development set in the official layout.

    Sizes: every class of the task (10 scenes for 1A, 3 classes for 1B) gets `clips_per_class`
    segments recorded by device `a` (1B spreads them evenly over the class's scenes), grouped
    into locations of `clips_per_location` segments each; about `evaluate_fraction` of each
    class's locations (at least one, never all) form the evaluate split. In 1A, each of devices
    b, c, s1, s2, s3 also records `parallel_fraction` of the training segments; evaluate
    locations keep one segment in three (rounded up), each recorded by all nine devices (so
    s4-s6 occur only in evaluate, and every device has the same evaluate count). With the
    defaults, 1A has about 95 train and 81 evaluate files per scene, 1B 187 train and 83 evaluate
    files in all.

    Args:
        out_dir: dataset folder; created if needed, must be empty unless `overwrite`.
        task: "1a" (44.1 kHz mono, 10 scenes, 9 devices), "1b" (48 kHz stereo, 3 classes,
            device a) or "tau2022" (as 1a, every segment cut into `subsegments` clips of
            `clip_seconds`, named `<scene>-<city>-<location>-<segment>-<subsegment>-<device>`).
        clips_per_class: device-a segments per class, both splits together.
        clips_per_location: segments per location (the last location of a scene may have fewer).
        num_cities: the first `num_cities` of `labels.CITIES` are used, cycled over locations.
        clip_seconds: duration of every clip; the official sets have 10 s.
        evaluate_fraction: share of each class's locations that go to the evaluate split.
        parallel_fraction: 1A only, share of training segments each of b, c, s1-s3 records.
        seed: non-negative; equal arguments write byte-identical files.
        overwrite: replace the files of an earlier synthetic set in `out_dir` (a folder whose
            README.txt was not written by this module is never touched).
        subsegments: tau2022 only, consecutive clips cut from one segment (the real set cuts
            each 10 s recording into ten 1 s clips).

    Returns:
        A `DatasetSummary` of what was written.

    Raises:
        ValueError: for an unknown task, a non-positive size, or a class with a single location.
        FileExistsError: when `out_dir` is not empty and `overwrite` is False, or when it holds
            something other than a synthetic set.
    """
    started = time.perf_counter()
    _validate(task, clip_seconds, seed)
    if clips_per_class < 2 or clips_per_location < 1 or not 1 <= num_cities <= len(labels.CITIES):
        raise ValueError(
            f"need clips_per_class >= 2, clips_per_location >= 1 and 1 <= num_cities <= "
            f"{len(labels.CITIES)}; got {clips_per_class}, {clips_per_location}, {num_cities}"
        )
    if not 0.0 < evaluate_fraction < 1.0 or not 0.0 <= parallel_fraction <= 1.0:
        raise ValueError("evaluate_fraction must lie in (0, 1) and parallel_fraction in [0, 1]")
    if subsegments < 1:
        raise ValueError(f"subsegments must be positive, got {subsegments}")
    cuts = subsegments if task == "tau2022" else 1
    root = pathlib.Path(out_dir)
    grid = clip_grid(SAMPLE_RATES[task], CHANNELS[task], clip_seconds * cuts)
    clips = _plan(
        task,
        clips_per_class=clips_per_class,
        clips_per_location=clips_per_location,
        cities=labels.CITIES[:num_cities],
        evaluate_fraction=evaluate_fraction,
        parallel_fraction=parallel_fraction,
        seed=seed,
    )
    check_out_dir(root, overwrite=overwrite)
    settings = dict(
        task=task,
        clips_per_class=clips_per_class,
        clips_per_location=clips_per_location,
        num_cities=num_cities,
        clip_seconds=clip_seconds,
        evaluate_fraction=evaluate_fraction,
        parallel_fraction=parallel_fraction,
        seed=seed,
    )
    if task == "tau2022":
        settings["subsegments"] = cuts
    # Written first: an interrupted run leaves a folder that `overwrite` recognises as ours.
    (root / "README.txt").write_text(readme_text(task, **settings), encoding="utf-8")

    meta, train, evaluate = [], [], []
    location_devices: dict[str, set[str]] = {}
    for clip in clips:
        location_devices.setdefault(clip.loc.identifier, set()).update(clip.devices)
    ident, filters = None, {}
    for clip in clips:
        if clip.loc.identifier != ident:  # clips of a location are consecutive
            ident = clip.loc.identifier
            filters = location_filters(clip.loc, sorted(location_devices[ident]), grid)
        audio = render(clip.loc, clip.segment, {d: filters[d] for d in clip.devices}, grid)
        label = labels.SCENE_TO_1B[clip.loc.scene] if task == "1b" else clip.loc.scene
        step = grid.n // cuts
        for device, y in audio.items():
            for k in range(cuts):
                segment = clip.segment if task != "tau2022" else f"{clip.segment}-{k}"
                name = _filename(clip.loc, segment, device)
                write_wav(root / name, y[k * step : (k + 1) * step], grid.sr)
                meta.append((name, label, ident, device))
                (train if clip.split == "train" else evaluate).append((name, label))
    meta.sort()
    train.sort()
    evaluate.sort()
    write_tsv(root / "meta.csv", ("filename", "scene_label", "identifier", "source_label"), meta)
    setup = root / "evaluation_setup"
    write_tsv(setup / "fold1_train.csv", ("filename", "scene_label"), train)
    write_tsv(setup / "fold1_evaluate.csv", ("filename", "scene_label"), evaluate)
    write_tsv(setup / "fold1_test.csv", ("filename",), [(f,) for f, _ in evaluate])
    if task == "tau2022":
        write_split_setup(root, [f for f, _ in train], [f for f, _ in evaluate], seed=seed)
    devices = tuple(d for d in labels.devices(task) if any(row[3] == d for row in meta))
    return DatasetSummary(
        root=root,
        task=task,
        classes=labels.classes(task),
        sample_rate=grid.sr,
        channels=grid.channels,
        clip_seconds=clip_seconds,
        num_train=len(train),
        num_evaluate=len(evaluate),
        num_locations=len({row[2] for row in meta}),
        devices=devices,
        seconds=time.perf_counter() - started,
    )


def write_split_setup(
    root: pathlib.Path, train: Sequence[str], evaluate: Sequence[str], *, seed: int
) -> None:
    """`split_setup/split{5,10,25,50,100}.csv` (`filename` only, as the DCASE 2024/25 baselines
    publish them) and `split_setup/test.csv` (the development evaluate fold).

    As the official subsets: each is a subset of the next larger one, a recording (every 1 s
    clip of one segment and device) is in or out as a whole, and every scene keeps about its
    share (at least one recording per scene). Recordings are ranked per scene in a seeded
    random order and each split takes the first `round(p / 100 * n)` of them.
    """
    recordings: dict[str, dict[str, list[str]]] = {}  # scene -> recording -> clips
    for name in train:
        fields = pathlib.PurePosixPath(name).stem.split("-")
        key = "-".join(fields[:4] + fields[5:])  # the clip without its subsegment
        recordings.setdefault(fields[0], {}).setdefault(key, []).append(name)
    ranked = {}
    for scene, recs in recordings.items():
        keys = sorted(recs)
        order = seeded_rng(seed, "split_setup", scene).permutation(len(keys))
        ranked[scene] = [keys[i] for i in order]
    setup = root / "split_setup"
    setup.mkdir(exist_ok=True)
    for percent in SPLIT_PERCENTS:
        names = []
        for scene, keys in ranked.items():
            take = max(1, round(percent / 100 * len(keys)))
            names += [clip for key in keys[:take] for clip in recordings[scene][key]]
        write_tsv(setup / f"split{percent}.csv", ("filename",), [(n,) for n in sorted(names)])
    write_tsv(setup / "test.csv", ("filename",), [(n,) for n in sorted(evaluate)])


def make_unlabeled_eval(
    out_dir: str | os.PathLike,
    *,
    task: str,
    num_clips: int = 20,
    clip_seconds: float = 10.0,
    seed: int = 1,
    answer_key: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> DatasetSummary:
    """Writes a challenge-evaluation-style folder: `audio/0.wav` ... and an unlabeled test list.

    Scenes, cities and (1A) devices are drawn at random; `evaluation_setup/fold1_test.csv` has the
    header `filename` only. No label is stored in the folder; `answer_key`, when given, receives
    a tab-separated `filename  scene_label` file (place it outside `out_dir`).

    Args:
        out_dir: dataset folder; created if needed, must be empty unless `overwrite`.
        task: "1a", "1b" or "tau2022".
        num_clips: number of files.
        clip_seconds: duration of every clip.
        seed: non-negative; use a different seed from the development set's.
        answer_key: optional path of the hidden labels (task classes).
        overwrite: replace the files of an earlier synthetic set in `out_dir`.

    Returns:
        A `DatasetSummary` (`num_evaluate` = `num_clips`, no train rows, no locations).
    """
    started = time.perf_counter()
    _validate(task, clip_seconds, seed)
    if num_clips < 1:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    root = pathlib.Path(out_dir)
    check_out_dir(root, overwrite=overwrite)
    (root / "README.txt").write_text(
        readme_text(
            task,
            kind="unlabeled evaluation set",
            num_clips=num_clips,
            clip_seconds=clip_seconds,
            seed=seed,
        ),
        encoding="utf-8",
    )
    grid = clip_grid(SAMPLE_RATES[task], CHANNELS[task], clip_seconds)
    rng = seeded_rng(seed, "unlabeled", task)
    names, key, used = [], [], set()
    for i in range(num_clips):
        scene = str(rng.choice(labels.SCENES_1A))
        city = str(rng.choice(labels.CITIES))
        device = str(rng.choice(labels.devices(task)))
        loc = draw_location(
            scene, city, f"eval{i}", seed=seed, city_style=draw_city_style(seed, city)
        )
        y = render(loc, "0", location_filters(loc, (device,), grid), grid)
        name = f"audio/{i}.wav"
        write_wav(root / name, y[device], grid.sr)
        names.append((name,))
        key.append((name, labels.SCENE_TO_1B[scene] if task == "1b" else scene))
        used.add(device)
    write_tsv(root / "evaluation_setup" / "fold1_test.csv", ("filename",), names)
    if answer_key is not None:
        write_tsv(pathlib.Path(answer_key), ("filename", "scene_label"), key)
    return DatasetSummary(
        root=root,
        task=task,
        classes=labels.classes(task),
        sample_rate=grid.sr,
        channels=grid.channels,
        clip_seconds=clip_seconds,
        num_train=0,
        num_evaluate=num_clips,
        num_locations=0,
        devices=tuple(d for d in labels.devices(task) if d in used),
        seconds=time.perf_counter() - started,
    )
