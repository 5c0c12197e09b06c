"""Execute a reproduction plan: every (seed, run) as an ordinary training run, resumably.

Layout under `out_dir`:

    runs/seed<k>/<run name>/   a training run folder (the `train.py` layout, flags.txt included)
    logs/seed<k>/<run name>.log
    status.json                per (seed, run): done / failed (with the error line)

- A run whose folder holds `metrics.json` at the planned step count and `model.keras` is done
  and skipped; any other run is (re)started with the same command, so an interrupted run
  resumes from its last checkpoint (training resume is exact).
- A run folder whose config.json differs from the planned run's record (`stale_jobs`: every
  field but those of `MAY_DIFFER`) is never reused nor resumed: the tool refuses it before
  training anything (`StaleRunsError`), or moves it aside to `<run>.stale-<n>` (`set_aside`).
- A status.json that is not a JSON object is set aside to `status.json.corrupt-<n>` with a note.
- `launch='process'`: each run is `python train.py --flagfile=<row flagfile>
  [--model_part=<part>] --model_dir=... --seed=k <overrides>` in a child process with its own
  `CUDA_VISIBLE_DEVICES`; `slots` devices x jobs per device children run at once (on a machine
  without GPUs, `jobs` children share the CPU). `launch='inline'` trains the runs one after
  another in this process (the same configs and `training.trainer`; for CPUs and tests).
- `shard=(i, n)` takes every n-th (seed, run) item starting at i, so n machines of a job array
  share one `out_dir` on a common filesystem.
- A failed run is recorded and the others go on. Progress: runs finished of total, each running
  run's step of its total with its ETA (from the steps its log shows over time), and an ETA of
  the whole share (`progress`). At a terminal (`progress.LiveLine`) that is one status line
  rewritten in place as the children log; otherwise a progress line is logged whenever a
  running run's step changes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence

from asc_keras.errors import AscError
from asc_keras.reproduce import progress
from asc_keras.reproduce.plan import Plan, Run
from asc_keras.runs import CONFIG_NAME, with_legacy_fields

STATUS_NAME = "status.json"

# The fields of a run's config.json that may differ between a run folder and the planned run
# that reuses (or resumes) it: paths, cadences and how the steps are executed, none of which
# changes the weights. Every other recorded field (task, classes, training list, features,
# model, training recipe, seed, step count) must be equal. Settings not recorded there (the
# number of workers, shard sizes, --verbosity) never make a run stale.
MAY_DIFFER = {
    "train_config": (
        "model_dir",
        "eval_every",
        "eval_batch_size",
        "checkpoint_every",
        "keep_checkpoints",
        "log_every",
        "distribution",
        "steps_per_loop",
        "jit_compile",
        "deterministic",
    ),
    "data": ("features",),
    # The teacher file's absolute path; its sha256 (a changed file) and train_config.teacher
    # (as given) make a run stale.
    "teacher": ("path",),
}


@dataclasses.dataclass(frozen=True)
class Job:
    seed: int
    run: Run
    model_dir: str
    log_path: str

    @property
    def key(self) -> str:
        return f"seed{self.seed}/{self.run.name}"


def run_dir(out_dir: str, seed: int, name: str) -> str:
    return os.path.join(out_dir, "runs", f"seed{seed}", name)


def jobs(
    plan: Plan, out_dir: str, *, seeds: Sequence[int], shard: tuple[int, int] = (0, 1)
) -> list[Job]:
    """Every (seed, run) of the plan, seed-major, then this shard's share of them."""
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: need 0 <= i < n")
    every = [
        Job(
            seed,
            run,
            run_dir(out_dir, seed, run.name),
            os.path.join(out_dir, "logs", f"seed{seed}", f"{run.name}.log"),
        )
        for seed in seeds
        for run in plan.runs
    ]
    return every[index::count]


def is_done(job: Job, train_steps: int) -> bool:
    """The run finished: model.keras saved and metrics.json written after `train_steps`."""
    try:
        with open(os.path.join(job.model_dir, "metrics.json")) as f:
            step = json.load(f).get("step")
    except (OSError, json.JSONDecodeError):
        return False
    return step == train_steps and os.path.exists(os.path.join(job.model_dir, "model.keras"))


def _flat(record: Mapping, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    out = {}
    for key, value in record.items():
        path = (*prefix, key)
        out.update(_flat(value, path) if isinstance(value, Mapping) else {path: value})
    return out


def record_differences(recorded: Mapping, planned: Mapping) -> list[str]:
    """The fields a run's config.json and the planned run's record disagree on.

    Args:
        recorded: A run folder's config.json (read with the values of fields added since).
        planned: The record training would write for the planned run (`runs.run_record`).

    Returns:
        `['width 0.04 -> 0.08', ...]`: every field of the planned record's sections (a field
        missing on one side differs), named without its section; `MAY_DIFFER` left out, and so
        are sections training adds beyond `run_record` (descriptions derived from its configs).
    """
    old = _flat(with_legacy_fields(recorded))
    new = _flat(json.loads(json.dumps(planned)))  # as written to config.json
    out = []
    for path in dict.fromkeys([*new, *old]):
        if path[0] not in planned or (path[1:2] and path[1] in MAY_DIFFER.get(path[0], ())):
            continue
        if old.get(path) != new.get(path):
            out.append(f"{'.'.join(path[1:] or path)} {old.get(path)} -> {new.get(path)}")
    return out


def stale_jobs(
    todo: Sequence[Job], planned_record: Callable[[Job], Mapping]
) -> list[tuple[Job, list[str]]]:
    """The jobs whose folder holds a run (finished or not) of other settings than planned.

    Args:
        todo: The jobs of this machine.
        planned_record: `job -> the config.json its training would write`.

    Returns:
        `[(job, differences)]` (see `record_differences`; an unreadable config.json is one
        difference); a folder without config.json is not stale (nothing was recorded there).
    """
    out = []
    for job in todo:
        path = os.path.join(job.model_dir, CONFIG_NAME)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                recorded = json.load(f)
        except (OSError, ValueError) as e:
            diff = [f"{CONFIG_NAME} unreadable ({' '.join(str(e).split())})"]
        else:
            diff = (
                record_differences(recorded, planned_record(job))
                if isinstance(recorded, Mapping)
                else [f"{CONFIG_NAME} not a JSON object"]
            )
        if diff:
            out.append((job, diff))
    return out


class StaleRunsError(AscError, ValueError):
    """Run folders of `out_dir` hold runs of other settings than the plan's."""

    def __init__(self, out_dir: str, stale: Sequence[tuple[Job, list[str]]], *, shown: int = 6):
        lines = [
            f"{out_dir}: {len(stale)} run folder(s) hold runs of other settings than "
            "this plan; nothing was trained:"
        ]
        for job, diff in stale:
            more = f", and {len(diff) - shown} more" if len(diff) > shown else ""
            lines.append(f"  {job.key}: {', '.join(diff[:shown])}{more}")
        lines.append(
            "use a new --out, or --retrain_stale to move these runs aside "
            "(<run>.stale-<n>) and train them again"
        )
        super().__init__("\n".join(lines))


def set_aside(path: str, tag: str) -> str:
    """Rename `path` to `<path>.<tag>-<n>` (the first free n from 1), never deleting anything;
    returns the new path."""
    n = 1
    while os.path.lexists(f"{path}.{tag}-{n}"):
        n += 1
    os.rename(path, f"{path}.{tag}-{n}")
    return f"{path}.{tag}-{n}"


def train_argv(
    job: Job, *, data_dir: str, features_dir: str, overrides: Sequence[str]
) -> list[str]:
    """The `train.py` flags of a job (the row flagfile first, so overrides win, and the run's own
    flags last)."""
    argv = [f"--flagfile={os.path.abspath(job.run.flagfile)}"]
    if job.run.model_part:
        argv.append(f"--model_part={job.run.model_part}")
    return argv + [
        f"--data_dir={data_dir}",
        f"--features_dir={features_dir}",
        f"--model_dir={job.model_dir}",
        f"--seed={job.seed}",
        *overrides,
        *job.run.flags,
    ]


def _last_error(log_path: str) -> str:
    try:
        with open(log_path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["exited without output"])[-1][:300]


class _Status:
    """status.json: `{job key: {'state': 'done' | 'failed', 'error': str, 'seconds': float}}`,
    re-read before every write so that machines sharing out_dir keep each other's entries.
    A file that is not a JSON object is set aside (`status.json.corrupt-<n>`) with a note."""

    def __init__(self, out_dir: str, log: Callable[[str], None]):
        self.path = os.path.join(out_dir, STATUS_NAME)
        self.log = log

    def read(self) -> dict:
        try:
            with open(self.path, "rb") as f:
                status = json.load(f)
        except FileNotFoundError:
            return {}
        except ValueError as e:  # not JSON (or not text)
            status, reason = None, f"not JSON ({' '.join(str(e).split())})"
        else:
            reason = f"a JSON {type(status).__name__}, not an object"
        if isinstance(status, dict):
            return status
        moved = set_aside(self.path, "corrupt")
        self.log(f"{self.path}: {reason}; set aside as {moved}")
        return {}

    def set(self, key: str, entry: dict) -> None:
        from asc_keras import atomic

        status = self.read()
        status[key] = entry
        atomic.write_json(self.path, status)


def execute(
    todo: Sequence[Job],
    *,
    train_steps: Callable[[Job], int],
    start: Callable[[Job], object],
    poll: Callable[[object], int | None],
    slots: Sequence[dict],
    out_dir: str,
    log: Callable[[str], None] = print,
    interval: float = 2.0,
    live: progress.LiveLine | None = None,
) -> dict:
    """Run `todo` on `slots` (one environment dict per concurrent job), skipping done jobs.

    Args:
        todo: The jobs of this machine.
        train_steps: The planned step count of a job (its done criterion).
        start: `(job, slot environment) -> handle` (`process_launcher`, `inline_launcher`).
        poll: `handle -> exit code or None while running`.
        slots: Environment overrides per concurrent job (e.g. `{'CUDA_VISIBLE_DEVICES': '0'}`).
        out_dir: Where status.json lives.
        log: Progress lines.
        interval: Seconds between polls.
        live: A terminal's status line: progress is shown there, rewritten every poll, instead
            of a logged line per step change (`log` lines are printed above it).

    Returns:
        `{'done': [keys], 'failed': {key: error line}, 'skipped': [keys already done]}`.
    """
    if live is not None:
        log = functools.partial(live.log, print_fn=log)
    try:
        return _execute(todo, train_steps, start, poll, slots, out_dir, log, interval, live)
    finally:
        if live is not None:
            live.close()


def _execute(todo, train_steps, start, poll, slots, out_dir, log, interval, live) -> dict:
    status = _Status(out_dir, log)
    status.read()  # a corrupt file is set aside before any run starts
    skipped = [j.key for j in todo if is_done(j, train_steps(j))]
    pending = [j for j in todo if not is_done(j, train_steps(j))]
    total = len(todo)
    log(
        f"{len(skipped)} of {total} runs already done; {len(pending)} to train on "
        f"{len(slots)} slot(s)"
    )
    free = list(range(len(slots)))
    running: dict[int, tuple[Job, object, float]] = {}
    done, failed, durations = [], {}, []
    pace, logged = progress.Pace(), None
    while pending or running:
        while pending and free:
            slot = free.pop(0)
            job = pending.pop(0)
            os.makedirs(os.path.dirname(job.log_path), exist_ok=True)
            t0 = time.time()
            running[slot] = (job, start(job, slots[slot]), t0)
        for slot, (job, handle, t0) in list(running.items()):
            code = poll(handle)
            if code is None:
                continue
            del running[slot]
            free.append(slot)
            seconds = time.time() - t0
            if code == 0 and is_done(job, train_steps(job)):
                durations.append(seconds)
                done.append(job.key)
                status.set(job.key, {"state": "done", "seconds": round(seconds, 1)})
                log(f"done {job.key} in {seconds:.0f} s")
            else:
                error = _last_error(job.log_path)
                failed[job.key] = error
                status.set(job.key, {"state": "failed", "error": error, "log": job.log_path})
                log(f"FAILED {job.key} (exit {code}): {error}  [log: {job.log_path}]")
        if running:
            now = time.time()
            steps = [(job, pace.step(job, now)) for job, _, _ in running.values()]
            etas = [pace.eta(job, now) for job, _ in steps]
            if durations:
                run_seconds = sum(durations) / len(durations)
            else:  # no run finished yet: a whole run at the running runs' pace
                known = [
                    found[1] * pace.seconds_per_step(job)
                    for job, found in steps
                    if found is not None and pace.seconds_per_step(job) is not None
                ]
                run_seconds = sum(known) / len(known) if known else None
            line = progress.progress_line(
                len(skipped) + len(done) + len(failed),
                total,
                len(failed),
                [(job, found, eta) for (job, found), eta in zip(steps, etas, strict=True)],
                share_eta=progress.share_eta(etas, run_seconds, len(pending), len(slots)),
            )
            if live is not None:
                live.show(line)
            elif [(job.key, found) for job, found in steps] != logged:  # once per step change
                log(line)
                logged = [(job.key, found) for job, found in steps]
            time.sleep(interval)
    return {"done": done, "failed": failed, "skipped": skipped}


def process_launcher(
    *, train_script: str, data_dir: str, features_dir: str, overrides: Sequence[str]
) -> tuple[Callable, Callable]:
    """`(start, poll)` that run each job as a `train.py` child process logging to its file."""

    def start(job: Job, env_overrides: dict):
        env = dict(os.environ, **env_overrides)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        argv = train_argv(job, data_dir=data_dir, features_dir=features_dir, overrides=overrides)
        with open(job.log_path, "a") as f:
            f.write(" ".join([sys.executable, train_script, *argv]) + "\n")
            f.flush()
            return subprocess.Popen(
                [sys.executable, train_script, *argv],
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )

    return start, lambda proc: proc.poll()


def inline_launcher(
    *, train_one: Callable[[Job, Callable[[str], None]], None]
) -> tuple[Callable, Callable]:
    """`(start, poll)` that train each job in this process, one at a time (1 slot).

    `train_one(job, log)` trains a job; an exception is written to its log and makes the job
    fail (exit code 1).
    """

    def start(job: Job, env_overrides: dict):
        del env_overrides
        with open(job.log_path, "a") as f:

            def log(line: str) -> None:
                f.write(line + "\n")
                f.flush()

            try:
                train_one(job, log)
                return 0
            except Exception as e:  # noqa: BLE001 - a failed run is reported, the others go on
                log(f"error: {' '.join(str(e).split())}")
                return 1

    return start, lambda code: code


def device_slots(devices: Sequence[str], jobs_per_device: int) -> list[dict]:
    """One environment per concurrent job: each device `jobs_per_device` times; without devices,
    `jobs_per_device` jobs with the environment as it is."""
    if jobs_per_device < 1:
        raise ValueError(f"jobs_per_device must be positive, got {jobs_per_device}")
    if not devices:
        return [{} for _ in range(jobs_per_device)]
    return [{"CUDA_VISIBLE_DEVICES": str(d)} for d in devices for _ in range(jobs_per_device)]
