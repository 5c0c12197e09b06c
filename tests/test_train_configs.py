"""Every paper flagfile trains: `train.py`'s main, 2 steps at a tiny width, on the tiny datasets."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import pathlib

import pytest
from conftest import check_metrics_against_predictions, feature_flags, flagfile_params

REPO = pathlib.Path(__file__).resolve().parent.parent
CONFIGS = sorted(glob.glob(str(REPO / "configs" / "1*.flags")))


def _train_module():
    spec = importlib.util.spec_from_file_location("asc_train_main", REPO / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _task(path: str) -> str:
    return os.path.basename(path)[:2]


@pytest.fixture
def parsed_flags(monkeypatch):
    """Parse argv into absl's FLAGS (nested flagfiles resolve from the repo root); reset after."""
    from absl import flags

    from asc_keras import flags as flags_lib

    flags_lib.define_all()
    monkeypatch.chdir(REPO)

    def parse(argv):
        flags.FLAGS.unparse_flags()
        flags_lib.parse(["train.py", *argv])

    yield parse
    flags.FLAGS.unparse_flags()


def test_there_are_paper_configs():
    assert len(CONFIGS) >= 20, CONFIGS
    assert {"1a", "1b"} == {_task(c) for c in CONFIGS}


@pytest.mark.parametrize("config", flagfile_params(CONFIGS), ids=lambda p: os.path.basename(p)[:-6])
def test_flagfile_trains(config, request, tmp_path, parsed_flags):
    fixture = "tiny_1a_features" if _task(config) == "1a" else "tiny_1b_features"
    features = request.getfixturevalue(fixture)
    model_dir = tmp_path / "run"
    parsed_flags(
        [
            f"--flagfile={config}",
            *feature_flags(features),
            f"--model_dir={model_dir}",
            "--width=0.04",
            "--train_steps=2",
            "--batch_size=2",
            "--eval_every=0",
            "--eval_batch_size=32",
            "--checkpoint_every=2",
            "--log_every=1",
        ]
    )
    assert _train_module().main(["train.py"]) in (None, 0)  # None: exit status 0
    for name in ("config.json", "flags.txt", "normalization.json", "model.keras", "metrics.json"):
        assert (model_dir / name).exists(), name
    with open(model_dir / "config.json") as f:
        record = json.load(f)
    assert record["task"] == _task(config)
    with open(model_dir / "metrics.json") as f:
        saved = json.load(f)
    check_metrics_against_predictions(saved, model_dir / "predictions.tsv", record["classes"])
