"""`reproduce(plan, ...)`: features once per task -> every planned run -> the fused table report.

What `reproduce.py` does after reading its flags; tests call it directly. See `plan` for how rows
become runs, `runner` for how runs execute (processes per device, shards, resume) and `report`
for the scoring.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

from asc_keras.config import DataConfig
from asc_keras.reproduce import report as report_lib
from asc_keras.reproduce import runner
from asc_keras.reproduce.plan import Plan

SPLITS = ("train", "evaluate")


def banner(plan: Plan) -> str:
    """The report's first line: a shortened recipe is never mistaken for a reproduction."""
    notes = plan.shortened
    if notes:
        return ("**SHORTENED RECIPE, not a reproduction of the paper's numbers:** "
                + "; ".join(notes) + ".")
    return "Paper recipe: 12,000 steps of batch 64, full-width networks, 10 s clips."


def prepare_features(plan: Plan, data_cfgs: Mapping[str, DataConfig], *, progress: bool,
                     log: Callable[[str], None]) -> dict[str, str]:
    """`{task: features folder}`: each task's features computed once (or found) for all runs."""
    from asc_keras.data import precompute

    folders = {}
    for task in plan.tasks:
        if task not in data_cfgs:
            raise ValueError(f"the plan has {task} rows but no dataset folder for {task}")
        cfg = dataclasses.replace(data_cfgs[task], task=task)
        folders[task] = precompute.ensure_features(plan.features[task], cfg, splits=SPLITS,
                                                   progress=progress, log=log)
    return folders


def train_inline(job: runner.Job, log: Callable[[str], None], *, data_dirs: Mapping[str, str],
                 features_dir: str, overrides: Sequence[str]) -> None:
    """Train one job in this process from exactly the flags a child process would get."""
    from asc_keras import flags as flags_lib
    from asc_keras.training import run as train_run

    argv = runner.train_argv(job, data_dir=data_dirs[job.run.task], features_dir=features_dir,
                             overrides=overrides)
    fv = flags_lib.flagfile_values(job.run.flagfile, tuple(argv[1:]))
    feature_cfg = flags_lib.feature_config(fv)
    train_run.run(feature_cfg, flags_lib.data_config(fv), flags_lib.model_config(feature_cfg, fv),
                  flags_lib.train_config(fv), flags_text=flags_lib.resolved_flags(fv),
                  progress=False, log=log)


def reproduce(plan: Plan, *, out_dir: str, data_cfgs: Mapping[str, DataConfig],
              seeds: Sequence[int] = (0,), slots: Sequence[dict] = ({},),
              shard: tuple[int, int] = (0, 1), launch: str = "process", train_script: str = "",
              overrides: Sequence[str] = (), eval_batch_size: int = 64, progress: bool = True,
              log: Callable[[str], None] = print) -> dict:
    """Train this shard's share of the plan (skipping finished runs) and write the report.

    Args:
        plan: From `plan.make_plan`.
        out_dir: Output folder (runs/, logs/, status.json, results.*).
        data_cfgs: `{task: DataConfig}` (dataset folder and the shared features folder).
        seeds: Every run is trained once per seed; rows are mean +- std over seeds.
        slots: One environment override per concurrent child (`runner.device_slots`).
        shard: `(i, n)`: this machine takes every n-th run from i.
        launch: 'process' (a `train_script` child per run) or 'inline' (in this process).
        train_script: Path of `train.py` for 'process'.
        overrides: Flags given to every run after its row flagfile (`--train_steps=...`).
        eval_batch_size: Clips per batch when scoring the rows.
        progress: Precompute progress bar.
        log: Progress lines.

    Returns:
        `{'results': [row dicts], 'paths': {ext: path}, 'runs': runner.execute(...) result}`.
    """
    from asc_keras.data.manifest import load_manifest

    t0 = time.time()
    folders = prepare_features(plan, data_cfgs, progress=progress, log=log)
    features_dir = next(iter(data_cfgs.values())).features_dir
    data_dirs = {task: cfg.data_dir for task, cfg in data_cfgs.items()}
    todo = runner.jobs(plan, out_dir, seeds=seeds, shard=shard)
    steps = {run.name: run.train_steps for run in plan.runs}
    if launch == "process":
        if not train_script:
            raise ValueError("launch 'process' needs the path of train.py")
        # Each child gets its task's dataset folder through the overrides of its job.
        starts = {task: runner.process_launcher(train_script=train_script, data_dir=data_dir,
                                                features_dir=features_dir, overrides=overrides)
                  for task, data_dir in data_dirs.items()}

        def start(job, env):
            return starts[job.run.task][0](job, env)

        def poll(handle):
            return handle.poll()
    elif launch == "inline":
        slots = ({},)
        start, poll = runner.inline_launcher(train_one=lambda job, say: train_inline(
            job, say, data_dirs=data_dirs, features_dir=features_dir, overrides=overrides))
    else:
        raise ValueError(f"launch must be 'process' or 'inline', got {launch!r}")
    outcome = runner.execute(todo, train_steps=lambda job: steps[job.run.name], start=start,
                             poll=poll, slots=slots, out_dir=out_dir, log=log)

    manifests = {task: load_manifest(folder) for task, folder in folders.items()}
    classes = {task: tuple(m.classes) for task, m in manifests.items()}
    per_seed, sizes = [], {}
    for seed in seeds:
        probs, metas, seed_sizes = report_lib.seed_probabilities(
            plan, out_dir, seed, manifests=manifests, batch_size=eval_batch_size)
        per_seed.append((probs, metas))
        sizes.update(seed_sizes)
    results = report_lib.summarize(plan, report_lib.score_rows(plan, per_seed, classes), sizes)
    extra = {"seeds": list(seeds), "features": folders, "compute": plan.compute(),
             "failed_runs": outcome["failed"], "seconds": round(time.time() - t0, 1)}
    paths = report_lib.write(out_dir, results, banner=banner(plan), extra=extra, print_fn=log)
    return {"results": results, "paths": paths, "runs": outcome}
