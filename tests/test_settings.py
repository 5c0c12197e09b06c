"""Flags derived from the config dataclasses: one flag per setting, of its type, default, bounds
and help, defined by its group; configs built back from the parsed flags; flags.txt replayed."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from absl import flags

from asc_keras import config as config_lib
from asc_keras import flags as flags_lib
from asc_keras import tasks
from asc_keras.config import options
from asc_keras.config import settings as settings_lib

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "configs")
FLAG_TYPES = {
    "string": str,
    "integer": int,
    "float": float,
    "bool": bool,
    "enum": str,
    "list": list,
}
GROUPS = {
    flags_lib.define_feature_flags: (config_lib.FeatureConfig,),
    flags_lib.define_data_flags: (config_lib.DataConfig,),
    flags_lib.define_model_flags: (config_lib.ModelConfig, options.MODEL),
    flags_lib.define_train_flags: (config_lib.TrainConfig, options.TRAIN),
    flags_lib.define_eval_flags: (config_lib.EvalConfig,),
    flags_lib.define_export_flags: (config_lib.ExportConfig,),
    flags_lib.define_predict_flags: (options.PREDICT,),
    flags_lib.define_reproduce_flags: (options.REPRODUCE,),
}


def all_flags() -> flags.FlagValues:
    fv = flags.FlagValues()
    flags_lib.define_all(fv)
    return fv


def parsed(*args: str) -> flags.FlagValues:
    fv = all_flags()
    flags_lib.parse(["test", *args], fv)
    return fv


def setting_fields():
    return [(cls, field) for cls in config_lib.CONFIGS for field in settings_lib.settings(cls)]


@pytest.mark.parametrize(
    "cls, field", setting_fields(), ids=lambda x: getattr(x, "name", getattr(x, "__name__", ""))
)
def test_every_setting_field_has_one_flag_of_its_type_and_default(cls, field):
    fv = all_flags()
    name = settings_lib.flag_name(field)
    flag = fv[name]
    spec = settings_lib.setting_of(field)
    assert flag.help.endswith(spec.help)  # an enum's help starts with <its|values>
    assert flag.default == settings_lib.flag_default(field)
    if flag.default is not None:
        assert isinstance(flag.default, FLAG_TYPES[settings_lib.kind_of(field)]), name
    if spec.choices and settings_lib.kind_of(field) == "enum":
        assert flag.parser.enum_values == list(spec.choices)
    # The flag's default, unset or left alone, builds the field's own default.
    if spec.flag_default is settings_lib.FIELD_DEFAULT:
        default = field.default
        assert flag.default == (list(default) if isinstance(default, tuple) else default)


def test_settings_with_a_plain_flag_default_match_the_dataclass_default():
    """The two fields that share --batch_size agree, as do the three that share --model_dir."""
    shared = {}
    for cls, field in setting_fields():
        name = settings_lib.flag_name(field)
        shared.setdefault(name, set()).add((settings_lib.setting_of(field), cls.__name__))
    assert {c for _, c in shared["model_dir"]} == {"TrainConfig", "EvalConfig", "ExportConfig"}
    assert {c for _, c in shared["batch_size"]} == {"TrainConfig", "EvalConfig"}
    for name, uses in shared.items():
        assert len({spec for spec, _ in uses}) == 1, name  # one statement per flag


def test_every_flag_is_a_setting_or_a_named_option_and_none_twice():
    names = [settings_lib.flag_name(f) for _, f in setting_fields()]
    names = set(names)
    opts = [
        n
        for group in (options.MODEL, options.TRAIN, options.PREDICT, options.REPRODUCE)
        for n in group
    ]
    assert len(opts) == len(set(opts)) and not names & set(opts)
    assert set(all_flags()) == names | set(opts)


@pytest.mark.parametrize("define", list(GROUPS), ids=lambda d: d.__name__)
def test_each_group_defines_exactly_its_flags(define):
    fv = flags.FlagValues()
    define(fv)
    define(fv)  # twice: a group (or two groups sharing a flag) may run on the same FlagValues
    expected = set()
    for source in GROUPS[define]:
        if isinstance(source, type):
            expected |= {settings_lib.flag_name(f) for f in settings_lib.settings(source)}
        else:
            expected |= set(source)
    assert set(fv) == expected
    if define in (flags_lib.define_train_flags, flags_lib.define_eval_flags):
        assert {"model_dir", "batch_size"} <= set(fv)
    if define is flags_lib.define_predict_flags:
        assert "model" in fv and "model_dir" not in fv


def test_model_dir_and_batch_size_help_once_covering_every_script():
    text = all_flags().get_help()
    assert text.count("--model_dir:") == 1 and text.count("--batch_size:") == 1
    help_text = all_flags()["model_dir"].help
    for script in ("train.py", "evaluate.py", "export.py", "comma-separated"):
        assert script in help_text
    assert "evaluate.py" in all_flags()["batch_size"].help


@pytest.mark.parametrize(
    "arg",
    [
        "--num_workers=0",
        "--dropout=0.995",
        "--bn_momentum=1.0",
        "--clip_seconds=0.001",
        "--sample_rate=999",
        "--lr_decay_rate=1.5",
        "--calibration_examples=0",
        "--seeds=0",
        "--fusion=concat",
        "--feature_dtype=float64",
        "--model_inputs=logmel,spectrum",
        "--strategies=spsmx",
    ],
)
def test_bounds_and_choices_are_enforced_by_absl(arg):
    with pytest.raises(flags.IllegalFlagValueError):
        parsed(arg)


def test_bounds_at_the_edges_are_accepted():
    fv = parsed("--num_workers=1", "--dropout=0.99", "--lr_decay_rate=1.0", "--seeds=1")
    assert (fv.num_workers, fv.dropout, fv.lr_decay_rate) == (1, 0.99, 1.0)


def test_builder_reads_every_setting_and_converts_lists():
    fv = parsed(
        "--data_dir=/d",
        "--model_dir=a, b",
        "--fusion_weights=1,3",
        "--tflite=",
        "--splits=test",
        "--export_int8=false",
        "--export_dir=/e",
        "--model_dir=/m",
        "--feature_dtype=float16",
        "--hop_length=256",
    )
    feature_cfg = flags_lib.feature_config(fv)
    assert (feature_cfg.dtype, feature_cfg.hop_length) == ("float16", 256)
    assert flags_lib.data_config(fv).splits == ("test",)
    export_cfg = flags_lib.export_config(fv)
    assert (export_cfg.int8, export_cfg.audio_frontend, export_cfg.model_dir) == (False, True, "/m")
    fv = parsed("--model_dir=a, b", "--fusion_weights=1,3")
    eval_cfg = flags_lib.eval_config(fv)
    assert eval_cfg.model_dirs == ("a", "b") and eval_cfg.fusion_weights == (1.0, 3.0)
    assert (eval_cfg.out_dir, eval_cfg.saved_model, eval_cfg.tflite) == ("", "", ())
    with pytest.raises(ValueError, match="one folder"):
        flags_lib.train_config(fv)


def test_unset_task_defaults_and_the_deprecated_alias_resolve():
    fv = parsed("--task=1b", "--model_dir=/m", "--mixed_precision")
    feature_cfg = flags_lib.feature_config(fv)
    assert (feature_cfg.logmel_bins, feature_cfg.sample_rate, feature_cfg.clip_seconds) == (
        64,
        44100,
        10.0,
    )
    assert flags_lib.model_config(feature_cfg, fv).backbone == "1b"
    assert flags_lib.train_config(fv).precision == "mixed_float16"
    fv = parsed("--model_dir=/m", "--mixed_precision", "--precision=mixed_bfloat16")
    with pytest.raises(ValueError, match="contradicts"):
        flags_lib.train_config(fv)


def test_old_flags_txt_replays_to_the_same_lines(tmp_path):
    """A recorded flags.txt, read back with --flagfile, records the same lines again."""
    with open(os.path.join(FIXTURES, "1a_spsmr_spsmf_spsmt.json")) as f:
        lines = json.load(f)["tiny"]["flags_txt"]
    path = tmp_path / "flags.txt"
    path.write_text("\n".join(lines) + "\n")
    fv = flags_lib.flagfile_values(str(path))
    recorded = {line.split("=")[0] for line in lines}  # flags added since may appear beside
    replayed = flags_lib.resolved_flags(fv).splitlines()
    assert [line for line in replayed if line.split("=")[0] in recorded] == lines


def test_setting_metadata_rules():
    with pytest.raises(ValueError, match="help"):
        settings_lib.setting(1, "")
    with pytest.raises(ValueError, match="kind"):
        settings_lib.setting(1, "x", kind="number")

    @dataclasses.dataclass(frozen=True)
    class Odd:
        shape: dict = settings_lib.setting(None, "A mapping has no flag kind.")

    with pytest.raises(TypeError, match="no flag kind"):
        settings_lib.kind_of(dataclasses.fields(Odd)[0])


def test_task_facts_classes_bins_and_backbones():
    assert tasks.classes("1b", "", read_labels=None) == tasks.CLASSES_3
    assert tasks.classes("custom", "/d", read_labels=lambda d: ("x", d)) == ("x", "/d")
    with pytest.raises(ValueError, match="--data_dir is required"):
        tasks.classes("custom", "", read_labels=lambda d: ())
    tasks.get("1b").check_fixed_bins({"logmel": 64, "cqt": 12})
    with pytest.raises(ValueError, match="--logmel_bins=40: task 1b uses 64 bins"):
        tasks.get("1b").check_fixed_bins({"logmel": 40})
    with pytest.raises(ValueError, match="--backbone=1a: task 1b takes the 1b backbone"):
        tasks.get("1b").check_backbone("1a")


def test_script_options_read_from_the_given_flag_values():
    fv = parsed("--model=m.tflite", "--window_seconds=2", "--data_dir=/d", "--features_dir=/f")
    assert flags_lib.predict_model(fv) == "m.tflite"
    assert flags_lib.predict_windows(fv) == (2.0, None, None)
    data_cfg, features_dir = flags_lib.export_data(fv)
    assert (data_cfg.data_dir, features_dir) == ("/d", "/f")
    with pytest.raises(ValueError, match="--model is required"):
        flags_lib.predict_model(parsed())


def test_reproduce_overrides_pass_only_given_run_settings():
    fv = parsed("--seeds=3", "--dry_run", "--width=0.5", "--seed=4", "--model_dir=/m", "--tables=4")
    assert flags_lib.reproduce_overrides(fv) == ("--width=0.5",)
    assert flags_lib.reproduce_shard(parsed("--shard=1/4")) == (1, 4)


def test_flag_kind_from_an_evaluated_annotation():
    @dataclasses.dataclass(frozen=True)
    class Plain:  # no `from __future__ import annotations` effect: real types
        steps: int = settings_lib.setting(3, "Steps.")
        names: tuple[str, ...] = settings_lib.setting(("a",), "Names.")
        weights: tuple[float, ...] = settings_lib.setting((), "Weights.")

    Plain.__dataclass_fields__["steps"].type = int
    Plain.__dataclass_fields__["names"].type = tuple[str, ...]
    Plain.__dataclass_fields__["weights"].type = tuple[float, ...]
    fields = {f.name: f for f in dataclasses.fields(Plain)}
    assert settings_lib.kind_of(fields["steps"]) == "integer"
    assert settings_lib.kind_of(fields["names"]) == "list"
    assert settings_lib.item_type(fields["weights"]) is float
