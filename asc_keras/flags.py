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
    d(flags.DEFINE_enum, "fingerprint", "stat", list(config_lib.FINGERPRINTS),
      "How a rerun notices changed audio files: stat (size and modification time) or sha256 "
      "(size and content hash; reads every file on every run).")


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
        fingerprint=f.fingerprint,
    )


# ---------------------------------------------------------------------------------------------
# Model flags and ModelConfig: owned by the networks work (issue 3).


def define_model_flags() -> None:
    d = _define_once
    first_time = "model_inputs" not in flags.FLAGS
    d(flags.DEFINE_enum, "backbone", "1a", list(config_lib.BACKBONES),
      "CNN of paper Table 1: 1a (VGG-style, 18.9 MiB) or 1b (tiny, under 500 KB).")
    d(flags.DEFINE_list, "model_inputs", ["logmel"],
      "Representations the model reads (a subset of --representations): logmel,cqt,gamma,mfcc.")
    d(flags.DEFINE_enum, "fusion", "single", list(config_lib.FUSIONS),
      "How several representations meet: single (one input), ef (stacked as channels), "
      "mf (after the first conv block), lf (after the last conv block), spsmr (one CNN each, "
      "probabilities averaged).")
    d(flags.DEFINE_list, "strategies", [],
      "Processing strategies, any of spsmf (one CNN per frequency band) and spsmt (frame-wise "
      "classifier); empty for none.")
    d(flags.DEFINE_integer, "num_bands", 5, "SPSMF frequency bands.", lower_bound=1)
    d(flags.DEFINE_integer, "band_width", 16, "SPSMF bins per band.", lower_bound=1)
    d(flags.DEFINE_integer, "ef_bins", 64, "EF: bins every representation is resized to.",
      lower_bound=1)
    d(flags.DEFINE_float, "width", 1.0,
      "Multiplier of conv filters and hidden units (1.0 = the paper).", lower_bound=1e-3)
    d(flags.DEFINE_float, "dropout", 0.5, "Dropout between the fully connected layers.",
      lower_bound=0.0, upper_bound=0.99)
    d(flags.DEFINE_string, "model_part", None,
      "Build only this independent part of the model (an SPSMR member such as 'cqt', an SPSMF "
      "band such as 'logmel_band2'), to train it as a separate run and fuse it later.")
    for name, known in (("model_inputs", config_lib.REPRESENTATIONS),
                        ("strategies", config_lib.STRATEGIES)) if first_time else ():
        flags.register_validator(
            name, lambda values, known=known: all(v in known for v in values),
            message=f"--{name} takes values from {','.join(known)}")


def model_config(feature_cfg: config_lib.FeatureConfig) -> config_lib.ModelConfig:
    """ModelConfig from the model flags; frames and bins from `feature_cfg`, classes from --task.

    Raises:
        ValueError: If a model input is not among the feature representations, or the
            combination of fusion and strategies is not one the paper defines.
    """
    from asc_keras import labels

    f = flags.FLAGS
    missing = [n for n in f.model_inputs if n not in feature_cfg.representations]
    if missing:
        raise ValueError(f"--model_inputs {missing} not among --representations "
                         f"{list(feature_cfg.representations)}")
    cfg = config_lib.ModelConfig(
        backbone=f.backbone,
        inputs=tuple(f.model_inputs),
        input_bins={n: feature_cfg.bins(n) for n in f.model_inputs},
        num_frames=feature_cfg.num_frames,
        num_classes=len(labels.classes(f.task)),
        fusion=f.fusion,
        strategies=tuple(f.strategies),
        num_bands=f.num_bands,
        band_width=f.band_width,
        ef_bins=f.ef_bins,
        width=f.width,
        dropout=f.dropout,
    )
    return cfg.part(f.model_part) if f.model_part else cfg


# ---------------------------------------------------------------------------------------------
# Training flags and TrainConfig: owned by the training work (issue 4).


def define_train_flags() -> None:
    d = _define_once
    d(flags.DEFINE_string, "model_dir", None,
      "Training run folder (checkpoints, TensorBoard logs, flags.txt, model.keras, metrics); "
      "evaluate.py takes a comma-separated list and fuses the runs.")
    d(flags.DEFINE_integer, "batch_size", 64,
      "Clips per batch (training: the global batch, split across replicas).", lower_bound=1)
    d(flags.DEFINE_integer, "train_steps", 12000, "Training iterations.", lower_bound=1)
    d(flags.DEFINE_float, "learning_rate", 1e-3, "Initial Adam learning rate.", lower_bound=0.0)
    d(flags.DEFINE_float, "lr_decay_rate", 0.91, "Staircase decay factor of the learning rate.",
      lower_bound=0.0, upper_bound=1.0)
    d(flags.DEFINE_integer, "lr_decay_steps", 200, "Steps between learning rate decays.",
      lower_bound=1)
    d(flags.DEFINE_float, "mixup_alpha", 0.2, "Mixup Beta parameter; 0 disables mixup.",
      lower_bound=0.0)
    d(flags.DEFINE_integer, "shuffle_buffer", 0,
      "Example shuffle buffer; 0 = the whole training split.", lower_bound=0)
    d(flags.DEFINE_bool, "cache_examples", True,
      "Keep the parsed training examples in memory after the first epoch.")
    d(flags.DEFINE_integer, "seed", 0,
      "Seed of the weights, data order, mixup and dropout.", lower_bound=0)
    d(flags.DEFINE_integer, "eval_every", 1000,
      "Validate on the evaluate split every this many steps (0: only at the end).",
      lower_bound=0)
    d(flags.DEFINE_integer, "eval_batch_size", 64, "Clips per validation batch.", lower_bound=1)
    d(flags.DEFINE_integer, "checkpoint_every", 200, "Steps between checkpoints.", lower_bound=1)
    d(flags.DEFINE_integer, "keep_checkpoints", 3, "Checkpoints kept.", lower_bound=1)
    d(flags.DEFINE_integer, "log_every", 50, "Steps between TensorBoard loss summaries.",
      lower_bound=1)
    d(flags.DEFINE_enum, "distribution", "default", list(config_lib.DISTRIBUTIONS),
      "tf.distribute strategy: default (one device), mirrored (all local GPUs) or multi_worker "
      "(MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG).")
    d(flags.DEFINE_bool, "mixed_precision", False,
      "Train with the mixed_float16 policy (dynamic loss scaling; outputs stay float32).")
    d(flags.DEFINE_bool, "jit_compile", False, "XLA-compile the training step.")
    d(flags.DEFINE_bool, "deterministic", False,
      "Deterministic ops (tf.config.experimental.enable_op_determinism): bitwise repeatable "
      "runs, slower.")


def _one_model_dir(what: str) -> str:
    """The single --model_dir that training and export take (evaluate.py takes a list)."""
    model_dir = flags.FLAGS.model_dir
    if not model_dir:
        raise ValueError("--model_dir is required")
    if "," in model_dir:
        raise ValueError(f"--model_dir: {what} takes one folder, got {model_dir!r}")
    return model_dir


def train_config() -> config_lib.TrainConfig:
    f = flags.FLAGS
    return config_lib.TrainConfig(
        model_dir=_one_model_dir("training"),
        train_steps=f.train_steps,
        batch_size=f.batch_size,
        learning_rate=f.learning_rate,
        lr_decay_rate=f.lr_decay_rate,
        lr_decay_steps=f.lr_decay_steps,
        mixup_alpha=f.mixup_alpha,
        shuffle_buffer=f.shuffle_buffer,
        cache_examples=f.cache_examples,
        seed=f.seed,
        eval_every=f.eval_every,
        eval_batch_size=f.eval_batch_size,
        checkpoint_every=f.checkpoint_every,
        keep_checkpoints=f.keep_checkpoints,
        log_every=f.log_every,
        distribution=f.distribution,
        mixed_precision=f.mixed_precision,
        jit_compile=f.jit_compile,
        deterministic=f.deterministic,
    )


def resolved_flags() -> str:
    """Every asc-keras flag with its final value, one `--name=value` a line (for flags.txt).

    Only this project's flags: a flag that a library defines after parsing (absl's test flags,
    say) would make `--flagfile=model_dir/flags.txt` fail to parse.
    """
    own = flags.FLAGS.get_flags_for_module(__name__)
    lines = sorted(f.serialize() for f in own)
    return "\n".join(line for line in lines if line) + "\n"


# ---------------------------------------------------------------------------------------------
# Evaluation flags: owned by the evaluation work (issue 4).


def define_eval_flags() -> None:
    d = _define_once
    d(flags.DEFINE_string, "model_dir", None,
      "Training run folder; evaluate.py takes a comma-separated list and fuses the runs "
      "(mean of their probabilities, e.g. four single-representation runs = SPSMR).")
    d(flags.DEFINE_integer, "batch_size", 64, "Clips per batch.", lower_bound=1)
    d(flags.DEFINE_enum, "split", "evaluate", list(config_lib.EVAL_SPLITS),
      "Split to evaluate: evaluate (fold1_evaluate.csv), train, or test (unlabeled: "
      "fold1_test.csv or a challenge evaluation folder; no metrics, use --submission).")
    d(flags.DEFINE_string, "out_dir", None,
      "Evaluation output folder; default <first model_dir>/eval_<split> (exports: "
      "eval_<split>_tflite, eval_<split>_saved_model).")
    d(flags.DEFINE_list, "tflite", [],
      "Evaluate these TFLite files (raw features in) instead of model.keras; with several "
      "(e.g. float,int8) each is scored and the change against the first is reported.")
    d(flags.DEFINE_string, "saved_model", None,
      "Evaluate this SavedModel folder (raw features in) instead of model.keras.")
    d(flags.DEFINE_string, "submission", None,
      "Also write a DCASE submission file (filename, scene_label, class probabilities).")
    d(flags.DEFINE_list, "fusion_weights", [],
      "One weight per --model_dir for the fusion (default: equal weights, the paper's mean).")


def _as_list(value) -> tuple[str, ...]:
    """A comma-separated string or a list flag value as a tuple of non-empty strings."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    return tuple(v.strip() for v in items if v and v.strip())


def eval_config() -> config_lib.EvalConfig:
    f = flags.FLAGS
    model_dirs = _as_list(f.model_dir)
    if not model_dirs:
        raise ValueError("--model_dir is required")
    return config_lib.EvalConfig(
        model_dirs=model_dirs,
        split=f.split,
        batch_size=f.batch_size,
        out_dir=f.out_dir or "",
        tflite=_as_list(f.tflite),
        saved_model=f.saved_model or "",
        submission=f.submission or "",
        fusion_weights=tuple(float(w) for w in f.fusion_weights),
    )


# ---------------------------------------------------------------------------------------------
# Export flags: owned by the export work (issue 5).


def define_export_flags() -> None:
    d = _define_once
    d(flags.DEFINE_string, "model_dir", None,
      "Training run folder (config.json, normalization.json, model.keras).")
    d(flags.DEFINE_string, "export_dir", None,
      "Export folder: saved_model/, model.tflite, model_int8.tflite, audio models, "
      "export_config.json, export_report.json.")
    d(flags.DEFINE_bool, "overwrite", False, "Replace an existing --export_dir.")
    d(flags.DEFINE_bool, "export_int8", True,
      "Also export a full-integer int8 TFLite model (needs the training split's features).")
    d(flags.DEFINE_bool, "export_audio", True,
      "For models whose only input is logmel, also export waveform-in models (Log-Mel in the "
      "graph).")
    d(flags.DEFINE_integer, "calibration_examples", 200,
      "Training clips (seeded, class-stratified) that calibrate the int8 model.", lower_bound=1)
    d(flags.DEFINE_integer, "calibration_seed", 0, "Seed of the calibration sample.",
      lower_bound=0)
    d(flags.DEFINE_integer, "parity_examples", 16,
      "Clips every artifact is checked on against the Keras model.", lower_bound=1)
    d(flags.DEFINE_float, "float_tolerance", 1e-5,
      "Largest output difference of the SavedModel and float TFLite from Keras.", lower_bound=0.0)
    d(flags.DEFINE_float, "int8_tolerance", 0.1,
      "Largest probability difference of the int8 TFLite from Keras.", lower_bound=0.0)
    d(flags.DEFINE_float, "audio_tolerance", 1e-3,
      "Largest output difference of the audio-in models from Keras on librosa features.",
      lower_bound=0.0)
    d(flags.DEFINE_string, "model", None,
      "predict.py: a .tflite file, a SavedModel folder, an export folder, a model_dir or a "
      ".keras file.")


def predict_model() -> str:
    """The --model path of predict.py."""
    if not flags.FLAGS.model:
        raise ValueError("--model is required (a .tflite file, SavedModel, export folder, "
                         "model_dir or .keras file)")
    return flags.FLAGS.model


def export_data() -> tuple[config_lib.DataConfig | None, str | None]:
    """`(DataConfig or None without --data_dir, --features_dir or None)` for export.py."""
    f = flags.FLAGS
    return (data_config() if f.data_dir else None), (f.features_dir or None)


def export_config() -> config_lib.ExportConfig:
    f = flags.FLAGS
    model_dir = _one_model_dir("export")
    if not f.export_dir:
        raise ValueError("--export_dir is required")
    return config_lib.ExportConfig(
        model_dir=model_dir,
        export_dir=f.export_dir,
        overwrite=f.overwrite,
        int8=f.export_int8,
        audio_frontend=f.export_audio,
        calibration_examples=f.calibration_examples,
        calibration_seed=f.calibration_seed,
        parity_examples=f.parity_examples,
        float_tolerance=f.float_tolerance,
        int8_tolerance=f.int8_tolerance,
        audio_tolerance=f.audio_tolerance,
    )


def define_all() -> None:
    """Define every flag group, so any flagfile is accepted by any script."""
    define_feature_flags()
    define_data_flags()
    define_model_flags()
    define_train_flags()
    define_eval_flags()
    define_export_flags()
