"""The only module that reads absl flags: flag definitions per group and typed configs from them.

Every script calls `define_all()` so that one flagfile (e.g. `configs/1b_ef_spsmt.flags`, or a
run's `model_dir/flags.txt`) is accepted by `prepare.py`, `train.py`, `evaluate.py` and
`export.py` alike. Flag definitions live in functions; flag values are never mutated.
"""

from __future__ import annotations

from absl import flags

from asc_keras import config as config_lib


def _define_once(define, name, *args, **kwargs):
    if name not in flags.FLAGS:
        define(name, *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Features and data (prepare.py and everything after it).


def define_feature_flags() -> None:
    d = _define_once
    d(flags.DEFINE_list, "representations", list(config_lib.REPRESENTATIONS),
      "Representations to precompute: logmel,cqt,gamma,mfcc.")
    d(flags.DEFINE_integer, "logmel_bins", 40, "Log-Mel bands (40 for 1A, 64 for 1B).")
    d(flags.DEFINE_integer, "cqt_bins", 64, "CQT bins (12 per octave from --cqt_fmin).")
    d(flags.DEFINE_float, "cqt_fmin", 220.0, "Lowest CQT frequency in Hz.")
    d(flags.DEFINE_integer, "gamma_bins", 64, "Gammatone bands.")
    d(flags.DEFINE_integer, "mfcc_bins", 40, "MFCC coefficients.")
    d(flags.DEFINE_float, "clip_seconds", 10.0,
      "Clip length: audio is padded or cut to this (10 s for DCASE; tests use short clips).")
    d(flags.DEFINE_integer, "n_fft", 2048, "STFT window and FFT size.")
    d(flags.DEFINE_integer, "hop_length", 512, "STFT hop in samples.")
    d(flags.DEFINE_enum, "feature_dtype", "float32", ["float32", "float16"],
      "Storage dtype of the precomputed features.")


def define_data_flags() -> None:
    d = _define_once
    d(flags.DEFINE_string, "data_dir", None, "DCASE 2020 Task 1 dataset folder (official layout).")
    d(flags.DEFINE_string, "features_dir", None,
      "Cache of precomputed features; default: $XDG_CACHE_HOME/asc_keras/features "
      "(~/.cache/asc_keras/features).")
    d(flags.DEFINE_enum, "task", "1a", list(config_lib.TASKS), "DCASE 2020 Task 1 subtask.")
    d(flags.DEFINE_string, "train_csv", "evaluation_setup/fold1_train.csv",
      "Training split list, relative to --data_dir.")
    d(flags.DEFINE_string, "eval_csv", "evaluation_setup/fold1_evaluate.csv",
      "Evaluation split list, relative to --data_dir.")
    d(flags.DEFINE_integer, "num_workers", 2, "Feature extraction processes.", lower_bound=1)
    d(flags.DEFINE_integer, "num_shards", 1,
      "Split the precompute across this many machines.", lower_bound=1)
    d(flags.DEFINE_integer, "shard_index", 0, "Which machine's part this is.", lower_bound=0)
    d(flags.DEFINE_integer, "clips_per_shard", 256, "Clips per TFRecord shard.", lower_bound=1)
    d(flags.DEFINE_list, "splits", ["train", "evaluate"],
      "Splits prepare.py computes: train, evaluate (fold lists) and test (unlabeled: "
      "evaluation_setup/fold1_test.csv, or every audio/*.wav of a challenge evaluation folder).")
    d(flags.DEFINE_bool, "skip_bad_files", False,
      "Skip undecodable or badly sized clips and list them in the manifest, instead of failing.")


def default_features_dir() -> str:
    import os

    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "asc_keras", "features")


def feature_config() -> config_lib.FeatureConfig:
    f = flags.FLAGS
    return config_lib.FeatureConfig(
        representations=tuple(f.representations),
        logmel_bins=f.logmel_bins,
        cqt_bins=f.cqt_bins,
        cqt_fmin=f.cqt_fmin,
        gamma_bins=f.gamma_bins,
        mfcc_bins=f.mfcc_bins,
        clip_seconds=f.clip_seconds,
        n_fft=f.n_fft,
        hop_length=f.hop_length,
        dtype=f.feature_dtype,
    )


def data_config() -> config_lib.DataConfig:
    import os

    f = flags.FLAGS
    if not f.data_dir:
        raise ValueError("--data_dir is required")
    features_dir = f.features_dir or default_features_dir()
    return config_lib.DataConfig(
        data_dir=f.data_dir,
        features_dir=features_dir,
        task=f.task,
        train_csv=f.train_csv,
        eval_csv=f.eval_csv,
        num_workers=f.num_workers,
        num_shards=f.num_shards,
        shard_index=f.shard_index,
        clips_per_shard=f.clips_per_shard,
        skip_bad_files=f.skip_bad_files,
        splits=tuple(f.splits),
    )


# ---------------------------------------------------------------------------------------------
# Model flags and ModelConfig: owned by the networks work (issue 3).


def define_model_flags() -> None:
    pass


# ---------------------------------------------------------------------------------------------
# Training flags and TrainConfig: owned by the training work (issue 4).


def define_train_flags() -> None:
    pass


# ---------------------------------------------------------------------------------------------
# Evaluation flags: owned by the evaluation work (issue 4).


def define_eval_flags() -> None:
    pass


# ---------------------------------------------------------------------------------------------
# Export flags: owned by the export work (issue 5).


def define_export_flags() -> None:
    pass


def define_all() -> None:
    """Define every flag group, so any flagfile is accepted by any script."""
    define_feature_flags()
    define_data_flags()
    define_model_flags()
    define_train_flags()
    define_eval_flags()
    define_export_flags()
