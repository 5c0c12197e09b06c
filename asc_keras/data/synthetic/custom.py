"""A custom-labelled synthetic set and multi-scene recordings, from the same scene sounds.

`generate_custom` writes a folder whose labels the task table does not know (`beach`, `cafe`,
`factory`, `ferry` by default, each voiced by one of the ten scene profiles), either as class
subfolders (`train/<label>/*.wav`, `evaluate/<label>/*.wav`) or in the DCASE layout (`audio/`,
`meta.csv`, `evaluation_setup/fold1_{train,evaluate}.csv`). Whole locations stay on one side of
the split. `scene_recording` renders scenes back to back into one long mono recording (the
streaming test's input). 44.1 kHz mono, device `a`, 24-bit PCM.
"""

from __future__ import annotations

import math
import os
import pathlib
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from asc_keras import labels
from asc_keras.data.synthetic.devices import location_filters, render
from asc_keras.data.synthetic.grid import clip_grid
from asc_keras.data.synthetic.scenes import draw_city_style, draw_location
from asc_keras.data.synthetic.writing import (
    DatasetSummary,
    check_out_dir,
    readme_text,
    write_tsv,
    write_wav,
)

CUSTOM_LABELS = MappingProxyType(
    {"beach": "park", "cafe": "shopping_mall", "factory": "metro_station", "ferry": "tram"}
)
LAYOUTS = ("folders", "dcase")
_SR = 44100


def _segment(
    scene: str, location: str, segment: str, *, seconds: float, seed: int, sample_rate: int = _SR
) -> np.ndarray:
    """One device-a segment of a new location of `scene`: float `[n]` mono."""
    city = labels.CITIES[sum(map(ord, location)) % len(labels.CITIES)]
    loc = draw_location(scene, city, location, seed=seed, city_style=draw_city_style(seed, city))
    grid = clip_grid(sample_rate, 1, seconds)
    return render(loc, segment, location_filters(loc, ("a",), grid), grid)["a"][:, 0]


def scene_recording(
    scenes: Sequence[str], *, seconds_each: float, seed: int = 0, sample_rate: int = _SR
) -> np.ndarray:
    """`scenes` (1A scene names) rendered one after another: float32 `[len * seconds_each * sr]`."""
    parts = [
        _segment(s, f"rec{i}", "0", seconds=seconds_each, seed=seed, sample_rate=sample_rate)
        for i, s in enumerate(scenes)
    ]
    return np.concatenate(parts).astype(np.float32)


def generate_custom(
    out_dir: str | os.PathLike,
    *,
    clips_per_class: int = 12,
    clip_seconds: float = 1.0,
    layout: str = "folders",
    classes: Mapping[str, str] = CUSTOM_LABELS,
    clips_per_location: int = 2,
    seed: int = 0,
    overwrite: bool = False,
) -> DatasetSummary:
    """Write a synthetic set with custom labels (`classes`: label -> 1A scene that voices it).

    Args:
        out_dir: dataset folder; created if needed, must be empty unless `overwrite`.
        clips_per_class: clips per label, both splits together (about 30 % of each label's
            locations, at least one, go to evaluate).
        clip_seconds: duration of every clip.
        layout: "folders" (`train/<label>/<label>-<location>-<segment>.wav`) or "dcase".
        classes: label -> scene profile.
        clips_per_location: clips per location.
        seed: non-negative; equal arguments write byte-identical files.
        overwrite: replace an earlier synthetic set in `out_dir`.

    Returns:
        A `DatasetSummary` (task "custom").
    """
    started = time.perf_counter()
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    unknown = [s for s in classes.values() if s not in labels.SCENES_1A]
    if unknown or len(classes) < 2:
        raise ValueError(
            f"classes must map two or more labels to scenes of "
            f"{labels.SCENES_1A}; got {dict(classes)}"
        )
    locations = math.ceil(clips_per_class / clips_per_location)
    if locations < 2 or clip_seconds <= 0:
        raise ValueError(
            "need two locations per label (raise clips_per_class) and a positive clip_seconds"
        )
    root = pathlib.Path(out_dir)
    check_out_dir(
        root,
        overwrite=overwrite,
        layout_dirs=(
            ("train", "evaluate") if layout == "folders" else ("audio", "evaluation_setup")
        ),
    )
    (root / "README.txt").write_text(
        readme_text(
            "custom",
            layout=layout,
            classes=dict(classes),
            clips_per_class=clips_per_class,
            clip_seconds=clip_seconds,
            seed=seed,
        ),
        encoding="utf-8",
    )
    rows = {"train": [], "evaluate": []}
    meta = []
    for label in sorted(classes):
        num_eval = min(locations - 1, max(1, round(0.3 * locations)))
        for k in range(locations):
            split = "evaluate" if k < num_eval else "train"
            location = f"{label}{k}"
            for j in range(min(clips_per_location, clips_per_class - k * clips_per_location)):
                y = _segment(classes[label], location, str(j), seconds=clip_seconds, seed=seed)
                if layout == "folders":
                    name = f"{split}/{label}/{label}-{k}-{j}.wav"
                else:
                    name = f"audio/{label}-{k}-{j}-a.wav"
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                write_wav(root / name, y[:, None], _SR)
                rows[split].append((name, label))
                meta.append((name, label, f"site-{location}", "a"))
    if layout == "dcase":
        write_tsv(
            root / "meta.csv",
            ("filename", "scene_label", "identifier", "source_label"),
            sorted(meta),
        )
        for split, table in rows.items():
            write_tsv(
                root / "evaluation_setup" / f"fold1_{split}.csv",
                ("filename", "scene_label"),
                sorted(table),
            )
    return DatasetSummary(
        root=root,
        task="custom",
        classes=tuple(sorted(classes)),
        sample_rate=_SR,
        channels=1,
        clip_seconds=clip_seconds,
        num_train=len(rows["train"]),
        num_evaluate=len(rows["evaluate"]),
        num_locations=len({m[2] for m in meta}),
        devices=("a",),
        seconds=time.perf_counter() - started,
    )
