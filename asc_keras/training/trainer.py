"""Train one model of the paper: `run(feature_cfg, data_cfg, model_cfg, train_cfg, *, datasets)`.

features folder (computed first if missing) -> `pipeline.train_dataset` ({rep: [B, T, F]}
normalized, mixed-up one-hot labels [B, C]) -> model (`strategies.build_model`) -> one
categorical cross-entropy per loss output (`strategies.loss_outputs`: clip outputs [B, C],
frame-wise for SPSMT outputs [B, T', C], all against the same clip labels), summed -> Adam on the
staircase schedule -> checkpoints, TensorBoard, periodic validation on the evaluate split ->
`model.keras` (normalized features in) and the final `metrics.json`. With a teacher
(`train_cfg.teacher`) the labels carry its soft targets and the loss is `training.distill`'s.

A custom loop under a `tf.distribute` strategy (`default`, `mirrored`, `multi_worker`): up to
`train_cfg.auto_steps_per_loop` steps run on the device per `tf.function` call (`loop`), the host
logs, checkpoints and validates between loops, at the same steps whatever the loop length, so the
loop length never changes the weights. Precision: `train_cfg.precision` (float32,
mixed_float16 with loss scaling, mixed_bfloat16). Resuming
is exact: a rerun of the same command restores model, optimizer (hence learning rate), step and
dropout seed state from the newest checkpoint and rebuilds the input pipeline at that step's
data position (the pipeline is a pure function of the seed). See `checkpoints` for the model_dir
layout. Errors are one line naming the file or step: a corrupt shard (`CorruptShardError`),
features that do not match the config (`ManifestError`), a model_dir of another run
(`IncompatibleModelDirError`), a NaN loss (`NonFiniteLossError`), an op without a
deterministic kernel under `--deterministic` (`loop.DeterminismError`, before the first step).

The stages: `setup` (settings, checks, model, input data), the loop calls with the host's
logging, checkpoints and validation between them (`_Host`), `validation` (the evaluate split,
BatchNorm recalibration), then `model.keras` and the final evaluation. A progress bar
(`progress_bar`: steps, steps/s, time left) shows between the log lines when stderr is a
terminal or `train_progress` asks for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Mapping

from asc_keras import atomic, oom, runs
from asc_keras.config import DataConfig, FeatureConfig, ModelConfig, TrainConfig
from asc_keras.training import callbacks, checkpoints, distribute, lock, loop, setup, validation
from asc_keras.training import optimizer as optimizer_lib
from asc_keras.training.progress_bar import StepBar, wanted
from asc_keras.training.setup import SPLIT_EVAL


def _save_model(model, path: str) -> None:
    """`model.save` to a temporary name of `atomic`'s (Keras wants it to end in `.keras`),
    then an atomic rename; a failure removes the temporary file."""
    tmp = f"{atomic.temporary_path(path)}.keras"
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def run(
    feature_cfg: FeatureConfig,
    data_cfg: DataConfig,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    datasets: Mapping | None = None,
    flags_text: str | None = None,
    progress: bool = True,
    train_progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train (or resume) the run in `train_cfg.model_dir` and evaluate it.

    Args:
      feature_cfg: feature settings (the features folder is keyed by them).
      data_cfg: dataset and features folder; `task` picks the classes.
      model_cfg: the network; its inputs are representations of `feature_cfg`.
      train_cfg: optimization, schedule, checkpoints, distribution, precision.
      datasets: for tests and custom data, instead of the features folder:
        `{'train': Dataset of ({rep: [B, T, F]}, labels float32 [B, C]) global batches,
        'evaluate': Dataset of ({rep: [B, T, F]}, {'label', 'filename', 'device', ...}) batches
        (optional: no validation without it), 'normalization': {rep: {'mean', 'std'}}
        (optional, written to normalization.json; default identity), 'clean_train': Dataset of
        un-mixed `{rep: [B, T, F]}` batches (needed for `train_cfg.recalibrate_bn`)}`. A
        resumed run skips the batches already trained on.
      flags_text: the resolved flags (`asc_keras.flags.resolved_flags()`), written to
        flags.txt so that `--flagfile=<model_dir>/flags.txt` replays the run.
      progress: show the feature precompute progress bar.
      train_progress: show the training progress bar on stderr (steps, steps/s, time left),
        advanced once per loop call; None: when stderr is a terminal.
      log: where progress lines go.

    Returns:
      `{'model_dir', 'step', 'resumed_from', 'metrics' (None without an evaluate split),
      'model_path', 'features', 'train_loss' (last logged means)}`.

    Raises:
      IncompatibleModelDirError, ManifestError, CorruptShardError, NonFiniteLossError.
    """
    model_dir = train_cfg.model_dir
    if not model_dir:
        raise ValueError("train_cfg.model_dir is required")
    task = data_cfg.task
    classes = data_cfg.task_spec.classes
    setup.check_model_fits_features(model_cfg, feature_cfg, classes)
    # A multi-worker strategy must exist before other TensorFlow work in the process.
    strategy = distribute.make_strategy(train_cfg.distribution)
    replicas = strategy.num_replicas_in_sync
    if train_cfg.batch_size % replicas:
        raise ValueError(
            f"batch_size {train_cfg.batch_size} does not split over {replicas} replicas"
        )
    chief = distribute.is_chief(strategy)

    inputs = setup.prepare_inputs(
        feature_cfg, data_cfg, model_cfg, train_cfg, datasets, progress=progress, log=log
    )
    manifest, folder, normalization = inputs.manifest, inputs.folder, inputs.normalization
    dir_set, init = inputs.dir_set, inputs.init

    # The features folder as an absolute path: evaluate.py and export.py find it from anywhere.
    record = runs.run_record(
        feature_cfg,
        data_cfg,
        model_cfg,
        train_cfg,
        classes=classes,
        features=os.path.abspath(folder) if folder else "",
    )
    record["optimizer"] = optimizer_lib.describe(train_cfg)
    if dir_set is not None:
        record["dir"] = dir_set.record()  # a resumed run must draw from the same copies
    if init is not None:
        record["init_from"] = init.record()
    if train_cfg.qat_from:  # the starting run and a hash of its weights
        from asc_keras.quantize.start import describe

        record["qat_from"] = describe(train_cfg.qat_from, model_cfg)
    folder_state = (
        oom.RunFolder.before_creating(model_dir, checkpoint_dir=runs.CHECKPOINT_DIR)
        if chief
        else None
    )  # only the chief writes (and cleans) model_dir
    lower = (
        f"--batch_size (now {train_cfg.batch_size}) or --eval_batch_size (now "
        f"{train_cfg.eval_batch_size})"
    )
    with (
        oom.reported("training", lower, cleanup=folder_state),
        _left_clean(folder_state),
        lock.held(model_dir, enabled=chief, log=log),
    ):
        checkpoints.check_resumable(model_dir, record)
        os.makedirs(model_dir, exist_ok=True)
        if chief:
            atomic.write_json(os.path.join(model_dir, runs.CONFIG_NAME), record)
            atomic.write_json(
                os.path.join(model_dir, runs.NORMALIZATION_NAME),
                setup.normalization_json({r: normalization[r] for r in model_cfg.inputs}),
            )
            if flags_text is not None:
                atomic.write_text(os.path.join(model_dir, runs.FLAGS_NAME), flags_text)
        with setup.run_settings(train_cfg):
            return _train(
                strategy,
                chief,
                manifest,
                folder,
                datasets,
                normalization,
                model_cfg,
                train_cfg,
                classes=classes,
                task=task,
                show_bar=wanted(train_progress),
                log=log,
                dir_set=dir_set,
                init=init,
            )


@contextlib.contextmanager
def _left_clean(folder_state: oom.RunFolder | None):
    """A run stopped by a NaN loss before its first checkpoint leaves no folder this invocation
    made (it would refuse the rerun with other settings the error advises), and says so; an
    interrupted run leaves no partial checkpoint files."""
    try:
        yield
    except callbacks.NonFiniteLossError as e:
        if folder_state is None or not folder_state.remove_if_unfinished():
            raise
        raise callbacks.NonFiniteLossError(
            f"{e}; removed the unfinished {folder_state.path}"
        ) from None
    except callbacks.TrainingInterrupted as e:
        left = folder_state.remove_partial().left if folder_state is not None else []
        if not left:
            raise
        raise callbacks.TrainingInterrupted(f"{e}; could not remove {', '.join(left)}") from None


class _Host:
    """What the host does after each loop call: count the steps, stop on a NaN loss, log the
    mean losses, checkpoint and validate at their cadences, advance the progress bar."""

    def __init__(self, train_cfg: TrainConfig, state, summaries, validator, *, classes, bar, log):
        self.cfg, self.state, self.summaries = train_cfg, state, summaries
        self.validator, self.classes, self.bar, self.log = validator, classes, bar, log
        self.averager = callbacks.LossAverager()
        self.last_means: dict[str, float] = {}
        self.cadences = (
            train_cfg.log_every,
            train_cfg.checkpoint_every,
            train_cfg.eval_every if validator is not None else 0,
        )

    def validate(self, step: int):
        """`(metrics, probs, meta)` of the evaluate split now, logged and summarized."""
        from asc_keras.evaluation import report as report_lib

        metrics, probs, meta = self.validator()
        if metrics is not None:
            confusion = validation.confusion_png(metrics, self.classes)
            self.summaries.log_eval(step, metrics, confusion_png=confusion)
            self.log(f"eval step {step}  " + report_lib.summary_line(metrics))
        return metrics, probs, meta

    def after_loop(self, out: loop.LoopResult, step: int, end: int) -> int:
        """The step reached by the loop call that started at `step` and was to end at `end`."""
        done = int(out.steps)
        if not bool(out.finite):
            callbacks.check_finite(
                {k: float(v) for k, v in out.last_losses.items()},
                step=step + done,
                checkpoint_step=self.state.latest_step(),
            )
        step += done
        self.bar.advance(done)
        self.averager.add_sums({k: float(v) for k, v in out.loss_sums.items()}, done)
        total = self.cfg.train_steps
        if step < end:
            raise ValueError(f"the training data ended at step {step} of {total}; it must repeat")
        if step % self.cfg.log_every == 0 or step == total:
            self._log_train(step)
        if step % self.cfg.checkpoint_every == 0 or step == total:
            self.state.save()
        every = self.cfg.eval_every
        if self.validator is not None and every and step % every == 0 and step != total:
            self.validate(step)
        return step

    def _log_train(self, step: int) -> None:
        self.last_means = self.averager.means()
        lr = optimizer_lib.current_learning_rate(self.state.optimizer)
        sps = self.averager.steps_per_second()
        self.summaries.log_train(step, self.last_means, learning_rate=lr, steps_per_second=sps)
        self.log(
            callbacks.format_train_line(
                step, self.cfg.train_steps, self.last_means, learning_rate=lr, steps_per_second=sps
            )
        )
        self.averager.reset()


def _fit(host: _Host, train_loop, batches, data: setup.InputData, *, start: int) -> int:
    """Loop calls from `start` to `train_steps`, each ending where `loop.next_loop_end` says."""
    total, steps_per_loop = host.cfg.train_steps, host.cfg.auto_steps_per_loop
    step = start
    while step < total:
        end = loop.next_loop_end(step, total, steps_per_loop, host.cadences)
        with validation.naming_bad_shards(data.train_paths, data.train_parse):
            out = train_loop(batches, end - step)
        step = host.after_loop(out, step, end)
    return step


def _restore(state: checkpoints.TrainingState, model_dir: str, *, log) -> int:
    """The step of the newest checkpoint restored (0: none), said in one line."""
    start = state.restore_latest()
    if start:
        log(
            f"resuming {model_dir} at step {start} (learning rate "
            f"{optimizer_lib.current_learning_rate(state.optimizer):.3g})"
        )
    return start


def _loss_kinds(model, *, log) -> dict:
    """`strategies.loss_outputs(model)`, noting outputs the losses cast to float32."""
    from asc_keras.strategies import loss_outputs

    not_float32 = [t.name for t in model.outputs if str(t.dtype) != "float32"]
    if not_float32:
        log(f"note: outputs {not_float32} are not float32; losses cast them to float32")
    return loss_outputs(model)


def _train(
    strategy,
    chief,
    manifest,
    folder,
    datasets,
    normalization,
    model_cfg,
    train_cfg,
    *,
    classes,
    task,
    show_bar,
    log,
    dir_set=None,
    init=None,
) -> dict:
    model_dir = train_cfg.model_dir
    own_dir = distribute.worker_dir(model_dir, strategy)
    state = setup.build_state(strategy, model_cfg, train_cfg, own_dir=own_dir)
    model = state.model
    start = _restore(state, model_dir, log=log)
    if init is not None and not start:  # a resumed run has its own weights
        init.apply(model)
        log(f"starting from {init.model_path} (weights sha256 {init.sha256[:12]})")
    loss_kinds = _loss_kinds(model, log=log)
    data = setup.input_data(
        strategy,
        manifest,
        datasets,
        normalization,
        model_cfg,
        train_cfg,
        num_classes=len(classes),
        start=start,
        dir_set=dir_set,
        classes=classes,
    )
    distill = setup.distillation(train_cfg, len(classes))
    validator = None
    if data.evaluate is not None:
        validator = validation.Validator(
            model,
            data.evaluate,
            classes=classes,
            task=task,
            paths=data.eval_paths,
            parse=data.eval_parse,
        )
    train_loop = loop.make_train_loop(
        strategy,
        model,
        state.optimizer,
        loss_kinds,
        state.step,
        global_batch=train_cfg.batch_size,
        jit_compile=train_cfg.jit_compile,
        single_step=train_cfg.auto_steps_per_loop == 1,
        distill=distill,
    )
    if train_cfg.deterministic:
        loop.preflight_determinism(
            strategy, model, loss_kinds, batch_size=train_cfg.batch_size, distill=distill
        )
    summaries = callbacks.Summaries(model_dir, enabled=chief)
    bar = StepBar(train_cfg.train_steps, start=start, enabled=show_bar)
    host = _Host(
        train_cfg, state, summaries, validator, classes=classes, bar=bar, log=bar.logger(log)
    )
    try:
        step = _fit(host, train_loop, iter(data.train), data, start=start)
        bar.close()
        host.log = log
        if train_cfg.recalibrate_bn:
            reps = tuple(model_cfg.inputs)
            validation.recalibrate(
                model, manifest, datasets, normalization, reps, train_cfg, log=log
            )
        metrics = probs = meta = None
        if validator is not None:
            metrics, probs, meta = host.validate(step)
    except KeyboardInterrupt:
        raise callbacks.interrupted(int(state.step.numpy()), state.latest_step()) from None
    finally:
        bar.close()
        summaries.close()
    model_path = _finish(
        model,
        chief,
        own_dir,
        model_dir,
        folder,
        metrics,
        probs,
        meta,
        classes=classes,
        step=step,
        log=log,
    )
    return {
        "model_dir": model_dir,
        "step": step,
        "resumed_from": start,
        "metrics": metrics,
        "model_path": model_path,
        "features": folder,
        "train_loss": host.last_means,
    }


def _finish(
    model, chief, own_dir, model_dir, folder, metrics, probs, meta, *, classes, step, log
) -> str:
    """The chief writes `model.keras` and the final evaluation; another worker removes its
    scratch checkpoints. Returns the model's path."""
    from asc_keras.evaluation import report as report_lib

    model_path = os.path.join(model_dir, runs.MODEL_NAME)
    if chief:
        _save_model(model, model_path)
        if metrics is not None:
            extra = {"split": SPLIT_EVAL, "step": step, "model_dir": model_dir, "features": folder}
            report_lib.write_report(
                model_dir,
                metrics,
                classes,
                probs=probs,
                meta=meta,
                extra=extra,
                title=f"{os.path.basename(model_dir)} on {SPLIT_EVAL} after {step} steps",
                print_fn=log,
            )
    elif own_dir != model_dir and os.path.isdir(own_dir):
        shutil.rmtree(own_dir)  # a non-chief worker's scratch checkpoints
    return model_path
