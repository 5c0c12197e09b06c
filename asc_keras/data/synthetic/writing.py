"""Writing the synthetic folders: the summary of a written set, the output-folder guard (only a
folder this package wrote is ever replaced), tab-separated lists, 24-bit WAV files and README.txt.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
from collections.abc import Sequence
from types import MappingProxyType

import numpy as np
import soundfile as sf

SUBTYPE = "PCM_24"
_MARK = "SYNTHETIC"  # first word of README.txt; `overwrite` deletes only folders that have it
_TITLES = MappingProxyType(
    {
        "1a": "DCASE 2020 Task 1A (TAU Urban Acoustic Scenes 2020 Mobile)",
        "1b": "DCASE 2020 Task 1B (TAU Urban Acoustic Scenes 2020 3Class)",
        "tau2022": "TAU Urban Acoustic Scenes 2022 Mobile (DCASE 2022-2025 Task 1)",
        "custom": "custom-labelled scene",
    }
)


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    """What `generate` / `make_unlabeled_eval` wrote.

    Attributes:
        root: the dataset folder.
        task: "1a", "1b" or "tau2022".
        classes: the task's class list.
        sample_rate: Hz.
        channels: 1 (1A) or 2 (1B).
        clip_seconds: duration of every clip.
        num_train: rows of `fold1_train.csv` (0 for an unlabeled set).
        num_evaluate: rows of `fold1_evaluate.csv`, or of `fold1_test.csv` for an unlabeled set.
        num_locations: distinct `identifier`s (0 for an unlabeled set).
        devices: devices that occur in the set.
        seconds: wall-clock generation time.
    """

    root: pathlib.Path
    task: str
    classes: tuple[str, ...]
    sample_rate: int
    channels: int
    clip_seconds: float
    num_train: int
    num_evaluate: int
    num_locations: int
    devices: tuple[str, ...]
    seconds: float

    @property
    def num_files(self) -> int:
        return self.num_train + self.num_evaluate

    def line(self) -> str:
        """One-line human-readable summary."""
        return (
            f"synthetic {self.task.upper()} at {self.root}: {self.num_files} files "
            f"({self.num_train} train / {self.num_evaluate} evaluate), {len(self.classes)} "
            f"classes, {self.num_locations} locations, devices {','.join(self.devices)}, "
            f"{self.clip_seconds:g} s at {self.sample_rate} Hz x{self.channels}, "
            f"{self.seconds:.1f} s"
        )


def check_out_dir(
    root: pathlib.Path,
    *,
    overwrite: bool,
    layout_dirs: Sequence[str] = ("audio", "evaluation_setup"),
) -> None:
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root} is not empty; pass overwrite=True to replace it")
        readme = root / "README.txt"
        if not (readme.is_file() and readme.read_text(encoding="utf-8").startswith(_MARK)):
            raise FileExistsError(
                f"{root} holds files this module did not write (no synthetic README.txt); "
                "refusing to delete them"
            )
        for sub in ("audio", "evaluation_setup", "train", "evaluate", "device_irs"):
            if (root / sub).is_dir():
                shutil.rmtree(root / sub)
        for name in ("meta.csv", "README.txt"):
            (root / name).unlink(missing_ok=True)
    for sub in layout_dirs:
        (root / sub).mkdir(parents=True, exist_ok=True)


def write_tsv(path: pathlib.Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    lines = ["\t".join(header)] + ["\t".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_wav(path: pathlib.Path, y: np.ndarray, sr: int) -> None:
    sf.write(path, y[:, 0] if y.shape[1] == 1 else y, sr, subtype=SUBTYPE, format="WAV")


def readme_text(which: str, **settings) -> str:
    lines = [
        f"{_MARK} stand-in for the {_TITLES[which]} data.",
        "",
        "Written by asc_keras.data.synthetic. No recording in this folder is real: every clip is",
        "synthesised (coloured noise beds, hums, scene-typical events, room reverberation and a",
        "device colouring). Use it to test and demonstrate code, never to report results.",
        "Layout, file names and CSV headers follow the official TAU Urban Acoustic Scenes",
        "packages.",
        "",
        "Settings:",
    ]
    lines += [f"  {key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"
