"""Train one model of the paper: `run(feature_cfg, data_cfg, model_cfg, train_cfg, *, datasets)`.

features folder (computed first if missing) -> `pipeline.train_dataset` ({rep: [B, T, F]}
normalized, mixed-up one-hot labels [B, C]) -> model (`strategies.build_model`) -> one
categorical cross-entropy per loss output (`strategies.loss_outputs`: clip outputs [B, C],
frame-wise for SPSMT outputs [B, T', C], all against the same clip labels), summed -> Adam on the
staircase schedule -> checkpoints, TensorBoard, periodic validation on the evaluate split ->
`model.keras` (normalized features in) and the final `metrics.json`.

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
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Mapping

import numpy as np

from asc_keras import oom, runs
from asc_keras.config import DataConfig, FeatureConfig, ModelConfig, TrainConfig
from asc_keras.data import pipeline
from asc_keras.data.manifest import ManifestError, write_json_atomic
from asc_keras.training import callbacks, checkpoints, distribute, lock, loop
from asc_keras.training import optimizer as optimizer_lib

SPLIT_TRAIN = "train"
SPLIT_EVAL = "evaluate"


def _determinism_state():
    """`(enabled, disable_fn, global_seed)`; TensorFlow has no public getters for these, so the
    private ones are used when present (None otherwise: then nothing is restored)."""
    try:
        from tensorflow.python.eager import context
        from tensorflow.python.framework import config as tf_config

        return (
            tf_config.is_op_determinism_enabled(),
            tf_config.disable_op_determinism,
            context.global_seed(),
        )
    except (ImportError, AttributeError):
        return None, None, None


@contextlib.contextmanager
def _run_settings(cfg: TrainConfig):
    """The precision's dtype policy and (with `deterministic`) op determinism and the
    TensorFlow and NumPy seeds for the run; restored afterwards."""
    import keras
    import tensorflow as tf

    old_policy = keras.config.dtype_policy()
    old_determinism, disable_determinism, old_seed = _determinism_state()
    old_np = np.random.get_state()
    try:
        keras.config.set_dtype_policy(cfg.precision)
        if cfg.deterministic:
            tf.config.experimental.enable_op_determinism()
            tf.random.set_seed(cfg.seed)
            np.random.seed(cfg.seed)
        yield
    finally:
        keras.config.set_dtype_policy(old_policy)
        if cfg.deterministic:
            if old_determinism is False and disable_determinism is not None:
                disable_determinism()
            tf.random.set_seed(old_seed)
            np.random.set_state(old_np)


def _build_model(model_cfg: ModelConfig, *, seed: int):
    """`build_model` seeded with the run's seed: each part's initial weights and dropout depend
    on (seed, part name) only, the same in a separate part run and in the joint model."""
    from asc_keras.strategies import build_model

    return build_model(model_cfg, seed=seed)


def _check_model_fits_features(model_cfg: ModelConfig, feature_cfg: FeatureConfig, classes) -> None:
    if model_cfg.num_classes != len(classes):
        raise ValueError(
            f"model has {model_cfg.num_classes} classes, the task has {len(classes)}: {classes}"
        )
    for rep in model_cfg.inputs:
        if rep not in feature_cfg.representations:
            raise ValueError(
                f"model input {rep!r} is not among the feature representations "
                f"{feature_cfg.representations}"
            )
        want, have = model_cfg.input_shapes[rep], feature_cfg.shapes[rep]
        if tuple(want) != tuple(have):
            raise ValueError(
                f"model input {rep!r} is {tuple(want)}, the features are "
                f"{tuple(have)} ([time, freq])"
            )


def _identity_normalization(model_cfg: ModelConfig) -> dict:
    return {
        r: {
            "mean": np.zeros(model_cfg.bins(r), np.float32),
            "std": np.ones(model_cfg.bins(r), np.float32),
        }
        for r in model_cfg.inputs
    }


def _normalization_json(normalization: Mapping) -> dict:
    return {
        rep: {k: np.asarray(v, np.float64).tolist() for k, v in stats.items()}
        for rep, stats in normalization.items()
    }


def _make_train_step(
    strategy,
    model,
    optimizer,
    loss_kinds: Mapping[str, str],
    step_var,
    *,
    global_batch: int,
    jit_compile: bool,
):
    """One step as a function of a batch: `(features, labels) -> {output: loss, 'total': loss}`
    (global means), through the one-step loop (for benchmarks and tests)."""
    import tensorflow as tf

    train_loop = loop.make_train_loop(
        strategy,
        model,
        optimizer,
        loss_kinds,
        step_var,
        global_batch=global_batch,
        jit_compile=jit_compile,
        single_step=True,
    )

    def train_step(features, labels):
        batches = iter(tf.data.Dataset.from_tensors((features, labels)))
        return train_loop(batches, 1).last_losses

    return train_step


@contextlib.contextmanager
def _naming_bad_shards(paths, parse):
    """Translate a read error of the TFRecord shards `paths` into `CorruptShardError`."""
    import tensorflow as tf

    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        reason = pipeline.find_bad_shard(paths, parse) if paths else None
        if reason is None:
            raise
        raise pipeline.CorruptShardError(reason) from e


class _Validator:
    """Predicts the evaluate split with the current weights (one device call) and scores it."""

    def __init__(self, model, dataset, *, classes, task: str, paths=(), parse=None):
        self.dataset, self.classes, self.task = dataset, tuple(classes), task
        self.paths, self.parse = tuple(paths), parse
        self._predict_all = loop.make_predict_all(model)

    def __call__(self):
        """`(metrics or None, probs float32 [N, C], meta {'label', 'filename', 'device'})`."""
        from asc_keras.evaluation import evaluator

        with _naming_bad_shards(self.paths, self.parse):
            probs, labels, files, devices, batches = self._predict_all(self.dataset)
        if not int(batches):
            raise ValueError("the evaluate split is empty")
        meta = {
            "label": labels.numpy().astype(np.int64),
            "filename": np.asarray([s.decode() for s in files.numpy()], dtype=object),
            "device": np.asarray([s.decode() for s in devices.numpy()], dtype=object),
        }
        probs = probs.numpy()
        return evaluator.score(probs, meta, self.classes, task=self.task), probs, meta


def _recalibrate(model, manifest, datasets, normalization, reps, train_cfg, *, log) -> None:
    """Precise BatchNorm statistics from `train_cfg.recalibrate_bn` clean training batches."""
    from asc_keras.training import batchnorm

    if datasets is None:
        clean = pipeline.train_dataset(
            manifest,
            representations=reps,
            batch_size=train_cfg.batch_size,
            seed=train_cfg.seed + 1,
            mixup_alpha=0.0,
            normalization=normalization,
            shuffle_buffer=min(manifest.split(SPLIT_TRAIN).num_examples, 4096),
            cache=False,
        )
    elif datasets.get("clean_train") is not None:
        clean = datasets["clean_train"]
    else:
        raise ValueError("recalibrate_bn needs un-mixed training batches: datasets['clean_train']")
    seen = batchnorm.recalibrate(model, iter(clean), train_cfg.recalibrate_bn)
    log(f"BatchNorm statistics recomputed on {seen} clean training batches")


def _confusion_png(metrics: Mapping, classes) -> bytes | None:
    from asc_keras.evaluation import plots

    entry = metrics.get("all") or {}
    if entry.get("confusion_matrix") is None:
        return None
    return plots.confusion_png(np.asarray(entry["confusion_matrix"]), classes)


def _save_model(model, path: str) -> None:
    """`model.save` to a temporary `.keras` name, then an atomic rename."""
    tmp = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{os.path.basename(path)}")
    model.save(tmp)
    os.replace(tmp, path)


def run(
    feature_cfg: FeatureConfig,
    data_cfg: DataConfig,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    datasets: Mapping | None = None,
    flags_text: str | None = None,
    progress: bool = True,
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
    _check_model_fits_features(model_cfg, feature_cfg, classes)
    # A multi-worker strategy must exist before other TensorFlow work in the process.
    strategy = distribute.make_strategy(train_cfg.distribution)
    replicas = strategy.num_replicas_in_sync
    if train_cfg.batch_size % replicas:
        raise ValueError(
            f"batch_size {train_cfg.batch_size} does not split over {replicas} replicas"
        )
    chief = distribute.is_chief(strategy)

    manifest, folder = None, ""
    if datasets is None:
        from asc_keras.data import precompute
        from asc_keras.data.manifest import load_manifest

        folder = precompute.ensure_features(
            feature_cfg, data_cfg, splits=(SPLIT_TRAIN, SPLIT_EVAL), progress=progress, log=log
        )
        manifest = load_manifest(folder)
        manifest.check_compatible(feature_cfg, task, representations=model_cfg.inputs)
        if tuple(manifest.classes) != tuple(classes):
            raise ManifestError(
                f"{folder}: classes {manifest.classes} differ from task {task}'s {classes}"
            )
        normalization = manifest.normalization
    else:
        normalization = datasets.get("normalization") or _identity_normalization(model_cfg)

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
            write_json_atomic(os.path.join(model_dir, runs.CONFIG_NAME), record)
            write_json_atomic(
                os.path.join(model_dir, runs.NORMALIZATION_NAME),
                _normalization_json({r: normalization[r] for r in model_cfg.inputs}),
            )
            if flags_text is not None:
                runs.write_text_atomic(os.path.join(model_dir, runs.FLAGS_NAME), flags_text)
        with _run_settings(train_cfg):
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
                log=log,
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
    log,
) -> dict:
    from asc_keras.evaluation import report as report_lib
    from asc_keras.strategies import loss_outputs

    model_dir = train_cfg.model_dir
    own_dir = distribute.worker_dir(model_dir, strategy)
    with strategy.scope():
        model = _build_model(model_cfg, seed=train_cfg.seed)
        optimizer = optimizer_lib.make_optimizer(train_cfg)
        optimizer.build(model.trainable_variables)
        state = checkpoints.TrainingState(
            model,
            optimizer,
            os.path.join(own_dir, runs.CHECKPOINT_DIR),
            keep=train_cfg.keep_checkpoints,
            restore_from=os.path.join(model_dir, runs.CHECKPOINT_DIR),
        )
    start = state.restore_latest()
    if start:
        log(
            f"resuming {model_dir} at step {start} (learning rate "
            f"{optimizer_lib.current_learning_rate(optimizer):.3g})"
        )
    loss_kinds = loss_outputs(model)
    not_float32 = [t.name for t in model.outputs if str(t.dtype) != "float32"]
    if not_float32:
        log(f"note: outputs {not_float32} are not float32; losses cast them to float32")

    # Data: the pipeline restarts at the data position of `start`.
    global_batch = train_cfg.batch_size
    reps = tuple(model_cfg.inputs)
    train_paths, train_parse, eval_paths, eval_parse = (), None, (), None
    if datasets is None:

        def dataset_fn(ctx):
            per_pipeline = strategy.num_replicas_in_sync // ctx.num_input_pipelines
            return pipeline.train_dataset(
                manifest,
                representations=reps,
                batch_size=ctx.get_per_replica_batch_size(global_batch),
                seed=train_cfg.seed,
                mixup_alpha=train_cfg.mixup_alpha,
                num_classes=len(classes),
                shuffle_buffer=train_cfg.shuffle_buffer,
                normalization=normalization,
                skip_batches=start * per_pipeline,
                input_context=ctx,
                cache=train_cfg.cache_examples,
            )

        train_data = distribute.distribute_dataset_fn(strategy, dataset_fn)
        train_paths, train_parse = (
            manifest.shard_paths(SPLIT_TRAIN),
            pipeline.make_parse(manifest, reps),
        )
        eval_data = pipeline.eval_dataset(
            manifest,
            SPLIT_EVAL,
            representations=reps,
            batch_size=train_cfg.eval_batch_size,
            normalization=normalization,
            cache=True,
        )
        eval_paths, eval_parse = manifest.shard_paths(SPLIT_EVAL), train_parse
    else:
        train_data = distribute.distribute_dataset(strategy, datasets["train"].skip(start))
        eval_data = datasets.get("evaluate")
    batches = iter(train_data)
    validator = (
        _Validator(model, eval_data, classes=classes, task=task, paths=eval_paths, parse=eval_parse)
        if eval_data is not None
        else None
    )
    steps_per_loop = train_cfg.auto_steps_per_loop
    train_loop = loop.make_train_loop(
        strategy,
        model,
        optimizer,
        loss_kinds,
        state.step,
        global_batch=global_batch,
        jit_compile=train_cfg.jit_compile,
        single_step=steps_per_loop == 1,
    )
    if train_cfg.deterministic:
        loop.preflight_determinism(strategy, model, loss_kinds, batch_size=global_batch)
    summaries = callbacks.Summaries(model_dir, enabled=chief)

    def validate(step: int):
        metrics, probs, meta = validator()
        if metrics is not None:
            summaries.log_eval(step, metrics, confusion_png=_confusion_png(metrics, classes))
            log(f"eval step {step}  " + report_lib.summary_line(metrics))
        return metrics, probs, meta

    total_steps = train_cfg.train_steps
    averager = callbacks.LossAverager()
    last_means: dict[str, float] = {}
    cadences = (
        train_cfg.log_every,
        train_cfg.checkpoint_every,
        train_cfg.eval_every if validator is not None else 0,
    )
    step = start
    try:
        while step < total_steps:
            end = loop.next_loop_end(step, total_steps, steps_per_loop, cadences)
            with _naming_bad_shards(train_paths, train_parse):
                out = train_loop(batches, end - step)
            done = int(out.steps)
            if not bool(out.finite):
                callbacks.check_finite(
                    {k: float(v) for k, v in out.last_losses.items()},
                    step=step + done,
                    checkpoint_step=state.latest_step(),
                )
            step += done
            averager.add_sums({k: float(v) for k, v in out.loss_sums.items()}, done)
            if step < end:
                raise ValueError(
                    f"the training data ended at step {step} of {total_steps}; it must repeat"
                )
            if step % train_cfg.log_every == 0 or step == total_steps:
                last_means = averager.means()
                lr = optimizer_lib.current_learning_rate(optimizer)
                sps = averager.steps_per_second()
                summaries.log_train(step, last_means, learning_rate=lr, steps_per_second=sps)
                log(
                    callbacks.format_train_line(
                        step, total_steps, last_means, learning_rate=lr, steps_per_second=sps
                    )
                )
                averager.reset()
            if step % train_cfg.checkpoint_every == 0 or step == total_steps:
                state.save()
            if (
                validator is not None
                and train_cfg.eval_every
                and step % train_cfg.eval_every == 0
                and step != total_steps
            ):
                validate(step)
        if train_cfg.recalibrate_bn:
            _recalibrate(model, manifest, datasets, normalization, reps, train_cfg, log=log)
        metrics = probs = meta = None
        if validator is not None:
            metrics, probs, meta = validate(step)
    except KeyboardInterrupt:
        raise callbacks.interrupted(int(state.step.numpy()), state.latest_step()) from None
    finally:
        summaries.close()

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
    return {
        "model_dir": model_dir,
        "step": step,
        "resumed_from": start,
        "metrics": metrics,
        "model_path": model_path,
        "features": folder,
        "train_loss": last_means,
    }
