"""The only module that reads absl flags: flag definitions per group and typed configs from them.

Every script calls `define_all()` so that one flagfile (e.g. `configs/1b_ef_spsmt.flags`, or a
run's `model_dir/flags.txt`) is accepted by `prepare.py`, `train.py`, `evaluate.py` and
`export.py` alike. Flag definitions live in functions; flag values are never mutated.
"""

from __future__ import annotations

import os

from absl import flags

from asc_keras import config as config_lib

_FLAGFILE_PREFIXES = ("--flagfile=", "-flagfile=")


def _flagfile_lines(path: str, *, seen: tuple[str, ...]) -> list[str]:
    """The arguments a flagfile holds, its own `--flagfile=` lines expanded in place."""
    real = os.path.realpath(path)
    if real in seen:
        raise ValueError(f"{path}: includes itself (via {' -> '.join(seen)})")
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ValueError(f"{path}: flagfile not readable ({e.strerror or e})") from None
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "//")):
            continue
        out += _expand_one(line, base=os.path.dirname(path), seen=(*seen, real))
    return out


def _expand_one(arg: str, *, base: str, seen: tuple[str, ...]) -> list[str]:
    for prefix in _FLAGFILE_PREFIXES:
        if arg.startswith(prefix):
            path = os.path.expanduser(arg[len(prefix) :])
            nested = os.path.join(base, path)
            if base and not os.path.isabs(path) and os.path.exists(nested):
                path = nested
            return _flagfile_lines(path, seen=seen)
    return [arg]


def expand_flagfiles(argv: list[str]) -> list[str]:
    """`argv` with every `--flagfile=PATH` replaced, in place, by the arguments the file holds.

    A nested flagfile path is resolved against the folder of the flagfile that names it (else
    the working directory), so `--flagfile=/abs/path/configs/1a_gamma.flags` works from any
    directory. Comment (`#`, `//`) and blank lines are skipped, as absl does.

    Raises:
        ValueError: A flagfile is missing or unreadable (one line naming it), or includes itself.
    """
    out = list(argv[:1])
    for arg in argv[1:]:
        out += _expand_one(arg, base="", seen=())
    return out


def parse(argv: list[str], fv: flags.FlagValues | None = None) -> list[str]:
    """Parse `argv` (flagfiles expanded by `expand_flagfiles`) into `fv` (default FLAGS).

    Returns:
        The positional arguments (argv[0] first), as absl returns them.
    """
    return _values(fv)(expand_flagfiles(argv))


def cli_argv(argv: list[str]) -> list[str]:
    """`expand_flagfiles(argv)` for a script's `app.run`; a bad flagfile exits with one line."""
    import sys

    try:
        return expand_flagfiles(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def flagfile_values(path: str, extra: tuple[str, ...] = ()) -> flags.FlagValues:
    """A fresh FlagValues with every asc-keras flag, parsed from one flagfile plus `extra` flags.

    Lets a tool read many configs (e.g. every row flagfile of `configs/`) without touching
    absl's global FLAGS.
    """
    fv = flags.FlagValues()
    define_all(fv)
    parse(["flagfile", f"--flagfile={path}", *extra], fv)
    return fv


def _definer(fv: flags.FlagValues | None):
    """`d(define, name, ...)`: define a flag in `fv` (default absl's FLAGS) unless it exists."""
    fv = flags.FLAGS if fv is None else fv

    def d(define, name, *args, **kwargs):
        if name not in fv:
            define(name, *args, flag_values=fv, **kwargs)

    return d


def _values(fv: flags.FlagValues | None) -> flags.FlagValues:
    return flags.FLAGS if fv is None else fv


# ---------------------------------------------------------------------------------------------
# Features and data (prepare.py and everything after it).


def define_feature_flags(fv: flags.FlagValues | None = None) -> None:
    d = _definer(fv)
    d(
        flags.DEFINE_list,
        "representations",
        list(config_lib.REPRESENTATIONS),
        "Representations to precompute: logmel,cqt,gamma,mfcc.",
    )
    d(
        flags.DEFINE_integer,
        "logmel_bins",
        None,
        "Log-Mel bands; default: the task's (40 for 1a and custom, 64 for 1b and tau2022).",
    )
    d(flags.DEFINE_integer, "cqt_bins", 64, "CQT bins (12 per octave from --cqt_fmin).")
    d(flags.DEFINE_float, "cqt_fmin", 220.0, "Lowest CQT frequency in Hz.")
    d(flags.DEFINE_integer, "gamma_bins", 64, "Gammatone bands.")
    d(flags.DEFINE_integer, "mfcc_bins", 40, "MFCC coefficients.")
    d(
        flags.DEFINE_float,
        "clip_seconds",
        None,
        "Clip length in seconds: audio is padded or cut to this; default: the task's (10 s for "
        "DCASE 2020, 1 s for tau2022; for custom, the length the clips share).",
        lower_bound=0.01,
    )
    d(
        flags.DEFINE_integer,
        "sample_rate",
        None,
        "Sample rate the audio is resampled to; default: the task's (44100).",
        lower_bound=1000,
    )
    d(flags.DEFINE_integer, "n_fft", 2048, "STFT window and FFT size.")
    d(flags.DEFINE_integer, "hop_length", 512, "STFT hop in samples.")
    d(
        flags.DEFINE_enum,
        "feature_dtype",
        "float32",
        ["float32", "float16"],
        "Storage dtype of the precomputed features.",
    )


def define_data_flags(fv: flags.FlagValues | None = None) -> None:
    d = _definer(fv)
    d(flags.DEFINE_string, "data_dir", None, "DCASE 2020 Task 1 dataset folder (official layout).")
    d(
        flags.DEFINE_string,
        "features_dir",
        None,
        "Cache of precomputed features; default: $XDG_CACHE_HOME/asc_keras/features "
        "(~/.cache/asc_keras/features).",
    )
    d(
        flags.DEFINE_enum,
        "task",
        "1a",
        list(config_lib.TASKS),
        "Task of the task table (asc_keras/tasks.py): 1a, 1b (DCASE 2020), tau2022 (TAU Urban "
        "Acoustic Scenes 2022 Mobile, 1 s clips) or custom (any labels: the official layout or "
        "train/<class>/*.wav, evaluate/<class>/*.wav). It sets the defaults of --clip_seconds, "
        "--sample_rate, --logmel_bins and --backbone.",
    )
    d(
        flags.DEFINE_string,
        "train_csv",
        "evaluation_setup/fold1_train.csv",
        "Training split list, relative to --data_dir; e.g. a TAU 2022 train subset "
        "split_setup/split25.csv (a list of file names only takes its labels from meta.csv).",
    )
    d(
        flags.DEFINE_string,
        "eval_csv",
        "evaluation_setup/fold1_evaluate.csv",
        "Evaluation split list, relative to --data_dir.",
    )
    d(flags.DEFINE_integer, "num_workers", 2, "Feature extraction processes.", lower_bound=1)
    d(
        flags.DEFINE_enum,
        "engine",
        "local",
        list(config_lib.ENGINES),
        "Who computes missing feature shards: local (--num_workers processes here) or beam (an "
        "Apache Beam pipeline; needs pip install -e '.[beam]').",
    )
    d(
        flags.DEFINE_string,
        "beam_pipeline_options",
        "",
        'With --engine=beam: Beam pipeline options, e.g. "--runner=FlinkRunner '
        '--flink_master=HOST:8081 --environment_type=DOCKER"; empty: the DirectRunner with '
        "--num_workers processes.",
    )
    d(
        flags.DEFINE_integer,
        "num_shards",
        1,
        "Split the local engine's precompute across this many machines by hand (batch "
        "schedulers without a Beam runner; e.g. SLURM array jobs).",
        lower_bound=1,
    )
    d(flags.DEFINE_integer, "shard_index", 0, "Which machine's part this is.", lower_bound=0)
    d(flags.DEFINE_integer, "clips_per_shard", 256, "Clips per TFRecord shard.", lower_bound=1)
    d(
        flags.DEFINE_list,
        "splits",
        ["train", "evaluate"],
        "Splits prepare.py computes: train, evaluate (fold lists) and test (unlabeled: "
        "evaluation_setup/fold1_test.csv, or every audio/*.wav of a challenge evaluation folder).",
    )
    d(
        flags.DEFINE_bool,
        "skip_bad_files",
        False,
        "Skip undecodable or badly sized clips and list them in the manifest, instead of failing.",
    )
    d(
        flags.DEFINE_enum,
        "fingerprint",
        "stat",
        list(config_lib.FINGERPRINTS),
        "How a rerun notices changed audio files: stat (size and modification time) or sha256 "
        "(size and content hash; reads every file on every run, and recomputes shards made "
        "without hashes once).",
    )


def default_features_dir() -> str:
    import os

    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "asc_keras", "features")


def _given(f: flags.FlagValues, name: str) -> bool:
    """Whether --name was given (on the command line or in a flagfile)."""
    return name in f and f[name].present and f[name].value is not None


def _task_defaults(f: flags.FlagValues):
    """The task's row; an explicit flag that contradicts it is one ValueError line."""
    from asc_keras import tasks

    spec = tasks.get(f.task)
    for name, bins in spec.fixed_bins.items():
        flag = f"{name}_bins"
        if _given(f, flag) and f[flag].value != bins and name in f.representations:
            raise ValueError(
                f"--{flag}={f[flag].value}: task {spec.name} uses {bins} bins "
                f"(drop the flag or give --{flag}={bins})"
            )
    return spec


def _clip_seconds(f: flags.FlagValues, spec, log) -> float:
    """--clip_seconds, else the task's; a custom set's is the length its clips share."""
    if _given(f, "clip_seconds"):
        return f.clip_seconds
    if not spec.data_defined or "data_dir" not in f or not f.data_dir:
        return spec.clip_seconds
    from asc_keras.data import dcase

    try:
        seconds, n = dcase.shared_clip_seconds(
            f.data_dir,
            f.task,
            tolerance=config_lib.DataConfig.max_length_error,
            train_csv=f.train_csv,
            eval_csv=f.eval_csv,
        )
    except dcase.DatasetError as e:
        raise ValueError(f"{e}; set --clip_seconds to the length to use") from None
    log(
        f"--task={f.task}: the {n} clips are {seconds:g} s long (--clip_seconds sets another "
        "length)"
    )
    return seconds


def feature_config(fv: flags.FlagValues | None = None, *, log=print) -> config_lib.FeatureConfig:
    """FeatureConfig from the feature flags; unset clip length, sample rate and Log-Mel bins
    follow --task (`asc_keras.tasks`), and a custom set's unset clip length is the one its
    clips share (said with `log`)."""
    f = _values(fv)
    spec = _task_defaults(f)
    return config_lib.FeatureConfig(
        representations=tuple(f.representations),
        logmel_bins=f.logmel_bins if _given(f, "logmel_bins") else spec.logmel_bins,
        cqt_bins=f.cqt_bins,
        cqt_fmin=f.cqt_fmin,
        gamma_bins=f.gamma_bins,
        mfcc_bins=f.mfcc_bins,
        clip_seconds=_clip_seconds(f, spec, log),
        sample_rate=f.sample_rate if _given(f, "sample_rate") else spec.sample_rate,
        n_fft=f.n_fft,
        hop_length=f.hop_length,
        dtype=f.feature_dtype,
    )


def data_config(fv: flags.FlagValues | None = None) -> config_lib.DataConfig:
    f = _values(fv)
    if not f.data_dir:
        raise ValueError("--data_dir is required")
    features_dir = f.features_dir or default_features_dir()
    return config_lib.DataConfig(
        data_dir=f.data_dir,
        features_dir=features_dir,
        task=f.task,
        classes=_task_classes(f),
        train_csv=f.train_csv,
        eval_csv=f.eval_csv,
        num_workers=f.num_workers,
        num_shards=f.num_shards,
        shard_index=f.shard_index,
        clips_per_shard=f.clips_per_shard,
        skip_bad_files=f.skip_bad_files,
        splits=tuple(f.splits),
        fingerprint=f.fingerprint,
        engine=f.engine,
        beam_pipeline_options=f.beam_pipeline_options,
    )


# ---------------------------------------------------------------------------------------------
# Model flags and ModelConfig: owned by the networks work (issue 3).


def define_model_flags(fv: flags.FlagValues | None = None) -> None:
    d = _definer(fv)
    first_time = "model_inputs" not in _values(fv)
    d(
        flags.DEFINE_enum,
        "backbone",
        None,
        list(config_lib.BACKBONES),
        "CNN of paper Table 1: 1a (VGG-style, 18.9 MiB) or 1b (tiny, under 500 KB); default: the "
        "task's (1a for 1a and custom, 1b for 1b and tau2022).",
    )
    d(
        flags.DEFINE_list,
        "model_inputs",
        ["logmel"],
        "Representations the model reads (a subset of --representations): logmel,cqt,gamma,mfcc.",
    )
    d(
        flags.DEFINE_enum,
        "fusion",
        "single",
        list(config_lib.FUSIONS),
        "How several representations meet: single (one input), ef (stacked as channels), "
        "mf (after the first conv block), lf (after the last conv block), spsmr (one CNN each, "
        "probabilities averaged).",
    )
    d(
        flags.DEFINE_list,
        "strategies",
        [],
        "Processing strategies, any of spsmf (one CNN per frequency band) and spsmt (frame-wise "
        "classifier); empty for none.",
    )
    d(flags.DEFINE_integer, "num_bands", 5, "SPSMF frequency bands.", lower_bound=1)
    d(flags.DEFINE_integer, "band_width", 16, "SPSMF bins per band.", lower_bound=1)
    d(
        flags.DEFINE_integer,
        "ef_bins",
        64,
        "EF: bins every representation is resized to.",
        lower_bound=1,
    )
    d(
        flags.DEFINE_float,
        "width",
        1.0,
        "Multiplier of conv filters and hidden units (1.0 = the paper).",
        lower_bound=1e-3,
    )
    d(
        flags.DEFINE_float,
        "dropout",
        0.5,
        "Dropout between the fully connected layers.",
        lower_bound=0.0,
        upper_bound=0.99,
    )
    d(
        flags.DEFINE_float,
        "bn_momentum",
        0.9,
        "BatchNorm momentum in Keras's convention (weight of the old moving average); 0.9 = "
        "PyTorch's 0.1, as in the authors' implementation.",
        lower_bound=0.0,
        upper_bound=0.999,
    )
    d(
        flags.DEFINE_float,
        "bn_epsilon",
        1e-5,
        "BatchNorm epsilon (PyTorch's default).",
        lower_bound=1e-12,
    )
    d(
        flags.DEFINE_string,
        "model_part",
        None,
        "Build only this independent part of the model (an SPSMR member such as 'cqt', an SPSMF "
        "band such as 'logmel_band2'), to train it as a separate run and fuse it later.",
    )
    for name, known in (
        (("model_inputs", config_lib.REPRESENTATIONS), ("strategies", config_lib.STRATEGIES))
        if first_time
        else ()
    ):
        flags.register_validator(
            name,
            lambda values, known=known: all(v in known for v in values),
            message=f"--{name} takes values from {','.join(known)}",
            flag_values=_values(fv),
        )


def _task_classes(f: flags.FlagValues) -> tuple[str, ...]:
    """The classes of --task: the table's, or (custom) the labels of --data_dir's train list."""
    from asc_keras import tasks

    spec = tasks.get(f.task)
    if spec.classes is not None:
        return spec.classes
    if not f.data_dir:
        raise ValueError(
            f"--task={f.task} takes its classes from the training list: --data_dir is required"
        )
    from asc_keras.data import dcase

    return dcase.resolve_classes(f.data_dir, f.task, train_csv=f.train_csv)


def model_config(
    feature_cfg: config_lib.FeatureConfig, fv: flags.FlagValues | None = None
) -> config_lib.ModelConfig:
    """ModelConfig from the model flags; frames and bins from `feature_cfg`, classes and the
    default backbone from --task.

    Raises:
        ValueError: If a model input is not among the feature representations, the backbone
            does not suit the task (a 1A CNN on 1B), the combination of fusion and strategies is
            not one the paper defines, or the network's pooling leaves no frame of the clip.
    """
    f = _values(fv)
    spec = _task_defaults(f)
    backbone = f.backbone if _given(f, "backbone") else spec.backbone
    if backbone not in spec.backbones:
        raise ValueError(
            f"--backbone={backbone}: task {spec.name} takes the {'/'.join(spec.backbones)} backbone"
        )
    missing = [n for n in f.model_inputs if n not in feature_cfg.representations]
    if missing:
        raise ValueError(
            f"--model_inputs {missing} not among --representations "
            f"{list(feature_cfg.representations)}"
        )
    cfg = config_lib.ModelConfig(
        backbone=backbone,
        inputs=tuple(f.model_inputs),
        input_bins={n: feature_cfg.bins(n) for n in f.model_inputs},
        num_frames=feature_cfg.num_frames,
        num_classes=len(_task_classes(f)),
        fusion=f.fusion,
        strategies=tuple(f.strategies),
        num_bands=f.num_bands,
        band_width=f.band_width,
        ef_bins=f.ef_bins,
        width=f.width,
        dropout=f.dropout,
        bn_momentum=f.bn_momentum,
        bn_epsilon=f.bn_epsilon,
    )
    _check_pooling(cfg, feature_cfg)
    return cfg.part(f.model_part) if f.model_part else cfg


def _check_pooling(cfg: config_lib.ModelConfig, feature_cfg: config_lib.FeatureConfig) -> None:
    """Refuse a network whose time pooling leaves no frame of the clip (one line)."""
    from asc_keras.models.backbones import BACKBONES

    frames = cfg.num_frames
    for block in BACKBONES[cfg.backbone].blocks:
        if block.pool is not None:
            frames //= block.pool[0]
    if frames < 1:
        pools = "x".join(str(b.pool[0]) for b in BACKBONES[cfg.backbone].blocks if b.pool)
        raise ValueError(
            f"--backbone={cfg.backbone}: its time pooling ({pools}) leaves no frame of "
            f"{cfg.num_frames} ({feature_cfg.clip_seconds:g} s at {feature_cfg.sample_rate} Hz, "
            f"hop {feature_cfg.hop_length}); use longer clips or a smaller --hop_length"
        )


# ---------------------------------------------------------------------------------------------
# Training flags and TrainConfig: owned by the training work (issue 4).


def define_train_flags(fv: flags.FlagValues | None = None) -> None:
    d = _definer(fv)
    d(
        flags.DEFINE_string,
        "model_dir",
        None,
        "Training run folder (checkpoints, TensorBoard logs, flags.txt, model.keras, metrics); "
        "evaluate.py takes a comma-separated list and fuses the runs.",
    )
    d(
        flags.DEFINE_integer,
        "batch_size",
        64,
        "Clips per batch (training: the global batch, split across replicas).",
        lower_bound=1,
    )
    d(flags.DEFINE_integer, "train_steps", 12000, "Training iterations.", lower_bound=1)
    d(flags.DEFINE_float, "learning_rate", 1e-3, "Initial Adam learning rate.", lower_bound=0.0)
    d(
        flags.DEFINE_float,
        "adam_epsilon",
        1e-8,
        "Adam epsilon (PyTorch's default; Keras has 1e-7).",
        lower_bound=0.0,
    )
    d(
        flags.DEFINE_enum,
        "adam_update",
        "pytorch",
        list(config_lib.ADAM_UPDATES),
        "Adam's update: pytorch (m_hat / (sqrt(v_hat) + epsilon), as the authors ran it) or keras "
        "(keras.optimizers.Adam, epsilon added before the bias correction: what runs recorded "
        "before this flag used; pass it to resume one).",
    )
    d(
        flags.DEFINE_float,
        "lr_decay_rate",
        0.91,
        "Staircase decay factor of the learning rate.",
        lower_bound=0.0,
        upper_bound=1.0,
    )
    d(
        flags.DEFINE_integer,
        "lr_decay_steps",
        200,
        "Steps between learning rate decays.",
        lower_bound=1,
    )
    d(
        flags.DEFINE_float,
        "mixup_alpha",
        0.2,
        "Mixup Beta parameter; 0 disables mixup.",
        lower_bound=0.0,
    )
    d(
        flags.DEFINE_integer,
        "shuffle_buffer",
        0,
        "Example shuffle buffer; 0 = the whole training split.",
        lower_bound=0,
    )
    d(
        flags.DEFINE_bool,
        "cache_examples",
        True,
        "Keep the parsed training examples in memory after the first epoch.",
    )
    d(
        flags.DEFINE_integer,
        "seed",
        0,
        "Seed of the weights, data order, mixup and dropout.",
        lower_bound=0,
    )
    d(
        flags.DEFINE_integer,
        "eval_every",
        1000,
        "Validate on the evaluate split every this many steps (0: only at the end).",
        lower_bound=0,
    )
    d(flags.DEFINE_integer, "eval_batch_size", 64, "Clips per validation batch.", lower_bound=1)
    d(flags.DEFINE_integer, "checkpoint_every", 200, "Steps between checkpoints.", lower_bound=1)
    d(flags.DEFINE_integer, "keep_checkpoints", 3, "Checkpoints kept.", lower_bound=1)
    d(
        flags.DEFINE_integer,
        "log_every",
        50,
        "Steps between TensorBoard loss summaries.",
        lower_bound=1,
    )
    d(
        flags.DEFINE_enum,
        "distribution",
        "default",
        list(config_lib.DISTRIBUTIONS),
        "tf.distribute strategy: default (one device), mirrored (all local GPUs) or multi_worker "
        "(MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG).",
    )
    d(
        flags.DEFINE_enum,
        "precision",
        "float32",
        list(config_lib.PRECISIONS),
        "Keras dtype policy: float32, mixed_float16 (dynamic loss scaling) or mixed_bfloat16 (no "
        "loss scaling); weights, outputs and losses stay float32. Part of the run: a checkpoint "
        "resumes only under the same precision.",
    )
    d(flags.DEFINE_bool, "mixed_precision", False, "Deprecated alias of --precision=mixed_float16.")
    d(
        flags.DEFINE_integer,
        "steps_per_loop",
        0,
        "Training steps per tf.function call (host work only between loops; a loop also ends at "
        "every log, checkpoint and validation step). 0: the greatest common divisor of "
        "--log_every, --checkpoint_every and --eval_every, at most 100.",
        lower_bound=0,
    )
    d(flags.DEFINE_bool, "jit_compile", False, "XLA-compile the training step.")
    d(
        flags.DEFINE_bool,
        "deterministic",
        False,
        "Deterministic ops (tf.config.experimental.enable_op_determinism): bitwise repeatable "
        "runs, slower.",
    )
    d(
        flags.DEFINE_integer,
        "recalibrate_bn",
        0,
        "After the last step, set every BatchNorm layer's moving mean and variance to their "
        "plain average over this many clean (un-mixed) training batches (0: keep the moving "
        "averages).",
        lower_bound=0,
    )


def _one_model_dir(what: str, fv: flags.FlagValues | None = None) -> str:
    """The single --model_dir that training and export take (evaluate.py takes a list)."""
    model_dir = _values(fv).model_dir
    if not model_dir:
        raise ValueError("--model_dir is required")
    if "," in model_dir:
        raise ValueError(f"--model_dir: {what} takes one folder, got {model_dir!r}")
    return model_dir


def _precision(f) -> str:
    """--precision, with the deprecated --mixed_precision as mixed_float16."""
    if not f.mixed_precision:
        return f.precision
    if f.precision not in ("float32", "mixed_float16"):
        raise ValueError(
            f"--mixed_precision (deprecated: mixed_float16) contradicts "
            f"--precision={f.precision}; pass --precision alone"
        )
    return "mixed_float16"


def train_config(fv: flags.FlagValues | None = None) -> config_lib.TrainConfig:
    f = _values(fv)
    return config_lib.TrainConfig(
        model_dir=_one_model_dir("training", fv),
        train_steps=f.train_steps,
        batch_size=f.batch_size,
        learning_rate=f.learning_rate,
        adam_epsilon=f.adam_epsilon,
        adam_update=f.adam_update,
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
        precision=_precision(f),
        steps_per_loop=f.steps_per_loop,
        jit_compile=f.jit_compile,
        deterministic=f.deterministic,
        recalibrate_bn=f.recalibrate_bn,
    )


def resolved_flags(fv: flags.FlagValues | None = None) -> str:
    """Every asc-keras flag with its final value, one `--name=value` a line (for flags.txt).

    Only this project's flags: a flag that a library defines after parsing (absl's test flags,
    say) would make `--flagfile=model_dir/flags.txt` fail to parse.
    """
    own = _values(fv).get_flags_for_module(__name__)
    lines = sorted(f.serialize() for f in own)
    return "\n".join(line for line in lines if line) + "\n"


# ---------------------------------------------------------------------------------------------
# Evaluation flags: owned by the evaluation work (issue 4).


def define_eval_flags(fv: flags.FlagValues | None = None) -> None:
    d = _definer(fv)
    d(
        flags.DEFINE_string,
        "model_dir",
        None,
        "Training run folder; evaluate.py takes a comma-separated list and fuses the runs "
        "(mean of their probabilities, e.g. four single-representation runs = SPSMR).",
    )
    d(flags.DEFINE_integer, "batch_size", 64, "Clips per batch.", lower_bound=1)
    d(
        flags.DEFINE_enum,
        "split",
        "evaluate",
        list(config_lib.EVAL_SPLITS),
        "Split to evaluate: evaluate (fold1_evaluate.csv), train, or test (unlabeled: "
        "fold1_test.csv or a challenge evaluation folder; no metrics, use --submission).",
    )
    d(
        flags.DEFINE_string,
        "out_dir",
        None,
        "Evaluation output folder; default <first model_dir>/eval_<split> (exports: "
        "eval_<split>_tflite, eval_<split>_saved_model).",
    )
    d(
        flags.DEFINE_list,
        "tflite",
        [],
        "Evaluate these TFLite files (raw features in) instead of model.keras; with several "
        "(e.g. float,int8) each is scored and the change against the first is reported.",
    )
    d(
        flags.DEFINE_string,
        "saved_model",
        None,
        "Evaluate this SavedModel folder (raw features in) instead of model.keras.",
    )
    d(
        flags.DEFINE_string,
        "submission",
        None,
        "Also write a DCASE submission file (filename, scene_label, class probabilities).",
    )
    d(
        flags.DEFINE_list,
        "fusion_weights",
        [],
        "One weight per --model_dir for the fusion (default: equal weights, the paper's mean).",
    )


def _as_list(value) -> tuple[str, ...]:
    """A comma-separated string or a list flag value as a tuple of non-empty strings."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    return tuple(v.strip() for v in items if v and v.strip())


def eval_config(fv: flags.FlagValues | None = None) -> config_lib.EvalConfig:
    f = _values(fv)
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


def define_export_flags(fv: flags.FlagValues | None = None) -> None:
    d = _definer(fv)
    d(
        flags.DEFINE_string,
        "model_dir",
        None,
        "Training run folder (config.json, normalization.json, model.keras).",
    )
    d(
        flags.DEFINE_string,
        "export_dir",
        None,
        "Export folder: saved_model/, model.tflite, model_int8.tflite, audio models, "
        "export_config.json, export_report.json.",
    )
    d(flags.DEFINE_bool, "overwrite", False, "Replace an existing --export_dir.")
    d(
        flags.DEFINE_bool,
        "export_int8",
        True,
        "Also export a full-integer int8 TFLite model (needs the training split's features).",
    )
    d(
        flags.DEFINE_bool,
        "export_audio",
        True,
        "For models whose only input is logmel, also export waveform-in models (Log-Mel in the "
        "graph).",
    )
    d(
        flags.DEFINE_integer,
        "calibration_examples",
        200,
        "Training clips (seeded, class-stratified) that calibrate the int8 model.",
        lower_bound=1,
    )
    d(flags.DEFINE_integer, "calibration_seed", 0, "Seed of the calibration sample.", lower_bound=0)
    d(
        flags.DEFINE_integer,
        "parity_examples",
        16,
        "Clips every artifact is checked on against the Keras model.",
        lower_bound=1,
    )
    d(
        flags.DEFINE_float,
        "float_tolerance",
        1e-5,
        "Largest output difference of the SavedModel and float TFLite from Keras.",
        lower_bound=0.0,
    )
    d(
        flags.DEFINE_float,
        "int8_tolerance",
        0.1,
        "Largest probability difference of the int8 TFLite from Keras.",
        lower_bound=0.0,
    )
    d(
        flags.DEFINE_float,
        "audio_tolerance",
        1e-3,
        "Largest output difference of the audio-in models from Keras on librosa features.",
        lower_bound=0.0,
    )
    d(
        flags.DEFINE_string,
        "model",
        None,
        "predict.py: a .tflite file, a SavedModel folder, an export folder, a model_dir or a "
        ".keras file.",
    )


def define_predict_flags(fv: flags.FlagValues | None = None) -> None:
    d = _definer(fv)
    d(
        flags.DEFINE_float,
        "window_seconds",
        None,
        "predict.py: classify sliding windows of this length (default: the model's clip length); "
        "a recording longer than the clip is always classified window by window.",
        lower_bound=0.0,
    )
    d(
        flags.DEFINE_float,
        "hop_seconds",
        None,
        "predict.py: step between window starts (default: the window length).",
        lower_bound=0.0,
    )
    d(
        flags.DEFINE_string,
        "timeline_csv",
        None,
        "predict.py: also write every window (file, start, end, scene, top probability, class "
        "probabilities) to this CSV file.",
    )


def predict_windows() -> tuple[float | None, float | None, str | None]:
    """`(--window_seconds, --hop_seconds, --timeline_csv)` of predict.py (None when unset)."""
    f = flags.FLAGS
    return f.window_seconds, f.hop_seconds, f.timeline_csv


def predict_model() -> str:
    """The --model path of predict.py."""
    if not flags.FLAGS.model:
        raise ValueError(
            "--model is required (a .tflite file, SavedModel, export folder, "
            "model_dir or .keras file)"
        )
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


def flagfile_configs(
    path: str, extra: tuple[str, ...] = ()
) -> tuple[str, config_lib.FeatureConfig, config_lib.ModelConfig, dict]:
    """What one flagfile (plus `extra` flags) configures, read without absl's global FLAGS.

    Returns:
        `(task, FeatureConfig, ModelConfig, {'train_steps': int, 'batch_size': int})`.
    """
    fv = flagfile_values(path, extra)
    feature_cfg = feature_config(fv)
    return (
        fv.task,
        feature_cfg,
        model_config(feature_cfg, fv),
        {"train_steps": fv.train_steps, "batch_size": fv.batch_size},
    )


# ---------------------------------------------------------------------------------------------
# Reproduction flags (reproduce.py).

_REPRODUCE_FLAGS = (
    "tables",
    "out",
    "data_dir_1b",
    "seeds",
    "devices",
    "jobs_per_device",
    "shard",
    "dry_run",
    "launch",
    "configs_dir",
    "retrain_stale",
)
# Set per run by the reproduction tool, never passed through from its command line.
_PER_RUN_FLAGS = ("data_dir", "features_dir", "model_dir", "seed", "model_part")


def define_reproduce_flags(fv: flags.FlagValues | None = None) -> None:
    d = _definer(fv)
    d(
        flags.DEFINE_list,
        "tables",
        ["2", "3"],
        "Paper tables to reproduce: 2 and 3 (DCASE 2020 1A, --data_dir) and/or 4 (1B, "
        "--data_dir_1b, or --data_dir when only Table 4 is asked).",
    )
    d(
        flags.DEFINE_string,
        "out",
        None,
        "Output folder: runs/, logs/, status.json, results.{md,csv,json,png}.",
    )
    d(
        flags.DEFINE_string,
        "data_dir_1b",
        None,
        "DCASE 2020 1B folder for Table 4 when the same call also reproduces 1A tables.",
    )
    d(
        flags.DEFINE_integer,
        "seeds",
        1,
        "Train every run with seeds 0..N-1; rows are reported as mean +- std.",
        lower_bound=1,
    )
    d(
        flags.DEFINE_list,
        "devices",
        [],
        "GPUs to use (CUDA_VISIBLE_DEVICES values, e.g. 0,1,2,3): one run per device at a time "
        "(see --jobs_per_device); empty: the machine as it is.",
    )
    d(
        flags.DEFINE_integer,
        "jobs_per_device",
        1,
        "Runs trained at once on each device (or on the machine without --devices).",
        lower_bound=1,
    )
    d(
        flags.DEFINE_string,
        "shard",
        "0/1",
        "i/n: take every n-th run starting at i, so n machines (a job array) share --out.",
    )
    d(flags.DEFINE_bool, "dry_run", False, "Print the plan (runs, rows, compute) and stop.")
    d(
        flags.DEFINE_bool,
        "retrain_stale",
        False,
        "Run folders in --out that hold runs of other settings than planned are moved aside "
        "(<run>.stale-<n>, never deleted) and trained again; without it the tool stops and "
        "lists them.",
    )
    d(
        flags.DEFINE_enum,
        "launch",
        "process",
        ["process", "inline"],
        "process: each run is a train.py child process; inline: runs train one after another "
        "in this process.",
    )
    d(
        flags.DEFINE_string,
        "configs_dir",
        None,
        "Folder of the row flagfiles and paper_results.tsv (default: configs/ beside "
        "reproduce.py).",
    )


def reproduce_overrides(fv: flags.FlagValues | None = None) -> tuple[str, ...]:
    """Every asc-keras flag given explicitly (not a reproduction or per-run flag), as
    `--name=value`: the reproduction passes them to every run after its row flagfile."""
    f = _values(fv)
    skip = set(_REPRODUCE_FLAGS) | set(_PER_RUN_FLAGS)
    own = f.get_flags_for_module(__name__)
    return tuple(sorted(flag.serialize() for flag in own if flag.present and flag.name not in skip))


def reproduce_shard(fv: flags.FlagValues | None = None) -> tuple[int, int]:
    """`--shard=i/n` as `(i, n)`."""
    text = _values(fv).shard
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard={text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= index < count:
        raise ValueError(f"--shard={text!r}: need 0 <= i < n")
    return index, count


def define_all(fv: flags.FlagValues | None = None) -> None:
    """Define every flag group (in `fv`, default absl's FLAGS), so any flagfile is accepted by
    any script."""
    define_feature_flags(fv)
    define_data_flags(fv)
    define_model_flags(fv)
    define_train_flags(fv)
    define_eval_flags(fv)
    define_export_flags(fv)
    define_predict_flags(fv)
    define_reproduce_flags(fv)
