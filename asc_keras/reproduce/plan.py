"""The reproduction plan: the paper's table rows as decision-level fusions of independent runs.

Every row flagfile of `configs/` (paper Tables 2-4; `paper_results.tsv` beside them gives the
paper's numbers and which table a row belongs to) builds a `ModelConfig`; its `parts()` are the
independently trained networks (SPSMR members, SPSMF bands, SPSMT networks, one EF / MF / LF
network) with their fusion weights (paper eqs. 3-5). Parts of different rows that are the same
network (the same single-part `ModelConfig`) are trained once, so the plan is:

- `runs`: the distinct networks, each launched from the simplest row flagfile that holds it
  (fewest parts; `--model_part=<part>` when that row has several), named after the network
  (`1a_logmel`, `1a_gamma_band2_spsmf`, `1a_cqt_spsmt`, `1b_ef_spsmt`);
- `rows`: per table row, the runs it fuses and their weights (the same weights the joint model
  uses, e.g. 1/40 per band run and 1/8 per SPSMT run for SPSMR + SPSMF + SPSMT).

For Tables 2-3 that is 31 runs (34 CNNs, LF holding four conv stacks) instead of the 86 CNNs
of the 19 joint 1A row models; Table 4 adds 3 runs. Compute is counted from the networks
themselves (`models.complexity`: multiply-accumulates per clip; training = 6 x MACs FLOPs per
example).
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import json
import os
from collections.abc import Callable, Mapping, Sequence

from asc_keras.config import FeatureConfig, ModelConfig
from asc_keras.strategies.parts import model_parts

PAPER_RESULTS = "paper_results.tsv"


@dataclasses.dataclass(frozen=True)
class PaperRow:
    """One row of the paper's tables: accuracy (%), log loss and size as printed."""

    config: str
    tables: tuple[int, ...]
    label: str
    accuracy: float
    log_loss: float
    size: str


@dataclasses.dataclass(frozen=True)
class Run:
    """One independent training run of the plan.

    Attributes:
        name: Folder name of the run (`1a_gamma_band2_spsmf`).
        task: '1a' or '1b'.
        flagfile: The row flagfile it is launched from.
        model_part: `--model_part` for that flagfile (None when the row is this network alone).
        model_config: The network.
        rows: Row configs that fuse this run.
        cnns: Conv stacks in the network (4 for LF, else 1).
        macs: Forward multiply-accumulates per clip (0 when not counted).
        train_steps: Training steps.
        batch_size: Examples per step.
        flags: `train.py` flags of this run alone, given after the shared overrides (a
            protocol's training list and scaled schedule: `--train_csv=...`, `--train_steps=...`).
    """

    name: str
    task: str
    flagfile: str
    model_part: str | None
    model_config: ModelConfig
    rows: tuple[str, ...]
    cnns: int
    macs: int
    train_steps: int
    batch_size: int
    flags: tuple[str, ...] = ()

    @property
    def examples(self) -> int:
        return self.train_steps * self.batch_size

    @property
    def train_flops(self) -> float:
        return 6.0 * self.macs * self.examples


@dataclasses.dataclass(frozen=True)
class Row:
    """One table row: which runs it fuses, with which weights (summing to 1)."""

    config: str
    task: str
    paper: PaperRow
    members: tuple[tuple[str, float], ...]  # (run name, weight)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The runs to train, the rows that fuse them, and the feature settings of each task."""

    runs: tuple[Run, ...]
    rows: tuple[Row, ...]
    features: Mapping[str, FeatureConfig] = dataclasses.field(default_factory=dict)

    @property
    def shortened(self) -> list[str]:
        """How the recipe differs from the paper's (12,000 steps x 64, width 1, 10 s clips)."""
        notes = []
        examples = sorted({r.examples for r in self.runs})
        if examples != [12000 * 64]:
            notes.append(
                f"{'/'.join(f'{e:,}' for e in examples)} training examples per run "
                "instead of 768,000 (12,000 steps x 64)"
            )
        widths = sorted({r.model_config.width for r in self.runs})
        if widths != [1.0]:
            notes.append(f"width {'/'.join(map(str, widths))} instead of 1.0")
        clips = sorted({f.clip_seconds for f in self.features.values()})
        if clips and clips != [10.0]:
            notes.append(f"{'/'.join(map(str, clips))} s clips instead of 10 s")
        return notes

    def run(self, name: str) -> Run:
        return {r.name: r for r in self.runs}[name]

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.task for r in self.runs))

    def compute(self) -> dict:
        """CNN trainings, examples and training FLOPs of the plan, and of the joint row models."""
        runs = {r.name: r for r in self.runs}
        joint = [runs[name] for row in self.rows for name, _ in row.members]
        return {
            "runs": len(self.runs),
            "cnns": sum(r.cnns for r in self.runs),
            "examples": sum(r.examples for r in self.runs),
            "train_flops": sum(r.train_flops for r in self.runs),
            "joint_models": len(self.rows),
            "joint_cnns": sum(r.cnns for r in joint),
            "joint_examples": sum(r.examples for r in joint),
            "joint_train_flops": sum(r.train_flops for r in joint),
        }


def read_paper_results(configs_dir: str) -> dict[str, PaperRow]:
    """`configs/paper_results.tsv` -> `{row config name: PaperRow}`."""
    path = os.path.join(configs_dir, PAPER_RESULTS)
    try:
        with open(path, newline="") as f:
            records = list(csv.DictReader(f, delimiter="\t"))
    except OSError as e:
        raise ValueError(f"{path}: not readable ({e.strerror or e})") from None
    out = {}
    for rec in records:
        try:
            out[rec["config"]] = PaperRow(
                config=rec["config"],
                tables=tuple(int(t) for t in rec["tables"].split(",")),
                label=rec["row"],
                accuracy=float(rec["accuracy"]),
                log_loss=float(rec["log_loss"]),
                size=rec["size"],
            )
        except (KeyError, ValueError, AttributeError) as e:
            raise ValueError(f"{path}: bad row {rec} ({e})") from None
    return out


def row_flagfiles(configs_dir: str) -> list[str]:
    """Every row flagfile of the paper: the flagfiles `paper_results.tsv` lists (not the base
    files, nor configs beyond the paper such as `tau2022_*.flags`)."""
    paths = sorted(glob.glob(os.path.join(configs_dir, "*.flags")))
    table = os.path.join(configs_dir, "paper_results.tsv")
    listed = None
    if os.path.exists(table):
        with open(table) as f:
            listed = {line.split("\t", 1)[0] for line in f.read().splitlines()[1:] if line}
    return [
        p
        for p in paths
        if not os.path.basename(p).startswith("base_")
        and (listed is None or config_name(p) in listed)
    ]


def config_name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _key(cfg: ModelConfig) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True)


def _run_name(cfg: ModelConfig) -> str:
    return "_".join([cfg.backbone, cfg.prefix, *cfg.strategies])


def make_plan(
    configs_dir: str,
    *,
    tables: Sequence[int],
    read_flagfile: Callable,
    count_macs: Callable[[ModelConfig], int] | None = None,
) -> Plan:
    """The runs and fused rows for `tables` from the row flagfiles of `configs_dir`.

    Args:
        configs_dir: Folder of the row flagfiles and `paper_results.tsv`.
        tables: Paper table numbers (2, 3, 4).
        read_flagfile: `path -> (task, FeatureConfig, ModelConfig, {'train_steps',
            'batch_size'})` (`asc_keras.flags.flagfile_configs` with the user's overrides).
        count_macs: `ModelConfig -> forward MACs per clip`; None leaves them 0.

    Raises:
        ValueError: A table without rows, a row flagfile missing from paper_results.tsv (or
            the reverse), or rows of one task whose feature settings differ.
    """
    paper = read_paper_results(configs_dir)
    flagfiles = {config_name(p): p for p in row_flagfiles(configs_dir)}
    unknown = sorted(set(flagfiles) ^ set(paper))
    if unknown:
        raise ValueError(
            f"{os.path.join(configs_dir, PAPER_RESULTS)}: row flagfiles and paper "
            f"rows differ in {unknown}"
        )
    wanted = [name for name in paper if set(paper[name].tables) & set(tables)]  # table order
    if not wanted:
        raise ValueError(f"no row of tables {list(tables)} in {configs_dir}")

    found: dict[str, dict] = {}  # run key -> {'cfg', 'sources': [(parts, flagfile, part)], ...}
    rows, features = [], {}
    for name in wanted:
        task, feature_cfg, model_cfg, train = read_flagfile(flagfiles[name])
        if features.setdefault(task, feature_cfg) != feature_cfg:
            raise ValueError(
                f"{flagfiles[name]}: feature settings differ from the other {task} "
                "rows; one features folder serves a task"
            )
        parts = model_parts(model_cfg)
        members = []
        for part in parts:
            key = _key(part.config)
            entry = found.setdefault(
                key, {"cfg": part.config, "task": task, "sources": [], "rows": [], "train": train}
            )
            if entry["train"] != train:
                raise ValueError(
                    f"{flagfiles[name]}: {train} differs from another row's "
                    f"{entry['train']} for the same network"
                )
            entry["sources"].append(
                (len(parts), flagfiles[name], part.name if len(parts) > 1 else None)
            )
            entry["rows"].append(name)
            members.append((_run_name(part.config), part.weight))
        rows.append(Row(config=name, task=task, paper=paper[name], members=tuple(members)))

    runs = []
    for entry in found.values():
        cfg = entry["cfg"]
        _, flagfile, part = min(entry["sources"], key=lambda s: (s[0], s[1]))
        runs.append(
            Run(
                name=_run_name(cfg),
                task=entry["task"],
                flagfile=flagfile,
                model_part=part,
                model_config=cfg,
                rows=tuple(dict.fromkeys(entry["rows"])),
                cnns=len(cfg.inputs) if cfg.fusion == "lf" else 1,
                macs=count_macs(cfg) if count_macs else 0,
                train_steps=entry["train"]["train_steps"],
                batch_size=entry["train"]["batch_size"],
            )
        )
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"two different networks share a run name: {sorted(names)}")
    return Plan(runs=tuple(runs), rows=tuple(rows), features=dict(features))


def format_plan(plan: Plan) -> str:
    """The plan as a printed table: each run with its rows, examples and training FLOPs."""
    lines = [f"{'run':<24} {'from':<22} {'part':<14} {'examples':>9} {'train PFLOP':>11}  rows"]
    for r in plan.runs:
        lines.append(
            f"{r.name:<24} {config_name(r.flagfile):<22} {r.model_part or '-':<14} "
            f"{r.examples:>9,} {r.train_flops / 1e15:>11.2f}  {', '.join(r.rows)}"
        )
    c = plan.compute()
    saving = c["joint_train_flops"] / c["train_flops"] if c["train_flops"] else float("nan")
    lines += [
        "",
        f"plan: {c['runs']} runs ({c['cnns']} CNNs), {c['examples']:,} training examples, "
        f"{c['train_flops'] / 1e15:.1f} PFLOP",
        f"the {c['joint_models']} joint row models: {c['joint_cnns']} CNNs, "
        f"{c['joint_examples']:,} CNN-examples, {c['joint_train_flops'] / 1e15:.1f} PFLOP "
        f"({saving:.2f}x the plan)",
    ]
    for row in plan.rows:
        if len(row.members) <= 5:
            members = ", ".join(f"{n} x{w:.4g}" for n, w in row.members)
        else:
            weights = [w for _, w in row.members]
            members = ", ".join(f"{weights.count(w)} runs x{w:.4g}" for w in dict.fromkeys(weights))
        lines.append(
            f"  {row.config:<22} Table {'/'.join(map(str, row.paper.tables)):<4} "
            f"{row.paper.label}: {members}"
        )
    return "\n".join(lines)
