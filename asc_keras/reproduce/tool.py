"""`reproduce(plan, ...)`: features once per task -> every planned run -> the fused table report.

Run folders of `out_dir` that hold runs of other settings than planned (a changed `--width`,
feature or training flag) are found first, before anything is computed: the tool stops with one
line per stale run, or with `retrain_stale` moves them aside and trains them again.

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
from asc_keras.reproduce.progress import LiveLine

SPLITS = ("train", "evaluate")


def banner(plan: Plan) -> str:
    """The report's first line: a shortened recipe is never mistaken for a reproduction."""
    notes = plan.shortened
    if notes:
        return (
            "**SHORTENED RECIPE, not a reproduction of the paper's numbers:** "
            + "; ".join(notes)
            + "."
        )
    return "Paper recipe: 12,000 steps of batch 64, full-width networks, 10 s clips."


def prepare_features(
    plan: Plan, data_cfgs: Mapping[str, DataConfig], *, progress: bool, log: Callable[[str], None]
) -> dict[str, str]:
    """`{task: features folder}`: each task's features computed once (or found) for all runs."""
    from asc_keras.data import precompute

    folders = {}
    for task in plan.tasks:
        cfg = dataclasses.replace(data_cfgs[task], task=task)
        folders[task] = precompute.ensure_features(
            plan.features[task], cfg, splits=SPLITS, progress=progress, log=log
        )
    return folders


def job_configs(
    job: runner.Job, *, data_dirs: Mapping[str, str], features_dir: str, overrides: Sequence[str]
) -> tuple:
    """`(FeatureConfig, DataConfig, ModelConfig, TrainConfig, FlagValues)` of a job: from
    exactly the flags its `train.py` child gets, read as `train.py` reads them."""
    from asc_keras import flags as flags_lib

    argv = runner.train_argv(
        job, data_dir=data_dirs[job.run.task], features_dir=features_dir, overrides=overrides
    )
    fv = flags_lib.flagfile_values(job.run.flagfile, tuple(argv[1:]))
    feature_cfg = flags_lib.feature_config(fv)
    return (
        feature_cfg,
        flags_lib.data_config(fv),
        flags_lib.model_config(feature_cfg, fv),
        flags_lib.train_config(fv),
        fv,
    )


def planned_record(
    job: runner.Job, *, data_dirs: Mapping[str, str], features_dir: str, overrides: Sequence[str]
) -> dict:
    """The config.json training would write for `job` (`runs.run_record` of its configs)."""
    from asc_keras.runs import run_record

    feature_cfg, data_cfg, model_cfg, train_cfg, _ = job_configs(
        job, data_dirs=data_dirs, features_dir=features_dir, overrides=overrides
    )
    return run_record(
        feature_cfg, data_cfg, model_cfg, train_cfg, classes=data_cfg.task_spec.classes
    )


def check_stale(
    todo: Sequence[runner.Job],
    *,
    out_dir: str,
    retrain_stale: bool,
    planned: Callable[[runner.Job], Mapping],
    log: Callable[[str], None],
) -> None:
    """Refuse run folders of other settings than planned, or move them aside to retrain them.

    Raises:
        runner.StaleRunsError: Stale runs without `retrain_stale` (one line per run).
    """
    stale = runner.stale_jobs(todo, planned)
    if stale and not retrain_stale:
        raise runner.StaleRunsError(out_dir, stale)
    for job, diff in stale:
        moved = runner.set_aside(job.model_dir, "stale")
        log(f"{job.key}: {', '.join(diff)}; moved aside to {moved}, training it again")


def train_inline(
    job: runner.Job,
    log: Callable[[str], None],
    *,
    data_dirs: Mapping[str, str],
    features_dir: str,
    overrides: Sequence[str],
) -> None:
    """Train one job in this process from exactly the flags a child process would get."""
    from asc_keras import flags as flags_lib
    from asc_keras.training import trainer

    feature_cfg, data_cfg, model_cfg, train_cfg, fv = job_configs(
        job, data_dirs=data_dirs, features_dir=features_dir, overrides=overrides
    )
    trainer.run(
        feature_cfg,
        data_cfg,
        model_cfg,
        train_cfg,
        flags_text=flags_lib.resolved_flags(fv),
        progress=False,
        log=log,
    )


def train_plan(
    plan: Plan,
    *,
    out_dir: str,
    data_cfgs: Mapping[str, DataConfig],
    seeds: Sequence[int],
    slots: Sequence[dict],
    shard: tuple[int, int],
    launch: str,
    train_script: str,
    overrides: Sequence[str],
    retrain_stale: bool,
    log: Callable[[str], None],
    live: LiveLine | None,
    prepare: Callable[[], dict[str, str]],
) -> tuple[dict, dict[str, str]]:
    """Stale check -> features (`prepare()`) -> every job of this shard trained (finished ones
    skipped): what every plan (the paper's tables, a protocol) shares; see `reproduce`.

    Returns:
        `(runner.execute(...) result, prepare()'s {key: features folder})`.
    """
    for task in plan.tasks:
        if task not in data_cfgs:
            raise ValueError(f"the plan has {task} rows but no dataset folder for {task}")
    features_dir = next(iter(data_cfgs.values())).features_dir
    data_dirs = {task: cfg.data_dir for task, cfg in data_cfgs.items()}
    todo = runner.jobs(plan, out_dir, seeds=seeds, shard=shard)
    check_stale(
        todo,
        out_dir=out_dir,
        retrain_stale=retrain_stale,
        log=log,
        planned=lambda job: planned_record(
            job, data_dirs=data_dirs, features_dir=features_dir, overrides=overrides
        ),
    )
    folders = prepare()
    steps = {run.name: run.train_steps for run in plan.runs}
    if launch == "process":
        if not train_script:
            raise ValueError("launch 'process' needs the path of train.py")
        # Each child gets its task's dataset folder through the overrides of its job.
        starts = {
            task: runner.process_launcher(
                train_script=train_script,
                data_dir=data_dir,
                features_dir=features_dir,
                overrides=overrides,
            )
            for task, data_dir in data_dirs.items()
        }

        def start(job, env):
            return starts[job.run.task][0](job, env)

        def poll(handle):
            return handle.poll()
    elif launch == "inline":
        slots = ({},)
        start, poll = runner.inline_launcher(
            train_one=lambda job, say: train_inline(
                job, say, data_dirs=data_dirs, features_dir=features_dir, overrides=overrides
            )
        )
    else:
        raise ValueError(f"launch must be 'process' or 'inline', got {launch!r}")
    outcome = runner.execute(
        todo,
        train_steps=lambda job: steps[job.run.name],
        start=start,
        poll=poll,
        slots=slots,
        out_dir=out_dir,
        log=log,
        live=live,
    )
    return outcome, folders


def reproduce(
    plan: Plan,
    *,
    out_dir: str,
    data_cfgs: Mapping[str, DataConfig],
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
    """Train this shard's share of the plan (skipping finished runs) and write the report.

    Before anything is computed, this shard's run folders are compared with the planned runs
    (`runner.stale_jobs`): a folder of other settings stops the tool (`runner.StaleRunsError`),
    or with `retrain_stale` is moved aside and its run trained again.

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
        retrain_stale: Move stale run folders aside (`<run>.stale-<n>`) and train them again.
        log: Progress lines.
        live: A terminal's status line for the training progress (`progress.LiveLine`); None
            logs a progress line whenever a running run's step changes.

    Returns:
        `{'results': [row dicts], 'paths': {ext: path}, 'runs': runner.execute(...) result}`.
    """
    from asc_keras.data.manifest import load_manifest

    t0 = time.time()
    outcome, folders = train_plan(
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
        prepare=lambda: prepare_features(plan, data_cfgs, progress=progress, log=log),
    )

    manifests = {task: load_manifest(folder) for task, folder in folders.items()}
    classes = {task: tuple(m.classes) for task, m in manifests.items()}
    per_seed, sizes = [], {}
    for seed in seeds:
        probs, metas, seed_sizes = report_lib.seed_probabilities(
            plan, out_dir, seed, manifests=manifests, batch_size=eval_batch_size
        )
        per_seed.append((probs, metas))
        sizes.update(seed_sizes)
    results = report_lib.summarize(plan, report_lib.score_rows(plan, per_seed, classes), sizes)
    extra = {
        "seeds": list(seeds),
        "features": folders,
        "compute": plan.compute(),
        "failed_runs": outcome["failed"],
        "seconds": round(time.time() - t0, 1),
    }
    paths = report_lib.write(out_dir, results, banner=banner(plan), extra=extra, print_fn=log)
    return {"results": results, "paths": paths, "runs": outcome}
