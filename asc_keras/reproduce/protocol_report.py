"""Run the DCASE 2024 protocol plan with the reproduction runner and write its table.

`reproduce_protocol(plan, ...)`: every split's features (its own folder: keyed by the training
list, normalized with that split's statistics) -> every (seed, split) run through
`tool.train_plan` (the stale-run, resume, shard and launch rules of the paper's tables) -> each
finished run scored on the development evaluate fold (`evaluator.score`) -> per split, over
seeds, mean +- std (population std, as the paper's tables) of the macro-average class accuracy,
the accuracy per device group (real / seen / unseen: macro over the group's clips) and per
device (the share of its clips right, as the baseline's device table), beside the 2024
baseline's published development numbers (`protocols.read_baseline`).

Outputs in `out_dir`: `results_dcase2024.md` (the table, its first line the protocol's banner),
`results_dcase2024.csv` (one line per split) and `results_dcase2024.json` (everything, with
every run's scores).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from asc_keras import tasks as tasks_lib
from asc_keras.config import DataConfig
from asc_keras.reproduce import protocols, tool
from asc_keras.reproduce import report as report_lib
from asc_keras.reproduce.plan import Plan
from asc_keras.reproduce.progress import LiveLine

RESULTS_NAME = "results_dcase2024"


def prepare_split_features(
    plan: Plan, data_cfg: DataConfig, *, progress: bool, log: Callable[[str], None]
) -> dict[str, str]:
    """`{run name: features folder}`: each split's training list and the evaluate fold."""
    from asc_keras.data import precompute

    return {
        run.name: precompute.ensure_features(
            plan.features[run.task],
            protocols.protocol_data_config(data_cfg, run),
            splits=tool.SPLITS,
            progress=progress,
            log=log,
        )
        for run in plan.runs
    }


def score_runs(
    plan: Plan, out_dir: str, seeds: Sequence[int], folders: Mapping[str, str], batch_size: int
) -> dict[str, list]:
    """`{run name: [metrics of each seed, None where the run is not finished]}`."""
    from asc_keras.data.manifest import load_manifest
    from asc_keras.evaluation import evaluator

    out = {}
    for run in plan.runs:
        manifest = load_manifest(folders[run.name])
        single = Plan(runs=(run,), rows=(), features=plan.features)
        scores = []
        for seed in seeds:
            probs, metas, _ = report_lib.seed_probabilities(
                single, out_dir, seed, manifests={run.task: manifest}, batch_size=batch_size
            )
            scores.append(
                evaluator.score(probs[run.name], metas[run.task], manifest.classes, task=run.task)
                if run.name in probs
                else None
            )
        out[run.name] = scores
    return out


def _pct_stats(values: list) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return 100 * float(np.mean(values)), 100 * float(np.std(values))


def summarize(
    plan: Plan, scores: Mapping[str, list], baseline: Mapping[int, protocols.BaselineSplit]
) -> list[dict]:
    """One dict per split: ours (mean +- std over finished seeds, %) beside the baseline's."""
    results = []
    for run in plan.runs:
        split = protocols.split_of(run)
        done = [s for s in scores[run.name] if s]
        spec = tasks_lib.get(run.task)
        acc, acc_std = _pct_stats([s["all"]["accuracy"] for s in done])
        groups = {}
        for group in spec.device_groups:
            mean, std = _pct_stats(
                [(s["all"].get("device_groups") or {}).get(group, {}).get("accuracy") for s in done]
            )
            if mean is not None:
                groups[group] = {"accuracy": mean, "accuracy_std": std}
        devices = {}
        for device in spec.devices:
            mean, std = _pct_stats(
                [s["all"]["device_wise"].get(device, {}).get("accuracy") for s in done]
            )
            if mean is not None:
                devices[device] = {"accuracy": mean, "accuracy_std": std}
        base = baseline.get(split)
        results.append(
            {
                "split": split,
                "run": run.name,
                "train_csv": protocols.split_csv(split),
                **protocols.schedule_of(run),
                "baseline_accuracy": None if base is None else base.accuracy,
                "baseline_accuracy_std": None if base is None else base.accuracy_std,
                "baseline_devices": {} if base is None else dict(base.devices),
                "accuracy": acc,
                "accuracy_std": acc_std,
                "difference": None if acc is None or base is None else acc - base.accuracy,
                "log_loss": None
                if not done
                else float(np.mean([s["all"]["log_loss"] for s in done])),
                "groups": groups,
                "devices": devices,
                "seeds": len(done),
                "missing_seeds": len(scores[run.name]) - len(done),
            }
        )
    return results


def _fmt(value, std=None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" + ("" if std is None else f" ± {std:.2f}")


def markdown(results: Sequence[Mapping], *, banner: str) -> str:
    """The protocol table: per split ours vs the baseline, then groups and devices."""
    groups = list(dict.fromkeys(g for r in results for g in r["groups"]))
    devices = list(dict.fromkeys(d for r in results for d in r["devices"]))
    head = ["split", "steps", "warm-up", "baseline acc %", "ours acc %", "difference"]
    head += [f"{g} %" for g in groups] + ["seeds"]
    lines = [banner, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        diff = "-" if r["difference"] is None else f"{r['difference']:+.2f}"
        missing = f" ({r['missing_seeds']} missing)" if r["missing_seeds"] else ""
        cells = [
            f"{r['split']} %",
            f"{r['train_steps']:,}",
            f"{r['warmup_steps']:,}",
            _fmt(r["baseline_accuracy"], r["baseline_accuracy_std"]),
            _fmt(r["accuracy"], r["accuracy_std"]),
            diff,
            *(
                _fmt(
                    r["groups"].get(g, {}).get("accuracy"),
                    r["groups"].get(g, {}).get("accuracy_std"),
                )
                for g in groups
            ),
            f"{r['seeds']}{missing}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if devices:
        lines += [
            "",
            "Accuracy per device % (the share of its clips right; ours / baseline), mean over "
            "seeds:",
            "",
            "| split | " + " | ".join(devices) + " |",
            "|---|" + "---|" * len(devices),
        ]
        for r in results:
            cells = [
                f"{_fmt(r['devices'].get(d, {}).get('accuracy'))} / "
                f"{_fmt(r['baseline_devices'].get(d))}"
                for d in devices
            ]
            lines.append(f"| {r['split']} % | " + " | ".join(cells) + " |")
    if groups:
        lines += [
            "",
            "Groups: "
            + "; ".join(
                f"{g} = {', '.join(tasks_lib.get(protocols.TASK).device_groups[g])}" for g in groups
            )
            + " (macro-average class accuracy over the group's clips).",
        ]
    return "\n".join(lines) + "\n"


def _csv(results: Sequence[Mapping]) -> str:
    groups = list(dict.fromkeys(g for r in results for g in r["groups"]))
    devices = list(dict.fromkeys(d for r in results for d in r["devices"]))
    fields = [
        "split", "train_csv", "train_steps", "lr_decay_steps", "warmup_steps",
        "baseline_accuracy", "baseline_accuracy_std", "accuracy", "accuracy_std", "difference",
        "log_loss",
    ]  # fmt: skip
    fields += [f"accuracy_{g}" for g in groups] + [f"accuracy_{g}_std" for g in groups]
    fields += [f"accuracy_device_{d}" for d in devices] + ["seeds"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in results:
        row = dict(r)
        for g in groups:
            row[f"accuracy_{g}"] = r["groups"].get(g, {}).get("accuracy")
            row[f"accuracy_{g}_std"] = r["groups"].get(g, {}).get("accuracy_std")
        for d in devices:
            row[f"accuracy_device_{d}"] = r["devices"].get(d, {}).get("accuracy")
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in fields})
    return buf.getvalue()


def write(
    out_dir: str,
    results: Sequence[Mapping],
    *,
    banner: str,
    extra: Mapping,
    print_fn: Callable[[str], None] | None = print,
) -> dict[str, str]:
    """results_dcase2024.{md,csv,json} in `out_dir`; returns their paths. Prints the table."""
    from asc_keras import atomic

    paths = {ext: os.path.join(out_dir, f"{RESULTS_NAME}.{ext}") for ext in ("md", "csv", "json")}
    text = markdown(results, banner=banner)
    atomic.write_text(paths["md"], text)
    atomic.write_text(paths["csv"], _csv(results))
    atomic.write_json(
        paths["json"],
        {"banner": banner, **dict(extra), "splits": json.loads(json.dumps(list(results)))},
    )
    if print_fn:
        print_fn(text)
    return paths


def reproduce_protocol(
    plan: Plan,
    *,
    out_dir: str,
    data_cfg: DataConfig,
    configs_dir: str,
    seeds: Sequence[int] = (0,),
    slots: Sequence[dict] = ({},),
    shard: tuple[int, int] = (0, 1),
    launch: str = "process",
    train_script: str = "",
    overrides: Sequence[str] = (),
    eval_batch_size: int = 64,
    progress: bool = True,
    retrain_stale: bool = False,
    log: Callable[[str], None] = print,
    live: LiveLine | None = None,
) -> dict:
    """Train this shard's share of the protocol plan and write the table (see the module
    docstring; the arguments are `tool.reproduce`'s, `data_cfg` the TAU 2022 folder's).

    Returns:
        `{'results': [split dicts], 'scores': {run: [metrics per seed]}, 'paths': {ext: path},
        'runs': runner.execute(...) result}`.
    """
    for flag in overrides:
        name = flag.removeprefix("--").split("=", 1)[0]
        if name in protocols.PROTOCOL_FLAGS:
            raise ValueError(f"{flag}: the DCASE 2024 protocol sets --{name} for every split")
    baseline = protocols.read_baseline(configs_dir)
    data_cfgs = {protocols.TASK: data_cfg}
    outcome, folders = tool.train_plan(
        plan,
        out_dir=out_dir,
        data_cfgs=data_cfgs,
        seeds=seeds,
        slots=slots,
        shard=shard,
        launch=launch,
        train_script=train_script,
        overrides=overrides,
        retrain_stale=retrain_stale,
        log=log,
        live=live,
        prepare=lambda: prepare_split_features(plan, data_cfg, progress=progress, log=log),
    )
    scores = score_runs(plan, out_dir, seeds, folders, eval_batch_size)
    results = summarize(plan, scores, baseline)
    banner = protocols.protocol_banner(plan, overrides)
    extra = {
        "protocol": "dcase2024",
        "seeds": list(seeds),
        "features": folders,
        "failed_runs": outcome["failed"],
        "scores": scores,
    }
    paths = write(out_dir, results, banner=banner, extra=extra, print_fn=log)
    return {"results": results, "scores": scores, "paths": paths, "runs": outcome}
