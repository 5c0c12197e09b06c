"""The DCASE 2024 data-efficiency protocol: its plan (splits x seeds, scaled schedule, run
names), an end-to-end run on a synthetic TAU 2022 set with split_setup/, stale detection and
the table's numbers against NumPy from the per-run metrics."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from test_reproduce import CONFIGS, REPO

from asc_keras import flags as flags_lib
from asc_keras.cli import reproduce_args
from asc_keras.config import DataConfig
from asc_keras.reproduce import protocol_report, protocols, runner

FLAGFILE = os.path.join(CONFIGS, "tau2022_ef_spsmt.flags")
TINY = (  # the flagfile's network on Log-Mel alone, to keep the features cheap
    "--representations=logmel",
    "--model_inputs=logmel",
    "--fusion=single",
    "--width=0.125",
    "--train_steps=4",
    "--warmup_steps=2",
    "--batch_size=4",
    "--eval_every=0",
    "--checkpoint_every=4",
    "--log_every=1",
    "--eval_batch_size=64",
    "--clip_seconds=0.5",
    "--clips_per_shard=64",
    "--num_workers=1",
)
SPLITS = (5, 100)
SEEDS = (0, 1)


def _plan(overrides=TINY, splits=SPLITS):
    return protocols.make_protocol_plan(
        FLAGFILE,
        splits=splits,
        read_flagfile=lambda path: flags_lib.flagfile_configs(path, tuple(overrides)),
    )


def test_the_plan_scales_steps_decay_and_warmup_per_split():
    argv = ["reproduce.py", "--protocol=dcase2024", f"--flagfile={FLAGFILE}", "--seeds=0,1,2"]
    flagfile, overrides = reproduce_args.protocol_command([*argv, "--width=0.25", "--dry_run"])
    assert (flagfile, overrides) == (FLAGFILE, ("--width=0.25",))
    with pytest.raises(ValueError, match="exactly one"):
        reproduce_args.protocol_command(argv[:2])

    plan = _plan(("--train_steps=12000", "--warmup_steps=2000"), splits=protocols.SPLITS)
    text = protocols.format_protocol_plan(plan, (0, 1, 2))
    assert [r.name for r in plan.runs] == [
        f"tau2022_ef_spsmt_split{p}" for p in (5, 10, 25, 50, 100)
    ]
    # A fixed number of epochs: steps (and the staircase interval) proportional to the split;
    # warm-up divided by 20 / 10 / 4 / 2 as in the 2024 baseline.
    for run, p, warmup in zip(
        plan.runs, (5, 10, 25, 50, 100), (100, 200, 500, 1000, 2000), strict=True
    ):
        assert protocols.schedule_of(run) == {
            "train_steps": 12000 * p // 100,
            "lr_decay_steps": 200 * p // 100,
            "warmup_steps": warmup,
        }
        assert run.flags[0] == f"--train_csv=split_setup/split{p}.csv"
        line = next(line for line in text.splitlines() if line.startswith(run.name + " "))
        assert line.split()[1:5] == [
            f"split_setup/split{p}.csv",
            f"{12000 * p // 100:,}",
            f"{200 * p // 100:,}",
            f"{warmup:,}",
        ]
    assert "5 splits x 3 seed(s) (0, 1, 2) = 15 runs" in text
    # Without --warmup_steps the 100 % run warms up over the baseline's share (2,000 / 81,900).
    plain = _plan(("--train_steps=12000",), splits=(5, 100))
    assert [protocols.schedule_of(r)["warmup_steps"] for r in plain.runs] == [15, 293]
    jobs = runner.jobs(plan, "/out", seeds=(0, 1, 2))
    assert [j.key for j in jobs][:2] == [
        "seed0/tau2022_ef_spsmt_split5",
        "seed0/tau2022_ef_spsmt_split10",
    ]
    assert len(jobs) == 15
    with pytest.raises(ValueError, match="TAU 2022"):
        protocols.make_protocol_plan(
            os.path.join(CONFIGS, "1b_logmel.flags"),
            read_flagfile=lambda path: flags_lib.flagfile_configs(path),
        )
    with pytest.raises(ValueError, match="splits"):
        _plan(splits=(5, 7))


@pytest.mark.slow
def test_dry_run_prints_the_plan_without_data():
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "reproduce.py"),
            "--protocol=dcase2024",
            f"--flagfile={FLAGFILE}",
            "--seeds=0,1",
            "--protocol_splits=5,100",
            "--train_steps=400",
            "--dry_run",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line.split() for line in out.stdout.splitlines()]
    assert ["tau2022_ef_spsmt_split5", "split_setup/split5.csv", "20", "10", "1"] in [
        line[:5] for line in lines
    ]
    assert ["tau2022_ef_spsmt_split100", "split_setup/split100.csv", "400", "200", "10"] in [
        line[:5] for line in lines
    ]
    assert "2 splits x 2 seed(s) (0, 1) = 4 runs" in out.stdout
    assert "**RECIPE CHANGED from the flagfile's by --train_steps=400" in out.stdout


def test_the_baseline_numbers_are_kept_as_data():
    base = protocols.read_baseline(CONFIGS)
    assert [(b.split, b.accuracy, b.accuracy_std) for b in base.values()] == [
        (5, 42.40, 0.42),
        (10, 45.29, 1.01),
        (25, 50.29, 0.87),
        (50, 53.19, 0.68),
        (100, 56.99, 1.11),
    ]
    assert base[100].devices["a"] == 67.17 and list(base[5].devices)[-1] == "s6"


@pytest.fixture(scope="module")
def tau_dir(tmp_path_factory):
    from asc_keras.data import synthetic

    root = tmp_path_factory.mktemp("tau2022") / "data"
    synthetic.generate(
        root,
        task="tau2022",
        clips_per_class=4,
        clips_per_location=2,
        clip_seconds=0.5,
        subsegments=1,
        seed=2,
    )
    return root


def _protocol(tau_dir, out, overrides=TINY, **kwargs):
    data_cfg = DataConfig(
        data_dir=str(tau_dir),
        features_dir=str(pathlib.Path(out).parent / "features"),
        task="tau2022",
        num_workers=1,
        clips_per_shard=64,
    )
    return protocol_report.reproduce_protocol(
        _plan(overrides),
        out_dir=str(out),
        data_cfg=data_cfg,
        configs_dir=CONFIGS,
        seeds=SEEDS,
        launch="inline",
        overrides=overrides,
        progress=False,
        log=lambda *_: None,
        **kwargs,
    )


@pytest.fixture(scope="module")
def finished(tau_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("protocol") / "out"
    return out, _protocol(tau_dir, out)


@pytest.mark.slow
def test_a_tiny_protocol_trains_every_split_and_seed(tau_dir, finished):
    out, result = finished
    assert not result["runs"]["failed"]
    assert sorted(result["runs"]["done"]) == sorted(
        f"seed{s}/tau2022_ef_spsmt_split{p}" for s in SEEDS for p in SPLITS
    )
    for p in SPLITS:
        with open(runner.run_dir(str(out), 0, f"tau2022_ef_spsmt_split{p}") + "/config.json") as f:
            record = json.load(f)
        assert record["data"]["train_csv"] == f"split_setup/split{p}.csv"
        assert record["train_config"]["train_steps"] == {5: 1, 100: 4}[p]
    train_lists = {
        p: len((tau_dir / f"split_setup/split{p}.csv").read_text().splitlines()) - 1 for p in SPLITS
    }
    assert train_lists[5] < train_lists[100]  # each run read its own split
    text = (out / "results_dcase2024.md").read_text()
    assert text.startswith("**RECIPE CHANGED")
    assert "| 5 % | 1 | 1 | 42.40 ± 0.42 |" in text and "| 100 % | 4 | 2 | 56.99 ± 1.11 |" in text
    assert "real = a, b, c; seen = s1, s2, s3" in text

    # A rerun finds every run done and trains none.
    again = _protocol(tau_dir, out)
    assert len(again["runs"]["skipped"]) == 4 and not again["runs"]["done"]


@pytest.mark.slow
def test_the_table_is_mean_and_std_of_the_runs_own_metrics(finished):
    out, result = finished
    rows = {r["split"]: r for r in result["results"]}
    for p in SPLITS:
        metrics = []
        for seed in SEEDS:
            path = pathlib.Path(runner.run_dir(str(out), seed, f"tau2022_ef_spsmt_split{p}"))
            metrics.append(json.loads((path / "metrics.json").read_text()))  # training's own
        acc = np.array([m["all"]["accuracy"] for m in metrics]) * 100
        assert rows[p]["accuracy"] == pytest.approx(acc.mean(), abs=1e-6)
        assert rows[p]["accuracy_std"] == pytest.approx(acc.std(), abs=1e-6)
        assert rows[p]["difference"] == pytest.approx(acc.mean() - {5: 42.40, 100: 56.99}[p])
        for group in ("real", "seen", "unseen"):
            g = np.array([m["all"]["device_groups"][group]["accuracy"] for m in metrics]) * 100
            assert rows[p]["groups"][group]["accuracy"] == pytest.approx(g.mean(), abs=1e-6)
            assert rows[p]["groups"][group]["accuracy_std"] == pytest.approx(g.std(), abs=1e-6)
        s4 = np.array([m["all"]["device_wise"]["s4"]["accuracy"] for m in metrics]) * 100
        assert rows[p]["devices"]["s4"]["accuracy"] == pytest.approx(s4.mean(), abs=1e-6)
    csv_lines = (out / "results_dcase2024.csv").read_text().splitlines()
    assert csv_lines[0].startswith("split,train_csv,train_steps") and len(csv_lines) == 3


@pytest.mark.slow
def test_a_protocol_run_of_other_settings_is_stale(tau_dir, finished):
    out, _ = finished
    with pytest.raises(runner.StaleRunsError) as e:
        _protocol(tau_dir, out, overrides=(*TINY, "--width=0.25"))
    assert "seed0/tau2022_ef_spsmt_split5: width 0.125 -> 0.25" in str(e.value)
    with pytest.raises(ValueError, match="sets --train_csv"):
        _protocol(tau_dir, out, overrides=(*TINY, "--train_csv=evaluation_setup/fold1_train.csv"))
