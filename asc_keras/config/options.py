"""Script options that are not fields of a config: each flag stated once, as a `Setting`.

`asc_keras.flags` defines them with the config fields' flags, in the group of the script that
reads them (`--model_part` with the model flags, `--mixed_precision` with the training flags,
predict.py's and reproduce.py's own flags in their groups).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from asc_keras.config.settings import Setting


def _options(*specs: Setting) -> Mapping[str, Setting]:
    return MappingProxyType({spec.flag: spec for spec in specs})


MODEL = _options(
    Setting(
        flag="model_part",
        kind="string",
        flag_default=None,
        help="Build only this independent part of the model (an SPSMR member such as 'cqt', an "
        "SPSMF band such as 'logmel_band2'), to train it as a separate run and fuse it later.",
    ),
)

TRAIN = _options(
    Setting(
        flag="mixed_precision",
        kind="bool",
        flag_default=False,
        help="Deprecated alias of --precision=mixed_float16.",
    ),
)

PREDICT = _options(
    Setting(
        flag="model",
        kind="string",
        flag_default=None,
        help="predict.py: a .tflite file, a SavedModel folder, an export folder, a model_dir or a "
        ".keras file.",
    ),
    Setting(
        flag="window_seconds",
        kind="float",
        flag_default=None,
        lower_bound=0.0,
        help="predict.py: classify sliding windows of this length (default: the model's clip "
        "length); a recording longer than the clip is always classified window by window.",
    ),
    Setting(
        flag="hop_seconds",
        kind="float",
        flag_default=None,
        lower_bound=0.0,
        help="predict.py: step between window starts (default: the window length).",
    ),
    Setting(
        flag="timeline_csv",
        kind="string",
        flag_default=None,
        help="predict.py: also write every window (file, start, end, scene, top probability, "
        "class probabilities) to this CSV file.",
    ),
    Setting(
        flag="clip_device",
        kind="string",
        flag_default=None,
        help="predict.py with --device_models: the recording device of every file (default: the "
        "device field of a TAU file name, e.g. b in airport-barcelona-0-0-0-b.wav).",
    ),
)

REPRODUCE = _options(
    Setting(
        flag="tables",
        kind="list",
        flag_default=("2", "3"),
        help="Paper tables to reproduce: 2 and 3 (DCASE 2020 1A, --data_dir) and/or 4 (1B, "
        "--data_dir_1b, or --data_dir when only Table 4 is asked).",
    ),
    Setting(
        flag="out",
        kind="string",
        flag_default=None,
        help="reproduce.py: output folder (runs/, logs/, status.json, results.{md,csv,json,png}); "
        "teach.py: the teacher logits file to write (.npz).",
    ),
    Setting(
        flag="data_dir_1b",
        kind="string",
        flag_default=None,
        help="DCASE 2020 1B folder for Table 4 when the same call also reproduces 1A tables.",
    ),
    Setting(
        flag="seeds",
        kind="list",
        flag_default=("1",),
        help="Seeds of every run: one number N means seeds 0..N-1 (--seeds=3), a comma-separated "
        "list means those seeds (--seeds=0,1,2; --seeds=4, for seed 4 alone); rows are reported "
        "as mean +- std over them.",
    ),
    Setting(
        flag="devices",
        kind="list",
        flag_default=(),
        help="GPUs to use (CUDA_VISIBLE_DEVICES values, e.g. 0,1,2,3): one run per device at a "
        "time (see --jobs_per_device); empty: the machine as it is.",
    ),
    Setting(
        flag="jobs_per_device",
        kind="integer",
        flag_default=1,
        lower_bound=1,
        help="Runs trained at once on each device (or on the machine without --devices).",
    ),
    Setting(
        flag="shard",
        kind="string",
        flag_default="0/1",
        help="i/n: take every n-th run starting at i, so n machines (a job array) share --out.",
    ),
    Setting(
        flag="dry_run",
        kind="bool",
        flag_default=False,
        help="Print the plan (runs, rows, compute) and stop.",
    ),
    Setting(
        flag="retrain_stale",
        kind="bool",
        flag_default=False,
        help="Run folders in --out that hold runs of other settings than planned are moved aside "
        "(<run>.stale-<n>, never deleted) and trained again; without it the tool stops and "
        "lists them.",
    ),
    Setting(
        flag="launch",
        kind="enum",
        flag_default="process",
        choices=("process", "inline"),
        help="process: each run is a train.py child process; inline: runs train one after "
        "another in this process.",
    ),
    Setting(
        flag="protocol",
        kind="enum",
        flag_default="paper",
        choices=("paper", "dcase2024"),
        help="paper: the paper's --tables; dcase2024: the DCASE 2024/25 data-efficiency protocol "
        "(the --flagfile's network trained on split_setup/split{5,10,25,50,100}.csv, schedule "
        "scaled per split, table beside the 2024 baseline's).",
    ),
    Setting(
        flag="protocol_splits",
        kind="list",
        flag_default=("5", "10", "25", "50", "100"),
        choices=("5", "10", "25", "50", "100"),
        help="--protocol=dcase2024: the train splits (percent of the development-train set).",
    ),
    Setting(
        flag="configs_dir",
        kind="string",
        flag_default=None,
        help="Folder of the row flagfiles and paper_results.tsv (default: configs/ beside "
        "reproduce.py).",
    ),
)


def seed_list(values) -> tuple[int, ...] | None:
    """`--seeds` as the seeds it names: one number N is seeds 0..N-1, two or more entries (a
    trailing comma counts: `4,`) are those seeds in order, repeats dropped; None when invalid."""
    items = [str(v).strip() for v in values]
    try:
        numbers = [int(v) for v in items if v]
    except ValueError:
        return None
    if not numbers or any(n < 0 for n in numbers):
        return None
    if len(items) == 1:
        return tuple(range(numbers[0])) or None
    return tuple(dict.fromkeys(numbers))
