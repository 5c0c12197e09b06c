"""What a training run sets up before its first step: settings, checks, model, data.

- `run_settings(cfg)`: the precision's dtype policy and (with `deterministic`) op determinism
  and seeds, restored afterwards;
- `check_model_fits_features(model_cfg, feature_cfg, classes)`: one line naming a mismatch;
- `identity_normalization`, `normalization_json`: the statistics a run without a features folder
  uses, and their JSON form (normalization.json);
- `build_state(strategy, model_cfg, train_cfg, checkpoint_dir, ...)`: model, optimizer and
  checkpoint state under the strategy's scope;
- `input_data(...)`: the training batches from the resume step on and the evaluate batches;
- `dir_set(...)`: the DIR copies a run with `dir_p` > 0 draws from (computed when missing).
- `distillation(train_cfg, num_classes)`: the distillation settings of the step (None without a
  teacher); `teacher_targets(train_cfg, manifest, classes)`: the soft targets of every training
  clip, read and checked on the host before the first step (a clip without teacher logits, or
  a teacher of other classes, is one line).
- `prepare_inputs(...)`: the features folder, normalization, DIR set and `--init_from` start of
  a run, checked before its folder is touched (`PreparedInputs`);
- `starting_point(train_cfg, manifest, ...)`: the `--init_from` run's weights (or None), after
  checking that every `--train_devices` device has training clips.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from asc_keras import runs
from asc_keras.config import FeatureConfig, ModelConfig, TrainConfig
from asc_keras.data import devices as devices_lib
from asc_keras.data import dir_pipeline, pipeline
from asc_keras.data import teacher as teacher_lib
from asc_keras.data.manifest import ManifestError
from asc_keras.training import checkpoints, distill, distribute
from asc_keras.training import init_from as init_from_lib
from asc_keras.training import optimizer as optimizer_lib

SPLIT_TRAIN = "train"
SPLIT_EVAL = "evaluate"


def determinism_state():
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
def run_settings(cfg: TrainConfig):
    """The precision's dtype policy and (with `deterministic`) op determinism and the
    TensorFlow and NumPy seeds for the run; restored afterwards."""
    import keras
    import tensorflow as tf

    old_policy = keras.config.dtype_policy()
    old_determinism, disable_determinism, old_seed = determinism_state()
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


def check_model_fits_features(model_cfg: ModelConfig, feature_cfg: FeatureConfig, classes) -> None:
    """Raises ValueError naming the class count, input or shape that does not match."""
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


def identity_normalization(model_cfg: ModelConfig) -> dict:
    """`{rep: {'mean': zeros [F], 'std': ones [F]}}` for every model input."""
    return {
        r: {
            "mean": np.zeros(model_cfg.bins(r), np.float32),
            "std": np.ones(model_cfg.bins(r), np.float32),
        }
        for r in model_cfg.inputs
    }


def normalization_json(normalization: Mapping) -> dict:
    """The statistics as lists of float64, as normalization.json holds them."""
    return {
        rep: {k: np.asarray(v, np.float64).tolist() for k, v in stats.items()}
        for rep, stats in normalization.items()
    }


def build_state(
    strategy, model_cfg: ModelConfig, train_cfg: TrainConfig, *, own_dir: str
) -> checkpoints.TrainingState:
    """The model (`build_model` seeded with the run's seed: each part's initial weights and
    dropout depend on (seed, part name) only), the built optimizer and the checkpoint state
    (written under `own_dir`, restored from `train_cfg.model_dir`), under the strategy's scope."""
    from asc_keras.strategies import build_model

    with strategy.scope():
        if train_cfg.qat_from:  # the start's final weights, fake-quantized (asc_keras.quantize)
            from asc_keras.quantize.start import qat_model_from_run

            model = qat_model_from_run(train_cfg.qat_from, model_cfg)
        else:
            model = build_model(model_cfg, seed=train_cfg.seed)
        optimizer = optimizer_lib.make_optimizer(train_cfg)
        optimizer.build(model.trainable_variables)
        return checkpoints.TrainingState(
            model,
            optimizer,
            os.path.join(own_dir, runs.CHECKPOINT_DIR),
            keep=train_cfg.keep_checkpoints,
            restore_from=os.path.join(train_cfg.model_dir, runs.CHECKPOINT_DIR),
        )


def distillation(train_cfg: TrainConfig, num_classes: int) -> distill.Distillation | None:
    """The step's distillation settings, None when the run has no teacher."""
    if not train_cfg.teacher:
        return None
    return distill.Distillation(
        kd_lambda=train_cfg.kd_lambda,
        temperature=train_cfg.kd_temperature,
        num_classes=num_classes,
    )


def teacher_targets(train_cfg: TrainConfig, manifest, classes) -> tuple | None:
    """`(training clip names [N], soft targets float32 [N, C])` of the run's teacher (None
    without one).

    Raises:
      TeacherError: unreadable file, other classes, a training clip without an entry.
    """
    if not train_cfg.teacher:
        return None
    files = manifest.split(SPLIT_TRAIN).files
    teacher = teacher_lib.read_teacher(train_cfg.teacher, classes)
    return files, teacher.targets(files, temperature=train_cfg.kd_temperature)


@dataclasses.dataclass(frozen=True)
class InputData:
    """The run's batches, and the shards behind them (to name a corrupt one)."""

    train: object  # a distributed dataset of training batches
    evaluate: object | None  # evaluate batches; None: no validation
    train_paths: tuple = ()
    train_parse: object = None
    eval_paths: tuple = ()
    eval_parse: object = None


def input_data(
    strategy,
    manifest,
    datasets: Mapping | None,
    normalization: Mapping,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    num_classes: int,
    start: int,
    dir_set=None,
    classes=(),
) -> InputData:
    """The training pipeline restarted at the data position of step `start`, and the evaluate
    split: from the features folder (`manifest`), or from the caller's `datasets` (whose labels
    then carry the teacher's soft targets themselves, `[B, 2C]`, when the run has a teacher)."""
    if datasets is not None:
        return InputData(
            train=distribute.distribute_dataset(strategy, datasets["train"].skip(start)),
            evaluate=datasets.get("evaluate"),
        )
    global_batch = train_cfg.batch_size
    reps = tuple(model_cfg.inputs)
    copies = None
    if dir_set is not None:
        copies = dir_pipeline.make_copies(
            dir_set,
            manifest.shard_paths(SPLIT_TRAIN),
            reps,
            manifest=manifest,
            p=train_cfg.dir_p,
            seed=train_cfg.seed,
        )
    targets = teacher_targets(train_cfg, manifest, classes)

    def dataset_fn(ctx):
        per_pipeline = strategy.num_replicas_in_sync // ctx.num_input_pipelines
        return pipeline.train_dataset(
            manifest,
            representations=reps,
            batch_size=ctx.get_per_replica_batch_size(global_batch),
            seed=train_cfg.seed,
            mixup_alpha=train_cfg.mixup_alpha,
            num_classes=num_classes,
            shuffle_buffer=train_cfg.shuffle_buffer,
            normalization=normalization,
            skip_batches=start * per_pipeline,
            input_context=ctx,
            cache=train_cfg.cache_examples,
            dir_copies=copies,
            teacher_targets=targets,
            freq_mixstyle_p=train_cfg.freq_mixstyle_p,
            freq_mixstyle_alpha=train_cfg.freq_mixstyle_alpha,
            devices=train_cfg.train_devices,
        )

    parse = pipeline.make_parse(manifest, reps)
    return InputData(
        train=distribute.distribute_dataset_fn(strategy, dataset_fn),
        evaluate=pipeline.eval_dataset(
            manifest,
            SPLIT_EVAL,
            representations=reps,
            batch_size=train_cfg.eval_batch_size,
            normalization=normalization,
            cache=True,
        ),
        train_paths=manifest.shard_paths(SPLIT_TRAIN),
        train_parse=parse,
        eval_paths=manifest.shard_paths(SPLIT_EVAL),
        eval_parse=parse,
    )


def dir_set(folder: str, feature_cfg, data_cfg, train_cfg: TrainConfig, *, progress, log):
    """The DIR set (`dir_shards.DirSet`) a run with `dir_p` > 0 trains with, computed first
    when missing; None when `dir_p` is 0 (copies named by the data flags are then unused)."""
    if not train_cfg.dir_p:
        if data_cfg.dir_copies:
            log("train: --dir_p is 0, so the DIR copies (--dir_folder, --dir_copies) are unused")
        return None
    if not data_cfg.dir_copies:
        raise ValueError("--dir_p needs copies to draw from: give --dir_folder and --dir_copies")
    from asc_keras.data import dir_shards

    return dir_shards.ensure_copies(folder, feature_cfg, data_cfg, progress=progress, log=log)


def starting_point(
    train_cfg: TrainConfig,
    manifest,
    *,
    task: str,
    classes,
    feature_cfg: FeatureConfig,
    model_cfg: ModelConfig,
) -> init_from_lib.InitFrom | None:
    """The weights `train_cfg.init_from` names (None without it), read after checking that every
    device of `train_cfg.train_devices` has clips in the training split (before the run folder
    is touched).

    Raises:
        DeviceSelectionError: A device without training clips; ValueError: devices without a
            features folder. InitFromError: see `init_from.read_init`.
    """
    if train_cfg.train_devices:
        if manifest is None:
            raise ValueError("train_devices needs a features folder (not datasets=)")
        devices_lib.selected_count(manifest, SPLIT_TRAIN, train_cfg.train_devices)
    if not train_cfg.init_from:
        return None
    return init_from_lib.read_init(
        train_cfg.init_from,
        task=task,
        classes=classes,
        feature_cfg=feature_cfg,
        model_cfg=model_cfg,
    )


class PreparedInputs(NamedTuple):
    """What a run trains from: the features folder (`manifest`, `folder`; None and "" with the
    caller's datasets), the normalization statistics, the DIR set and the `--init_from` start."""

    manifest: object
    folder: str
    normalization: Mapping
    dir_set: object
    init: object


def prepare_inputs(
    feature_cfg: FeatureConfig,
    data_cfg,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    datasets: Mapping | None,
    *,
    progress,
    log,
) -> PreparedInputs:
    """The features folder (computed first when missing, checked against the configs), the DIR
    copies, the teacher's targets (checked), and the `--init_from` weights, all before the run
    folder is touched; fine-tuning keeps the normalization its weights were trained with."""
    task = data_cfg.task
    classes = data_cfg.task_spec.classes
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
        copies = dir_set(folder, feature_cfg, data_cfg, train_cfg, progress=progress, log=log)
        teacher_targets(train_cfg, manifest, classes)  # a bad teacher: before any folder
    else:
        copies = None
        normalization = datasets.get("normalization") or identity_normalization(model_cfg)
    init = starting_point(
        train_cfg,
        manifest,
        task=task,
        classes=classes,
        feature_cfg=feature_cfg,
        model_cfg=model_cfg,
    )
    if init is not None:  # fine-tuning keeps the normalization its weights were trained with
        normalization = init.normalization
    return PreparedInputs(manifest, folder, normalization, copies, init)
