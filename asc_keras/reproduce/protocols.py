"""The DCASE 2024/25 data-efficiency protocol: one flagfile trained on every train subset.

`make_protocol_plan(flagfile, ...)` turns one TAU 2022 flagfile into a second plan for the
reproduction runner (the paper's tables are the first, `plan.make_plan`): one run per subset
`split_setup/split{5,10,25,50,100}.csv` (`--train_csv`), named `<flagfile>_split<p>`, each
trained per seed and scored on the development evaluate fold. The schedule is scaled per split as
the 2024 baseline scales its own (`CPJKU/dcase2024_task1_baseline`: a fixed 150 epochs on every
split, so its steps shrink with the split, and its 2,000 warm-up steps divided by 20 / 10 / 4 / 2
for the 5 / 10 / 25 / 50 % splits). With the flagfile's `--train_steps` S, `--lr_decay_steps` D
and `--warmup_steps` W as the 100 % schedule (W = 0: the baseline's share, 2,000 of its 81,900
steps):

- steps: `max(1, round(S * p / 100))`: a fixed number of epochs, as the baseline trains, from
  the nominal split sizes (so `--dry_run` needs no data);
- staircase decay interval: `max(1, round(D * p / 100))`: the same number of decays in every run,
  as the baseline's cosine spans each whole run;
- warm-up: `max(1, round(W / d))` with d = 20, 10, 4, 2, 1 for p = 5, 10, 25, 50, 100.

Every split has its own features folder (the folder is keyed by the training list, and the
normalization statistics come from that split alone). `PROTOCOL_FILE` in `configs/` holds the
2024 baseline's published development accuracies beside which the table is printed
(`protocol_report`).
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

from asc_keras.config import DataConfig, ModelConfig
from asc_keras.reproduce.plan import Plan, Run, config_name

PROTOCOL_FILE = "dcase2024_baseline.tsv"
SPLITS = (5, 10, 25, 50, 100)
WARMUP_DIVISORS = {5: 20, 10: 10, 25: 4, 50: 2, 100: 1}  # the 2024 baseline's
BASELINE_WARMUP = (2000, 81900)  # its warm-up steps of its 100 % run (150 epochs x 546 steps)
TASK = "tau2022"
# Set by the protocol for each run: a command line may not give them (warm-up, steps and decay
# are the 100 % values the protocol scales, so those may be given).
PROTOCOL_FLAGS = ("train_csv",)


@dataclasses.dataclass(frozen=True)
class BaselineSplit:
    """The 2024 baseline's development result on one split (%), as its README publishes it."""

    split: int
    accuracy: float
    accuracy_std: float
    devices: Mapping[str, float]


def split_csv(percent: int) -> str:
    return f"split_setup/split{percent}.csv"


def scaled_schedule(train: Mapping[str, int], percent: int) -> dict[str, int]:
    """`{'train_steps', 'lr_decay_steps', 'warmup_steps'}` of the `percent` % split from the
    100 % schedule `train` (see the module docstring)."""
    if percent not in WARMUP_DIVISORS:
        raise ValueError(f"split {percent}: the protocol's splits are {list(SPLITS)}")
    steps, decay = train["train_steps"], train["lr_decay_steps"]
    warmup = train.get("warmup_steps") or round(steps * BASELINE_WARMUP[0] / BASELINE_WARMUP[1])
    return {
        "train_steps": max(1, round(steps * percent / 100)),
        "lr_decay_steps": max(1, round(decay * percent / 100)),
        "warmup_steps": max(1, round(warmup / WARMUP_DIVISORS[percent])) if warmup else 0,
    }


def read_baseline(configs_dir: str) -> dict[int, BaselineSplit]:
    """`configs/dcase2024_baseline.tsv` -> `{split percent: BaselineSplit}`."""
    path = os.path.join(configs_dir, PROTOCOL_FILE)
    try:
        with open(path, newline="") as f:
            records = list(
                csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")
            )
    except OSError as e:
        raise ValueError(f"{path}: not readable ({e.strerror or e})") from None
    out = {}
    for rec in records:
        try:
            split = int(rec["split"])
            devices = {k: float(v) for k, v in rec.items() if k.startswith("device_")}
            out[split] = BaselineSplit(
                split=split,
                accuracy=float(rec["accuracy"]),
                accuracy_std=float(rec["accuracy_std"]),
                devices={k.removeprefix("device_"): v for k, v in devices.items()},
            )
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"{path}: bad row {rec} ({e})") from None
    return out


def make_protocol_plan(
    flagfile: str,
    *,
    splits: Sequence[int] = SPLITS,
    read_flagfile: Callable,
    count_macs: Callable[[ModelConfig], int] | None = None,
) -> Plan:
    """One run per split of the flagfile's network, with the split's list and scaled schedule.

    Args:
        flagfile: A TAU 2022 flagfile (`configs/tau2022_ef_spsmt.flags`).
        splits: Split percentages (some of `SPLITS`).
        read_flagfile: `path -> (task, FeatureConfig, ModelConfig, {'train_steps', 'batch_size',
            'lr_decay_steps', 'warmup_steps'})` (`flags.flagfile_configs` with the overrides).
        count_macs: `ModelConfig -> forward MACs per clip`; None leaves them 0.

    Raises:
        ValueError: Another task than TAU 2022, an unknown or repeated split.
    """
    task, feature_cfg, model_cfg, train = read_flagfile(flagfile)
    if task != TASK:
        raise ValueError(
            f"{flagfile}: --task={task}; the DCASE 2024 protocol trains TAU 2022 flagfiles "
            f"(--task={TASK}, whose split_setup/ lists it reads)"
        )
    unknown = [p for p in splits if p not in SPLITS]
    if unknown or not splits or len(set(splits)) != len(splits):
        raise ValueError(f"protocol splits {list(splits)}: give some of {list(SPLITS)} once each")
    macs = count_macs(model_cfg) if count_macs else 0
    runs = []
    for percent in sorted(splits):
        schedule = scaled_schedule(train, percent)
        runs.append(
            Run(
                name=f"{config_name(flagfile)}_split{percent}",
                task=task,
                flagfile=flagfile,
                model_part=None,
                model_config=model_cfg,
                rows=(),
                cnns=len(model_cfg.inputs) if model_cfg.fusion == "lf" else 1,
                macs=macs,
                train_steps=schedule["train_steps"],
                batch_size=train["batch_size"],
                flags=(
                    f"--train_csv={split_csv(percent)}",
                    *(f"--{k}={v}" for k, v in schedule.items()),
                ),
            )
        )
    return Plan(runs=tuple(runs), rows=(), features={task: feature_cfg})


def split_of(run: Run) -> int:
    """The split percentage of a protocol run (from its `--train_csv`)."""
    for flag in run.flags:
        if flag.startswith("--train_csv=split_setup/split"):
            return int(flag.removeprefix("--train_csv=split_setup/split").removesuffix(".csv"))
    raise ValueError(f"{run.name}: not a protocol run")


def schedule_of(run: Run) -> dict[str, int]:
    """`{'train_steps', 'lr_decay_steps', 'warmup_steps'}` a protocol run is given."""
    values = dict(flag.removeprefix("--").split("=", 1) for flag in run.flags)
    return {k: int(values[k]) for k in ("train_steps", "lr_decay_steps", "warmup_steps")}


def format_protocol_plan(plan: Plan, seeds: Sequence[int]) -> str:
    """The protocol's runs: split list, steps, decay interval, warm-up and examples per run."""
    lines = [
        f"{'run':<30} {'train list':<26} {'steps':>7} {'decay every':>11} {'warm-up':>7} "
        f"{'examples':>10} {'train PFLOP':>11}"
    ]
    for run in plan.runs:
        s = schedule_of(run)
        lines.append(
            f"{run.name:<30} {split_csv(split_of(run)):<26} {s['train_steps']:>7,} "
            f"{s['lr_decay_steps']:>11,} {s['warmup_steps']:>7,} {run.examples:>10,} "
            f"{run.train_flops / 1e15:>11.3f}"
        )
    total = sum(r.train_flops for r in plan.runs) * len(seeds)
    lines += [
        "",
        f"protocol: {len(plan.runs)} splits x {len(seeds)} seed(s) ({', '.join(map(str, seeds))})"
        f" = {len(plan.runs) * len(seeds)} runs, "
        f"{sum(r.examples for r in plan.runs) * len(seeds):,} training examples, "
        f"{total / 1e15:.2f} PFLOP",
    ]
    return "\n".join(lines)


def protocol_banner(plan: Plan, overrides: Sequence[str]) -> str:
    """The table's first line: the flagfile, the 100 % schedule and any changed flag."""
    full = {split_of(r): r for r in plan.runs}
    top = full.get(100) or plan.runs[-1]
    line = (
        f"DCASE 2024 data-efficiency protocol: `{config_name(top.flagfile)}` on "
        f"{', '.join(f'split{split_of(r)}' for r in plan.runs)}, batch {top.batch_size}, "
        f"{top.train_steps:,} steps on split{split_of(top)} (steps, decay interval and warm-up "
        "scaled per split)."
    )
    if overrides:
        line = (
            f"**RECIPE CHANGED from the flagfile's by {' '.join(overrides)}, not the flagfile's "
            f"protocol result:** {line}"
        )
    return line


def protocol_data_config(data_cfg: DataConfig, run: Run) -> DataConfig:
    """The dataset settings a protocol run trains with: its split's training list."""
    return dataclasses.replace(data_cfg, task=run.task, train_csv=split_csv(split_of(run)))
