"""Tasks as data: the task table, defaults the task implies, refused contradictions, the TAU 2022
and custom layouts, and the low-complexity TAU 2022 configuration trained and exported end to end.

Data: a synthetic TAU 2022 set (1 s clips, one location per scene on each side) and a synthetic
custom set with labels the project does not know, both a few dozen clips.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest
from absl import flags

from asc_keras import flags as flags_lib
from asc_keras import labels, tasks
from asc_keras.data import dcase, synthetic

REPO = pathlib.Path(__file__).resolve().parent.parent
LOW_COMPLEXITY = REPO / "configs" / "tau2022_ef_spsmt.flags"


def _fv(*argv: str) -> flags.FlagValues:
    fv = flags.FlagValues()
    flags_lib.define_all(fv)
    flags_lib.parse(["test", *argv], fv)
    return fv


def _main(script: str):
    spec = importlib.util.spec_from_file_location(f"asc_{script}_main", REPO / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def tau_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("tau2022") / "data"
    synthetic.generate(
        root,
        task="tau2022",
        clips_per_class=2,
        clips_per_location=1,
        clip_seconds=1.0,
        subsegments=2,
        seed=3,
    )
    return str(root)


@pytest.fixture(scope="module")
def custom_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("custom") / "data"
    synthetic.generate_custom(root, clips_per_class=4, clip_seconds=1.0, seed=2)
    return str(root)


@pytest.fixture
def absl_flags():
    """absl's global FLAGS with every asc-keras flag, reset after the test."""
    flags_lib.define_all()
    yield lambda argv: (flags.FLAGS.unparse_flags(), flags_lib.parse(["x", *argv]))
    flags.FLAGS.unparse_flags()


def test_table_covers_every_task_and_labels_reads_it():
    assert set(tasks.names()) == {"1a", "1b", "tau2022", "custom"}
    assert labels.classes("tau2022") == labels.classes("1a") and len(labels.classes("1a")) == 10
    assert labels.label_index("bus", "1b") == labels.CLASSES_1B.index("transportation")
    assert labels.devices("tau2022") == labels.DEVICES_1A and labels.devices("custom") == ()
    with pytest.raises(ValueError, match="training list"):
        labels.classes("custom")
    with pytest.raises(ValueError, match="unknown task '2a'"):
        tasks.get("2a")
    parsed = labels.parse_filename("audio/airport-barcelona-0-10-3-s2.wav")
    assert (parsed.scene, parsed.identifier, parsed.segment, parsed.device) == (
        "airport",
        "barcelona-0",
        "10-3",
        "s2",
    )
    assert labels.parse_filename("audio/airport-lisbon-1000-40000-a.wav").device == "a"
    assert labels.parse_filename("x-y-z.wav") is None


@pytest.mark.parametrize(
    "task,bins,backbone,frames",
    [("1a", 40, "1a", 862), ("1b", 64, "1b", 862), ("tau2022", 64, "1b", 87)],
)
def test_the_task_implies_its_defaults(task, bins, backbone, frames):
    fv = _fv(f"--task={task}", "--representations=logmel", "--data_dir=/nowhere")
    feature_cfg = flags_lib.feature_config(fv)
    assert (feature_cfg.logmel_bins, feature_cfg.num_frames) == (bins, frames)
    model_cfg = flags_lib.model_config(feature_cfg, fv)
    assert model_cfg.backbone == backbone
    assert model_cfg.num_classes == len(labels.classes(task))
    assert model_cfg.input_shapes == {"logmel": (frames, bins)}


def test_explicit_flags_win_and_contradictions_are_refused():
    fv = _fv("--task=tau2022", "--clip_seconds=2", "--sample_rate=22050", "--backbone=1a")
    feature_cfg = flags_lib.feature_config(fv)
    assert (feature_cfg.clip_seconds, feature_cfg.sample_rate) == (2.0, 22050)
    assert flags_lib.model_config(feature_cfg, fv).backbone == "1a"
    with pytest.raises(ValueError, match=r"^--logmel_bins=40: task 1b uses 64 bins"):
        flags_lib.feature_config(_fv("--task=1b", "--logmel_bins=40"))
    fv = _fv("--task=1b", "--backbone=1a", "--representations=logmel")
    with pytest.raises(ValueError, match=r"^--backbone=1a: task 1b takes the 1b backbone"):
        flags_lib.model_config(flags_lib.feature_config(fv), fv)
    fv = _fv("--task=tau2022", "--clip_seconds=0.3", "--representations=logmel")
    with pytest.raises(ValueError, match=r"time pooling \(4x4x2\) leaves no frame of 26"):
        flags_lib.model_config(flags_lib.feature_config(fv), fv)


def test_tau2022_layout_and_train_subsets(tau_dir):
    root = pathlib.Path(tau_dir)
    names = sorted(p.name for p in (root / "audio").iterdir())
    assert all(len(n[:-4].split("-")) == 6 for n in names)
    tables = dcase.read_dataset(tau_dir, "tau2022")
    train = tables["train"]
    assert set(train["device"]) >= {"a"} and set(tables["evaluate"]["device"]) == set(
        labels.DEVICES_1A
    )
    assert (train["identifier"].str.count("-") == 1).all()
    # A 2024/25-style subset: file names only, labels from meta.csv.
    (root / "split_setup").mkdir(exist_ok=True)  # synthetic sets write the 2024/25 splits too
    subset = train.iloc[::2]
    (root / "split_setup" / "every_second.csv").write_text(
        "filename\n" + "".join(f"{n}\n" for n in subset["filename"])
    )
    got = dcase.read_dataset(
        tau_dir, "tau2022", splits=("train",), train_csv="split_setup/every_second.csv"
    )["train"]
    assert list(got["filename"]) == list(subset["filename"])
    assert list(got["label"]) == list(subset["label"])


@pytest.mark.parametrize("layout", ["folders", "dcase"])
def test_custom_classes_come_from_the_training_list(layout, tmp_path):
    root = tmp_path / layout
    synthetic.generate_custom(root, clips_per_class=4, clip_seconds=0.5, layout=layout, seed=1)
    fv = _fv("--task=custom", f"--data_dir={root}", "--representations=logmel")
    data_cfg = flags_lib.data_config(fv)
    assert data_cfg.classes == tuple(sorted(synthetic.CUSTOM_LABELS))
    tables = dcase.read_dataset(str(root), data_cfg.task_spec)
    assert set(tables["evaluate"]["label"]) == set(data_cfg.classes)
    assert flags_lib.model_config(flags_lib.feature_config(fv), fv).num_classes == 4
    with pytest.raises(ValueError, match="--data_dir is required"):
        flags_lib.model_config(flags_lib.feature_config(_fv("--task=custom")), _fv("--task=custom"))


def test_low_complexity_config_is_within_the_tau2022_limits():
    from asc_keras.models import complexity
    from asc_keras.strategies import build_model

    task, feature_cfg, model_cfg, _ = flags_lib.flagfile_configs(str(LOW_COMPLEXITY))
    assert task == "tau2022" and model_cfg.num_frames == 87
    assert (model_cfg.fusion, model_cfg.strategies, model_cfg.backbone) == ("ef", ("spsmt",), "1b")
    model = build_model(model_cfg)
    limits = tasks.get(task).limits
    macs = complexity.macs(model)
    int8_bytes = complexity.parameter_memory(model, "int8")["bytes"]  # BatchNorm too, 1 byte each
    assert complexity.parameter_memory(model, "float32")["bytes"] == 4 * int8_bytes
    assert 15e6 < macs <= limits.max_macs, macs
    assert 20_000 < int8_bytes <= limits.max_bytes, int8_bytes


@pytest.mark.slow
def test_custom_task_trains_end_to_end(custom_dir, tmp_path, absl_flags):
    model_dir = tmp_path / "run"
    absl_flags(
        [
            "--task=custom",
            f"--data_dir={custom_dir}",
            "--representations=logmel",
            "--clip_seconds=1",
            f"--features_dir={tmp_path / 'f'}",
            f"--model_dir={model_dir}",
            "--width=0.1",
            "--train_steps=2",
            "--batch_size=4",
            "--eval_every=0",
            "--num_workers=1",
            "--checkpoint_every=2",
        ]
    )
    assert _main("train")(["train.py"]) in (None, 0)  # None: exit status 0
    record = json.loads((model_dir / "config.json").read_text())
    assert record["task"] == "custom"
    assert tuple(record["classes"]) == tuple(sorted(synthetic.CUSTOM_LABELS))
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert set(metrics["classes"]) == set(record["classes"])


def test_low_complexity_config_trains_and_exports(tau_dir, tmp_path, absl_flags):
    model_dir, export_dir = tmp_path / "run", tmp_path / "export"
    common = [
        f"--flagfile={LOW_COMPLEXITY}",
        f"--data_dir={tau_dir}",
        f"--features_dir={tmp_path / 'f'}",
        "--num_workers=1",
    ]
    absl_flags(
        [
            *common,
            f"--model_dir={model_dir}",
            "--train_steps=2",
            "--batch_size=8",
            "--eval_every=0",
            "--checkpoint_every=2",
        ]
    )
    assert _main("train")(["train.py"]) in (None, 0)  # None: exit status 0
    absl_flags(
        [
            *common,
            f"--model_dir={model_dir}",
            f"--export_dir={export_dir}",
            "--calibration_examples=10",
            "--parity_examples=4",
            "--int8_tolerance=0.5",
        ]
    )
    assert _main("export")(["export.py"]) in (None, 0)
    assert (export_dir / "model_int8.tflite").stat().st_size < 128 * 1024
    config = json.loads((export_dir / "export_config.json").read_text())
    assert config["task"] == "tau2022"
    size = json.loads((export_dir / "export_report.json").read_text())["size"]
    assert size["within_limit"] and size["macs"] <= 30_000_000
    assert size["memory_bytes"] <= 128_000 and size["memory_dtype"] == "int8"
    report = json.loads((export_dir / "export_report.json").read_text())
    assert len(report["calibration"]["device_counts"]) > 1  # every device, not device a
    int8 = next(a for a in report["artifacts"] if a["name"] == "model_int8.tflite")
    assert sum(d["num_examples"] for d in int8["per_device"].values()) == 4
    assert all(0 <= d["argmax_agreement"] <= 1 for d in int8["per_device"].values())


def test_export_refuses_a_tau2022_model_over_the_complexity_rule():
    """The same configuration at full width: 62 M MACs per 1 s clip, over the 30 M limit."""
    from asc_keras.export import errors
    from asc_keras.models import rules
    from asc_keras.strategies import build_model

    _, _, model_cfg, _ = flags_lib.flagfile_configs(str(LOW_COMPLEXITY), ("--width=1.0",))
    size = rules.size_summary(build_model(model_cfg), "tau2022")
    assert size["macs"] > 30_000_000 and not size["within_limit"]
    with pytest.raises(errors.SizeRuleError, match="multiply-accumulates per clip, over 30 M"):
        rules.check_size_rule(size, model_dir="run", error=errors.SizeRuleError)
