"""The only module that reads absl flags: flags derived from the config dataclasses, typed configs
built back from them.

Every setting (default, type, bounds, help) is stated once, on its config field
(`asc_keras.config.settings.setting`), or for a script option that is no config field in
`asc_keras.config.options`; `asc_keras.flag_defs` derives the flags of a group and builds a
config from parsed flags, plus the few real resolutions (task defaults, `--mixed_precision`, the
`--model_dir` list of evaluate.py, the features folder). Every script calls `define_all()` so
that one flagfile (e.g. `configs/1b_ef_spsmt.flags`, or a run's `model_dir/flags.txt`) is
accepted by `prepare.py`, `train.py`, `evaluate.py` and `export.py` alike. Flag values are never
mutated.
"""

from __future__ import annotations

import os

from absl import flags

from asc_keras import config as config_lib
from asc_keras import flag_defs, flagfiles
from asc_keras import tasks as tasks_lib
from asc_keras.config import options


def expand_flagfiles(argv: list[str]) -> list[str]:
    """`argv` with every `--flagfile=PATH` replaced, in place, by the arguments the file holds
    (`asc_keras.flagfiles.expand`: nested paths against the including file's folder).

    Raises:
        ValueError: A flagfile is missing or unreadable (one line naming it), or includes itself.
    """
    return flagfiles.expand(argv)


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


def _values(fv: flags.FlagValues | None) -> flags.FlagValues:
    return flags.FLAGS if fv is None else fv


# ---------------------------------------------------------------------------------------------
# Flag groups: each defines exactly the flags of the scripts' group (a shared flag once per
# FlagValues).


def define_feature_flags(fv: flags.FlagValues | None = None) -> None:
    flag_defs.define_group(_values(fv), config_lib.FeatureConfig)


def define_data_flags(fv: flags.FlagValues | None = None) -> None:
    flag_defs.define_group(_values(fv), config_lib.DataConfig)


def define_model_flags(fv: flags.FlagValues | None = None) -> None:
    flag_defs.define_group(_values(fv), config_lib.ModelConfig, options.MODEL)


def define_train_flags(fv: flags.FlagValues | None = None) -> None:
    flag_defs.define_group(_values(fv), config_lib.TrainConfig, options.TRAIN)


def define_eval_flags(fv: flags.FlagValues | None = None) -> None:
    flag_defs.define_group(_values(fv), config_lib.EvalConfig)


def define_export_flags(fv: flags.FlagValues | None = None) -> None:
    flag_defs.define_group(_values(fv), config_lib.ExportConfig)


def define_predict_flags(fv: flags.FlagValues | None = None) -> None:
    flag_defs.define_group(_values(fv), extra=options.PREDICT)


def define_reproduce_flags(fv: flags.FlagValues | None = None) -> None:
    flag_defs.define_group(_values(fv), extra=options.REPRODUCE)
    flags.register_validator(
        "seeds",
        lambda values: options.seed_list(values) is not None,
        message="--seeds takes a count N >= 1 (seeds 0..N-1) or a list of seeds >= 0 (0,1,2)",
        flag_values=_values(fv),
    )


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


# ---------------------------------------------------------------------------------------------
# Typed configs from parsed flags.


def default_features_dir() -> str:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "asc_keras", "features")


def _task_defaults(f: flags.FlagValues) -> tasks_lib.Task:
    """The task's row; an explicit flag that contradicts it is one ValueError line."""
    spec = tasks_lib.get(f.task)
    given = {n: f[f"{n}_bins"].value for n in f.representations if flag_defs.given(f, f"{n}_bins")}
    spec.check_fixed_bins(given)
    return spec


def _task_classes(f: flags.FlagValues) -> tuple[str, ...]:
    """The classes of --task: the table's, or (custom) the labels of --data_dir's train list."""

    def read_labels(data_dir: str) -> tuple[str, ...]:
        from asc_keras.data import dcase

        return dcase.resolve_classes(data_dir, f.task, train_csv=f.train_csv)

    return tasks_lib.classes(f.task, f.data_dir, read_labels)


def _clip_seconds(f: flags.FlagValues, spec: tasks_lib.Task, log) -> float:
    """--clip_seconds, else the task's; a custom set's is the length its clips share."""
    if flag_defs.given(f, "clip_seconds"):
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
    return flag_defs.build(
        config_lib.FeatureConfig,
        f,
        logmel_bins=f.logmel_bins if flag_defs.given(f, "logmel_bins") else spec.logmel_bins,
        clip_seconds=_clip_seconds(f, spec, log),
        sample_rate=f.sample_rate if flag_defs.given(f, "sample_rate") else spec.sample_rate,
    )


def data_config(fv: flags.FlagValues | None = None) -> config_lib.DataConfig:
    f = _values(fv)
    if not f.data_dir:
        raise ValueError("--data_dir is required")
    features_dir = f.features_dir or default_features_dir()
    return flag_defs.build(
        config_lib.DataConfig, f, features_dir=features_dir, classes=_task_classes(f)
    )


def model_config(
    feature_cfg: config_lib.FeatureConfig, fv: flags.FlagValues | None = None
) -> config_lib.ModelConfig:
    """ModelConfig from the model flags; frames and bins from `feature_cfg`, classes and the
    default backbone from --task; --model_part selects one part (`asc_keras.strategies.parts`).

    Raises:
        ValueError: If a model input is not among the feature representations, the backbone
            does not suit the task (a 1A CNN on 1B), the combination of fusion and strategies is
            not one the paper defines, or the network's pooling leaves no frame of the clip.
    """
    from asc_keras.models import checks
    from asc_keras.strategies import parts

    f = _values(fv)
    spec = _task_defaults(f)
    backbone = f.backbone if flag_defs.given(f, "backbone") else spec.backbone
    spec.check_backbone(backbone)
    checks.check_inputs(tuple(f.model_inputs), feature_cfg)
    cfg = flag_defs.build(
        config_lib.ModelConfig,
        f,
        backbone=backbone,
        input_bins={n: feature_cfg.bins(n) for n in f.model_inputs},
        num_frames=feature_cfg.num_frames,
        num_classes=len(_task_classes(f)),
    )
    checks.check_pooling(cfg, feature_cfg)
    return parts.model_part(cfg, f.model_part) if f.model_part else cfg


def _one_model_dir(what: str, fv: flags.FlagValues | None = None) -> str:
    """The single --model_dir that training and export take (evaluate.py takes a list)."""
    model_dir = _values(fv).model_dir
    if not model_dir:
        raise ValueError("--model_dir is required")
    if "," in model_dir:
        raise ValueError(f"--model_dir: {what} takes one folder, got {model_dir!r}")
    return model_dir


def _precision(f: flags.FlagValues) -> str:
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
    """TrainConfig (--init_from made absolute; reproduce.py's --devices, GPUs, is refused)."""
    f = _values(fv)
    model_dir = _one_model_dir("training", fv)
    if "devices" in f and f.devices:
        raise ValueError(
            f"--devices={','.join(f.devices)} is reproduce.py's list of GPUs; train.py takes "
            "the recording devices to train on as --train_devices (e.g. --train_devices=b)"
        )
    init_from = os.path.abspath(f.init_from) if f.init_from else ""
    resolved = {"model_dir": model_dir, "precision": _precision(f), "init_from": init_from}
    return flag_defs.build(config_lib.TrainConfig, f, **resolved)


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
    return flag_defs.build(
        config_lib.EvalConfig, f, model_dirs=model_dirs, tflite=_as_list(f.tflite)
    )


def teach_config(fv: flags.FlagValues | None = None):
    """The `TeachConfig` of teach.py from --model_dir, --teacher, --out, --fusion_weights and
    --batch_size."""
    from asc_keras.config.teach import TeachConfig

    f = _values(fv)
    return TeachConfig(
        out=f.out or "",
        model_dirs=_as_list(f.model_dir),
        import_path=f.teacher or "",
        fusion_weights=tuple(float(w) for w in f.fusion_weights or ()),
        batch_size=f.batch_size,
    )


def export_config(fv: flags.FlagValues | None = None) -> config_lib.ExportConfig:
    f = _values(fv)
    model_dir = _one_model_dir("export", fv)
    if not f.export_dir:
        raise ValueError("--export_dir is required")
    return flag_defs.build(config_lib.ExportConfig, f, model_dir=model_dir)


def export_data(
    fv: flags.FlagValues | None = None,
) -> tuple[config_lib.DataConfig | None, str | None]:
    """`(DataConfig or None without --data_dir, --features_dir or None)` for export.py."""
    f = _values(fv)
    return (data_config(fv) if f.data_dir else None), (f.features_dir or None)


def predict_windows(
    fv: flags.FlagValues | None = None,
) -> tuple[float | None, float | None, str | None]:
    """`(--window_seconds, --hop_seconds, --timeline_csv)` of predict.py (None when unset)."""
    f = _values(fv)
    return f.window_seconds, f.hop_seconds, f.timeline_csv


def predict_device_models(fv: flags.FlagValues | None = None) -> tuple[str | None, str | None]:
    """`(--device_models or None, --clip_device or None)` of predict.py."""
    return _values(fv).device_models or None, _values(fv).clip_device or None


def predict_model(fv: flags.FlagValues | None = None) -> str:
    """The --model path of predict.py."""
    model = _values(fv).model
    if not model:
        raise ValueError(
            "--model is required (a .tflite file, SavedModel, export folder, "
            "model_dir or .keras file)"
        )
    return model


def flagfile_configs(
    path: str, extra: tuple[str, ...] = ()
) -> tuple[str, config_lib.FeatureConfig, config_lib.ModelConfig, dict]:
    """What one flagfile (plus `extra` flags) configures, read without absl's global FLAGS.

    Returns:
        `(task, FeatureConfig, ModelConfig, {'train_steps', 'batch_size', 'lr_decay_steps',
        'warmup_steps'}: int)`.
    """
    fv = flagfile_values(path, extra)
    feature_cfg = feature_config(fv)
    return (
        fv.task,
        feature_cfg,
        model_config(feature_cfg, fv),
        {
            "train_steps": fv.train_steps,
            "batch_size": fv.batch_size,
            "lr_decay_steps": fv.lr_decay_steps,
            "warmup_steps": fv.warmup_steps,
        },
    )


def resolved_flags(fv: flags.FlagValues | None = None) -> str:
    """Every asc-keras flag with its final value, one `--name=value` a line (for flags.txt).

    Only this project's flags: a flag that a library defines after parsing (absl's test flags,
    say) would make `--flagfile=model_dir/flags.txt` fail to parse.
    """
    own = _values(fv).get_flags_for_module(flag_defs.__name__)
    lines = sorted(f.serialize() for f in own)
    return "\n".join(line for line in lines if line) + "\n"


# ---------------------------------------------------------------------------------------------
# Reproduction (reproduce.py).

# Set per run by the reproduction tool, never passed through from its command line.
_PER_RUN_FLAGS = ("data_dir", "features_dir", "model_dir", "seed", "model_part")


def reproduce_overrides(fv: flags.FlagValues | None = None) -> tuple[str, ...]:
    """Every asc-keras flag given explicitly (not a reproduction or per-run flag), as
    `--name=value`: the reproduction passes them to every run after its row flagfile."""
    f = _values(fv)
    skip = set(options.REPRODUCE) | set(_PER_RUN_FLAGS)
    own = f.get_flags_for_module(flag_defs.__name__)
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
