"""A run folder is reused only for the run the plan asks for; the report and evaluate.py score a
run only on the features it was trained on; a corrupt status.json is set aside."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import shutil

import pytest
from test_reproduce import CONFIGS, TINY

from asc_keras import flags as flags_lib
from asc_keras.config import LEGACY_TRAIN_FIELDS, EvalConfig, TrainConfig
from asc_keras.reproduce import plan as plan_lib
from asc_keras.reproduce import report as report_lib
from asc_keras.reproduce import runner, tool

RUN = "1b_logmel"


def _overrides(features, *extra):
    _, feature_cfg, data_cfg = features
    return (
        *TINY,
        f"--clip_seconds={feature_cfg.clip_seconds}",
        f"--clips_per_shard={data_cfg.clips_per_shard}",
        "--num_workers=1",
        *extra,
    )


def _plan(overrides):
    """Table 4's plan cut to its Log-Mel CNN row: one run, so that each test trains little."""
    plan = plan_lib.make_plan(
        CONFIGS, tables=[4], read_flagfile=lambda path: flags_lib.flagfile_configs(path, overrides)
    )
    return dataclasses.replace(
        plan, runs=(plan.run(RUN),), rows=tuple(r for r in plan.rows if r.config == RUN)
    )


def _reproduce(features, out, *extra, **kwargs):
    overrides = _overrides(features, *extra)
    return tool.reproduce(
        _plan(overrides),
        out_dir=str(out),
        data_cfgs={"1b": features[2]},
        launch="inline",
        overrides=overrides,
        progress=False,
        log=kwargs.pop("log", lambda *_: None),
        **kwargs,
    )


@pytest.fixture(scope="module")
def trained(tiny_1b_features, tmp_path_factory):
    """An output folder holding the finished width-0.04 run (copy it before changing it)."""
    out = tmp_path_factory.mktemp("stale") / "out"
    result = _reproduce(tiny_1b_features, out)
    assert result["runs"]["done"] == [f"seed0/{RUN}"]
    return out


def _copy(trained, tmp_path) -> pathlib.Path:
    out = tmp_path / "out"
    shutil.copytree(trained, out)
    return out


def _edit_config(run_dir, **feature_fields):
    path = pathlib.Path(run_dir) / "config.json"
    record = json.loads(path.read_text())
    record["feature_config"].update(feature_fields)
    path.write_text(json.dumps(record))


def test_a_changed_setting_stops_before_anything_is_computed(tiny_1b_features, trained, tmp_path):
    out = _copy(trained, tmp_path)
    run = pathlib.Path(runner.run_dir(str(out), 0, RUN))
    written = {p: p.stat().st_mtime_ns for p in (run / "model.keras", out / "results.md")}
    features_dir = pathlib.Path(tiny_1b_features[2].features_dir)
    folders = sorted(features_dir.iterdir())

    with pytest.raises(runner.StaleRunsError) as e:
        _reproduce(tiny_1b_features, out, "--width=0.08", "--cqt_fmin=110")
    message = str(e.value)
    assert f"seed0/{RUN}: cqt_fmin 220.0 -> 110.0, width 0.04 -> 0.08" in message
    assert "--out" in message and "--retrain_stale" in message
    assert sorted(features_dir.iterdir()) == folders  # no features computed for 110 Hz
    assert {p: p.stat().st_mtime_ns for p in written} == written  # nothing trained or scored

    # A half-finished run of other settings is stale too: resuming it would mix two configs.
    (run / "metrics.json").unlink()
    (run / "model.keras").unlink()
    with pytest.raises(runner.StaleRunsError, match=f"(?m)seed0/{RUN}: width 0.04 -> 0.08$"):
        _reproduce(tiny_1b_features, out, "--width=0.08")
    assert sorted(os.listdir(run.parent)) == [RUN]


def test_only_settings_that_change_the_weights_make_a_run_stale(tiny_1b_features, trained):
    def stale(*extra):
        overrides = _overrides(tiny_1b_features, *extra)
        data_dirs = {"1b": tiny_1b_features[2].data_dir}
        todo = runner.jobs(_plan(overrides), str(trained), seeds=(0,))
        return [
            (job.key, diff)
            for job, diff in runner.stale_jobs(
                todo,
                lambda job: tool.planned_record(
                    job,
                    data_dirs=data_dirs,
                    overrides=overrides,
                    features_dir=tiny_1b_features[2].features_dir,
                ),
            )
        ]

    assert stale() == []
    assert (
        stale(
            "--log_every=2",
            "--checkpoint_every=1",
            "--eval_every=1",
            "--eval_batch_size=8",
            "--keep_checkpoints=1",
            "--steps_per_loop=1",
            "--num_workers=2",
            "--deterministic",
        )
        == []
    )
    assert stale("--learning_rate=0.01", "--train_steps=3") == [
        (f"seed0/{RUN}", ["train_steps 2 -> 3", "learning_rate 0.001 -> 0.01"])
    ]
    assert stale("--bn_momentum=0.99") == [(f"seed0/{RUN}", ["bn_momentum 0.9 -> 0.99"])]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(runner.MAY_DIFFER["train_config"]) <= fields


def test_record_differences_read_old_records_and_skip_derived_sections():
    planned = {
        "task": "1b",
        "model_config": {
            "width": 0.08,
            "bn_momentum": 0.9,
            "bn_epsilon": 1e-5,
            "input_bins": {"logmel": 64},
        },
        "train_config": {**LEGACY_TRAIN_FIELDS, "log_every": 5, "seed": 0},
    }
    recorded = {
        "task": "1b",
        "model_config": {"width": 0.04, "input_bins": {"logmel": 40}},
        "train_config": {"log_every": 1, "seed": 0},
        "optimizer": {"class": "described from train_config"},
    }
    # A record from before bn_momentum existed reads as Keras's BatchNorm (0.99, 1e-3).
    assert runner.record_differences(recorded, planned) == [
        "width 0.04 -> 0.08",
        "bn_momentum 0.99 -> 0.9",
        "bn_epsilon 0.001 -> 1e-05",
        "input_bins.logmel 40 -> 64",
    ]
    assert runner.record_differences(planned, planned) == []


def test_retrain_stale_moves_the_run_aside_and_trains_it_again(tiny_1b_features, trained, tmp_path):
    out = _copy(trained, tmp_path)
    lines = []
    result = _reproduce(tiny_1b_features, out, "--width=0.08", retrain_stale=True, log=lines.append)
    run = pathlib.Path(runner.run_dir(str(out), 0, RUN))
    aside = run.parent / f"{RUN}.stale-1"
    assert any(f"moved aside to {aside}" in line for line in lines)
    assert json.loads((aside / "config.json").read_text())["model_config"]["width"] == 0.04
    assert (aside / "model.keras").exists()
    assert json.loads((run / "config.json").read_text())["model_config"]["width"] == 0.08
    assert result["runs"]["done"] == [f"seed0/{RUN}"]
    assert result["results"][0]["accuracy_all"] is not None
    # The next stale copy does not overwrite the first.
    assert runner.set_aside(str(run), "stale") == str(run.parent / f"{RUN}.stale-2")


def test_the_report_refuses_a_run_trained_on_other_features(tiny_1b_features, trained, tmp_path):
    from asc_keras.data.manifest import load_manifest

    out = _copy(trained, tmp_path)
    plan = _plan(_overrides(tiny_1b_features))
    manifests = {"1b": load_manifest(tiny_1b_features[0])}
    probs, _, _ = report_lib.seed_probabilities(
        plan, str(out), 0, manifests=manifests, batch_size=32
    )
    assert list(probs) == [RUN]
    _edit_config(runner.run_dir(str(out), 0, RUN), cqt_fmin=110.0)
    with pytest.raises(
        ValueError,
        match=f"{RUN}: not scored, trained on other features: .*"
        r"cqt_fmin=220\.0 \(config 110\.0\)",
    ):
        report_lib.seed_probabilities(plan, str(out), 0, manifests=manifests, batch_size=32)


def test_evaluate_refuses_to_fuse_runs_of_other_feature_settings(
    tiny_1b_features, trained, tmp_path
):
    from asc_keras.evaluation import evaluator

    first = runner.run_dir(str(trained), 0, RUN)
    other = str(tmp_path / "other")
    shutil.copytree(first, other)
    _edit_config(other, cqt_fmin=110.0, n_fft=1024)
    cfg = EvalConfig(model_dirs=(first, other), out_dir=str(tmp_path / "eval"))
    expected = (
        f"fused runs must share feature settings: {first} -> {other}: "
        "cqt_fmin 220.0 -> 110.0, n_fft 2048 -> 1024"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        evaluator.run(cfg, tiny_1b_features[2], progress=False, print_fn=None)


@pytest.mark.parametrize("content", [b"[1, 2, 3]", b'{"seed0/x": ', b"\xff\xfe\x00"])
def test_a_corrupt_status_json_is_set_aside_with_a_note(tmp_path, content):
    out = tmp_path / "out"
    out.mkdir()
    (out / "status.json").write_bytes(content)
    todo = runner.jobs(_plan(TINY), str(out), seeds=(0,))
    lines = []
    result = runner.execute(
        todo,
        train_steps=lambda job: 2,
        start=lambda job, env: 1,
        poll=lambda code: code,
        slots=({},),
        out_dir=str(out),
        log=lines.append,
        interval=0,
    )
    assert list(result["failed"]) == [f"seed0/{RUN}"]
    assert (out / "status.json.corrupt-1").read_bytes() == content
    assert json.loads((out / "status.json").read_text())[f"seed0/{RUN}"]["state"] == "failed"
    notes = [line for line in lines if "status.json" in line]
    assert len(notes) == 1 and "set aside as" in notes[0] and "\n" not in notes[0]


@pytest.mark.parametrize(
    "content, line",
    [(b"[1]", "config.json not a JSON object"), (b"{", "config.json unreadable (Expecting")],
)
def test_an_unreadable_run_record_is_stale(tmp_path, content, line):
    (job,) = runner.jobs(_plan(TINY), str(tmp_path), seeds=(0,))
    os.makedirs(job.model_dir)
    pathlib.Path(job.model_dir, "config.json").write_bytes(content)
    ((found, diff),) = runner.stale_jobs([job], lambda job: {})
    assert found == job and len(diff) == 1 and diff[0].startswith(line)
