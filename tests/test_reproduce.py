"""The reproduction tool: plan derived from configs/, fused rows equal joint models, the whole
Tables 2-4 plan end to end on tiny synthetic sets, shards, resume after an interruption."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import feature_flags

from asc_keras import flags as flags_lib
from asc_keras.config import EvalConfig
from asc_keras.evaluation import ensemble
from asc_keras.reproduce import plan as plan_lib
from asc_keras.reproduce import runner, tool
from asc_keras.strategies import assemble_model, build_model, model_parts

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = str(REPO / "configs")
TINY = (
    "--width=0.04",
    "--train_steps=2",
    "--batch_size=2",
    "--eval_every=0",
    "--checkpoint_every=2",
    "--log_every=1",
    "--eval_batch_size=32",
)


def _plan(tables, extra=("--width=0.04",)):
    return plan_lib.make_plan(
        CONFIGS, tables=tables, read_flagfile=lambda path: flags_lib.flagfile_configs(path, extra)
    )


def test_plan_of_tables_2_to_4():
    plan = _plan([2, 3, 4])
    assert len(plan.rows) == 22 and len(plan.runs) == 34
    assert [r.paper.label for r in plan.rows][:2] == ["Log-Mel CNN", "CQT CNN"]
    one_a = _plan([2, 3])
    compute = one_a.compute()
    assert (compute["runs"], compute["cnns"]) == (31, 34)  # LF is one run of four stacks
    assert (compute["joint_models"], compute["joint_cnns"]) == (19, 86)
    assert len(_plan([4]).runs) == 3
    rows = {r.config: r for r in plan.rows}
    best = dict(rows["1a_spsmr_spsmf_spsmt"].members)
    assert len(best) == 24
    assert best["1a_mfcc_band4_spsmf"] == pytest.approx(1 / 40)
    assert best["1a_cqt_spsmt"] == pytest.approx(1 / 8)
    assert dict(rows["1a_spsmr"].members) == pytest.approx(
        {"1a_logmel": 0.25, "1a_cqt": 0.25, "1a_gamma": 0.25, "1a_mfcc": 0.25}
    )
    assert dict(rows["1a_gamma_spsmf"].members) == pytest.approx(
        {f"1a_gamma_band{k}_spsmf": 0.2 for k in range(5)}
    )
    # Shared runs are trained once and launched from the simplest row that holds them.
    runs = {r.name: r for r in plan.runs}
    assert set(runs["1a_logmel"].rows) == {"1a_logmel", "1a_spsmr"}
    assert plan_lib.config_name(runs["1a_cqt_spsmt"].flagfile) == "1a_cqt_spsmt"
    assert runs["1a_cqt_spsmt"].model_part is None
    assert (
        plan_lib.config_name(runs["1a_cqt_band3_spsmf"].flagfile),
        runs["1a_cqt_band3_spsmf"].model_part,
    ) == ("1a_cqt_spsmf", "cqt_band3")
    assert runs["1a_lf"].cnns == 4


def test_plan_counts_compute_and_reports_a_shortened_recipe():
    full = plan_lib.make_plan(
        CONFIGS, tables=[4], read_flagfile=flags_lib.flagfile_configs, count_macs=lambda cfg: 1000
    )
    assert full.shortened == []
    assert {r.examples for r in full.runs} == {12000 * 64}
    assert full.compute()["train_flops"] == pytest.approx(3 * 6 * 1000 * 12000 * 64)
    assert "Paper recipe" in tool.banner(full)
    short = _plan([4], extra=("--train_steps=10", "--width=0.5"))
    assert "SHORTENED" in tool.banner(short) and "width 0.5" in tool.banner(short)


def test_shards_cover_every_run_exactly_once(tmp_path):
    plan = _plan([2, 3, 4])
    every = runner.jobs(plan, str(tmp_path), seeds=(0, 1))
    parts = [runner.jobs(plan, str(tmp_path), seeds=(0, 1), shard=(i, 3)) for i in range(3)]
    keys = [j.key for part in parts for j in part]
    assert sorted(keys) == sorted(j.key for j in every) and len(set(keys)) == 68
    with pytest.raises(ValueError, match="shard"):
        runner.jobs(plan, str(tmp_path), seeds=(0,), shard=(3, 3))


@pytest.mark.parametrize(
    "row",
    ["1a_spsmr", "1a_gamma_spsmf", pytest.param("1a_spsmr_spsmf_spsmt", marks=pytest.mark.slow)],
)
def test_fused_runs_equal_the_assembled_joint_model(row):
    """The report's fusion of separate runs == `assemble_model` of the row from those weights."""
    extra = ("--width=0.04", "--clip_seconds=1")
    plan = _plan([2], extra=extra)
    _, _, row_cfg, _ = flags_lib.flagfile_configs(os.path.join(CONFIGS, f"{row}.flags"), extra)
    members = dict(next(r for r in plan.rows if r.config == row).members)
    rng = np.random.default_rng(0)
    x = {n: rng.standard_normal((3, *s)).astype("float32") for n, s in row_cfg.input_shapes.items()}
    models, probs = {}, {}
    for i, part in enumerate(model_parts(row_cfg)):
        keras.utils.set_random_seed(i)
        run_name = plan_lib._run_name(part.config)
        model = build_model(plan.run(run_name).model_config)
        models[part.name] = model
        probs[run_name] = keras.ops.convert_to_numpy(
            model({n: x[n] for n in part.config.inputs}, training=False)["probs"]
        )
    fused = ensemble.fuse_probs([probs[n] for n in members], weights=list(members.values()))
    joint = assemble_model(row_cfg, models)
    expected = keras.ops.convert_to_numpy(joint(x, training=False)["probs"])
    np.testing.assert_allclose(fused, expected, atol=2e-6)


def _data_cfgs(*features):
    return {cfg.task: cfg for _, _, cfg in features}


@pytest.mark.slow
def test_tables_2_to_4_end_to_end(tiny_1a_features, tiny_1b_features, tmp_path):
    overrides = (*TINY, "--clip_seconds=1.0", "--clips_per_shard=16", "--num_workers=1")
    plan = _plan([2, 3, 4], extra=overrides)
    out = str(tmp_path / "out")
    result = tool.reproduce(
        plan,
        out_dir=out,
        data_cfgs=_data_cfgs(tiny_1a_features, tiny_1b_features),
        launch="inline",
        overrides=overrides,
        progress=False,
        log=lambda *_: None,
    )
    assert not result["runs"]["failed"] and len(result["runs"]["done"]) == 34
    table = pd.read_csv(os.path.join(out, "results.csv"))
    assert list(table["config"]) == [r.config for r in plan.rows]
    assert table["paper_accuracy"].notna().all() and table["accuracy_all"].notna().all()
    assert table.loc[table.config == "1a_spsmr_spsmf_spsmt", "paper_accuracy"].item() == 81.8
    assert table.loc[table.config == "1b_ef_spsmt", "paper_size"].item() == "491 KB"
    with open(os.path.join(out, "results.md")) as f:
        assert f.readline().startswith("**SHORTENED RECIPE")
    assert os.path.getsize(os.path.join(out, "results.png")) > 0

    # A row's fused accuracy is what evaluate.py gives for the same runs: it recognises them as
    # the 24 parts of SPSMR + SPSMF + SPSMT from their run records and weighs them 1/40 and 1/8.
    from asc_keras.evaluation import evaluator

    row = next(r for r in plan.rows if r.config == "1a_spsmr_spsmf_spsmt")
    dirs = [runner.run_dir(out, 0, name) for name, _ in row.members]
    evaluated = evaluator.run(
        EvalConfig(model_dirs=tuple(dirs), out_dir=str(tmp_path / "eval")),
        tiny_1a_features[2],
        progress=False,
        print_fn=None,
    )
    metrics = evaluated["systems"]["fusion"]["metrics"]
    ours = table.loc[table.config == row.config].iloc[0]
    assert ours["accuracy_all"] == pytest.approx(100 * metrics["all"]["accuracy"])
    assert ours["log_loss_all"] == pytest.approx(metrics["all"]["log_loss"], rel=1e-6)

    # A rerun finds every run done and starts none.
    def must_not_start(job, env):
        raise AssertionError(f"{job.key} started again")

    again = runner.execute(
        runner.jobs(plan, out, seeds=(0,)),
        train_steps=lambda job: 2,
        start=must_not_start,
        poll=None,
        slots=({},),
        out_dir=out,
        log=lambda *_: None,
    )
    assert len(again["skipped"]) == 34 and not again["done"]


def test_a_failed_run_is_reported_and_the_others_go_on(tiny_1b_features, tmp_path):
    overrides = (*TINY, "--clip_seconds=1.0", "--clips_per_shard=16", "--num_workers=1")
    plan = _plan([4], extra=overrides)
    out = str(tmp_path / "out")
    # A file where one run's folder should be makes that run fail.
    os.makedirs(os.path.join(out, "runs", "seed0"))
    pathlib.Path(runner.run_dir(out, 0, "1b_logmel_spsmt")).write_text("not a folder")
    result = tool.reproduce(
        plan,
        out_dir=out,
        data_cfgs=_data_cfgs(tiny_1b_features),
        launch="inline",
        overrides=overrides,
        progress=False,
        log=lambda *_: None,
    )
    assert list(result["runs"]["failed"]) == ["seed0/1b_logmel_spsmt"]
    assert sorted(result["runs"]["done"]) == ["seed0/1b_ef_spsmt", "seed0/1b_logmel"]
    rows = {r["config"]: r for r in result["results"]}
    assert rows["1b_logmel_spsmt"]["missing"] == "1b_logmel_spsmt"
    assert rows["1b_logmel_spsmt"]["accuracy_all"] is None
    assert rows["1b_logmel"]["accuracy_all"] is not None
    with open(os.path.join(out, "status.json")) as f:
        assert json.load(f)["seed0/1b_logmel_spsmt"]["state"] == "failed"


def test_fusion_weights_recognised_from_the_runs_parts():
    from asc_keras.config import ModelConfig
    from asc_keras.strategies import fusion_weights_of_parts

    bins = {"logmel": 40, "cqt": 64, "gamma": 64, "mfcc": 40}
    best = ModelConfig(
        inputs=tuple(bins), input_bins=bins, fusion="spsmr", strategies=("spsmf", "spsmt")
    )
    parts = [p.config for p in model_parts(best)]
    weights = fusion_weights_of_parts(parts[::-1])  # any order
    assert sorted(weights) == pytest.approx([1 / 40] * 20 + [1 / 8] * 4)
    assert weights[0] == pytest.approx(1 / 8)  # the last part is an SPSMT CNN
    singles = [ModelConfig(inputs=(n,), input_bins={n: b}) for n, b in bins.items()]
    assert fusion_weights_of_parts(singles) == pytest.approx([0.25] * 4)
    with pytest.raises(ValueError, match="not exactly the 24 parts"):
        fusion_weights_of_parts(parts[:23])
    with pytest.raises(ValueError, match="not exactly"):  # two systems, not parts of one
        fusion_weights_of_parts([singles[0], ModelConfig(strategies=("spsmt",))])


@pytest.mark.slow
def test_interrupted_plan_resumes_without_retraining(tiny_1b_features, tmp_path):
    """reproduce.py killed mid-plan (SIGKILL, children too) and rerun: finished runs stay."""
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(REPO / "reproduce.py"),
        "--tables=4",
        f"--out={out}",
        *feature_flags(tiny_1b_features),
        *TINY[:-1],
        "--train_steps=6",
        "--checkpoint_every=1",
        "--eval_batch_size=32",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    log = tmp_path / "reproduce.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            cmd,
            cwd=str(tmp_path),
            stdout=f,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    first = pathlib.Path(runner.run_dir(str(out), 0, "1b_logmel")) / "metrics.json"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert first.exists(), f"the first run did not finish: {log.read_text()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {
        p.parent.name: p.stat().st_mtime_ns for p in (out / "runs" / "seed0").glob("*/model.keras")
    }
    assert "1b_logmel" in finished and len(finished) < 3
    done = subprocess.run(
        cmd, cwd=str(tmp_path), capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{len(finished)} of 3 runs already done" in done.stdout
    for name, mtime in finished.items():
        path = out / "runs" / "seed0" / name / "model.keras"
        assert path.stat().st_mtime_ns == mtime, f"{name} was retrained"
    table = pd.read_csv(out / "results.csv")
    assert table["accuracy_all"].notna().all()
