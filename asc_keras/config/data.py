"""DataConfig: where the dataset and its precomputed features live, and how they are read."""

from __future__ import annotations

import dataclasses

from asc_keras import tasks as tasks_lib
from asc_keras.config.settings import setting

TASKS = tasks_lib.names()  # the task table's names: 1a, 1b, tau2022, custom
FINGERPRINTS = ("stat", "sha256")
ENGINES = ("local", "beam")  # who computes missing shards: worker processes, or Apache Beam


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the dataset and its precomputed features live, and how they are read.

    `classes` is the task's class list: filled from the task table for 1a, 1b and tau2022; a
    `custom` task takes the sorted labels of its training list (`asc_keras.data.dcase.
    resolve_classes`). `train_csv` may name any list of the folder, e.g. a TAU 2022 train subset
    `split_setup/split25.csv` (labels from meta.csv when it has only `filename`).
    """

    data_dir: str = setting(
        "", "DCASE 2020 Task 1 dataset folder (official layout).", flag_default=None
    )
    features_dir: str = setting(
        "",
        "Cache of precomputed features; default: $XDG_CACHE_HOME/asc_keras/features "
        "(~/.cache/asc_keras/features).",
        flag_default=None,
    )
    task: str = setting(
        "1a",
        "Task of the task table (asc_keras/tasks.py): 1a, 1b (DCASE 2020), tau2022 (TAU Urban "
        "Acoustic Scenes 2022 Mobile, 1 s clips) or custom (any labels: the official layout or "
        "train/<class>/*.wav, evaluate/<class>/*.wav). It sets the defaults of --clip_seconds, "
        "--sample_rate, --logmel_bins and --backbone.",
        choices=TASKS,
    )
    classes: tuple[str, ...] = ()
    train_csv: str = setting(
        "evaluation_setup/fold1_train.csv",
        "Training split list, relative to --data_dir; e.g. a TAU 2022 train subset "
        "split_setup/split25.csv (a list of file names only takes its labels from meta.csv).",
    )
    eval_csv: str = setting(
        "evaluation_setup/fold1_evaluate.csv", "Evaluation split list, relative to --data_dir."
    )
    num_workers: int = setting(2, "Feature extraction processes.", lower_bound=1)
    num_shards: int = setting(
        1,
        "Split the local engine's precompute across this many machines by hand (batch "
        "schedulers without a Beam runner; e.g. SLURM array jobs).",
        lower_bound=1,
    )
    shard_index: int = setting(0, "Which machine's part this is.", lower_bound=0)
    clips_per_shard: int = setting(256, "Clips per TFRecord shard.", lower_bound=1)
    skip_bad_files: bool = setting(
        False,
        "Skip undecodable or badly sized clips and list them in the manifest, instead of failing.",
    )
    splits: tuple[str, ...] = setting(
        ("train", "evaluate"),
        "Splits prepare.py computes: train, evaluate (fold lists) and test (unlabeled: "
        "evaluation_setup/fold1_test.csv, or every audio/*.wav of a challenge evaluation folder).",
    )
    # A clip whose length differs from clip_seconds by more than this fraction is an error
    # (1 s for the 10 s DCASE clips).
    max_length_error: float = 0.1
    fingerprint: str = setting(
        "stat",
        "How a rerun notices changed audio files: stat (size and modification time) or sha256 "
        "(size and content hash; reads every file on every run, and recomputes shards made "
        "without hashes once).",
        choices=FINGERPRINTS,
    )
    engine: str = setting(
        "local",
        "Who computes missing feature shards: local (--num_workers processes here) or beam (an "
        "Apache Beam pipeline; needs pip install -e '.[beam]').",
        choices=ENGINES,
    )
    beam_pipeline_options: str = setting(
        "",
        'With --engine=beam: Beam pipeline options, e.g. "--runner=FlinkRunner '
        '--flink_master=HOST:8081 --environment_type=DOCKER"; empty: the DirectRunner with '
        "--num_workers processes.",
    )
    dir_folder: str = setting(
        "",
        "Folder of device impulse responses (*.wav, e.g. MicIRP): with --dir_copies, the "
        "device-a training clips are also stored convolved with responses drawn from it (DIR "
        "augmentation; train.py uses them with --dir_p).",
    )
    dir_copies: int = setting(
        0, "Convolved copies stored per device-a training clip (0: none).", lower_bound=0
    )
    dir_seed: int = setting(
        0, "Seed of the draw of impulse responses for the stored copies.", lower_bound=0
    )

    def __post_init__(self):
        if self.dir_copies < 0 or self.dir_seed < 0:
            raise ValueError(
                f"dir_copies and dir_seed must be >= 0, got {self.dir_copies}, {self.dir_seed}"
            )
        if bool(self.dir_folder) != bool(self.dir_copies):
            raise ValueError(
                "--dir_folder and --dir_copies go together (a folder of impulse responses and "
                f"how many copies per clip), got {self.dir_folder!r} and {self.dir_copies}"
            )
        spec = tasks_lib.get(self.task)
        object.__setattr__(self, "classes", tuple(self.classes or spec.classes or ()))
        if spec.classes is not None and self.classes != spec.classes:
            raise ValueError(f"task {self.task} has the classes {spec.classes}, got {self.classes}")
        if self.classes and len(set(self.classes)) != len(self.classes):
            raise ValueError(f"duplicate classes in {self.classes}")
        if self.fingerprint not in FINGERPRINTS:
            raise ValueError(f"fingerprint must be one of {FINGERPRINTS}, got {self.fingerprint!r}")
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(f"shard_index {self.shard_index} not in [0, {self.num_shards})")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.engine == "beam" and self.num_shards > 1:
            raise ValueError(
                "--num_shards splits the local engine over machines by hand; with "
                "--engine=beam the runner spreads the work (drop --num_shards)"
            )

    @property
    def task_spec(self) -> tasks_lib.Task:
        """The task table's row with this config's classes (a `custom` task's once read)."""
        spec = tasks_lib.get(self.task)
        if not self.classes:
            raise ValueError(
                f"task {self.task}: the classes are not read yet (use "
                "asc_keras.data.dcase.resolve_classes)"
            )
        return spec.with_classes(self.classes)
