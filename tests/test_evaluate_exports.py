"""evaluate.py and predict.py on the project's own exports of a multi-output (SPSMR) 1B run.

- `evaluate.py --tflite=model.tflite,model_int8.tflite`: two different files (float and int8 of
  one export.py export, whose files also carry `<part>_probs` outputs) scored, each metrics.json
  equal to scikit-learn's on its predictions.tsv, the float file equal to the Keras run, and
  the printed and saved change equal to int8 minus float;
- a challenge folder (only `audio/0.wav` ...) through `prepare.py --splits=test`, `evaluate.py
  --split=test --submission=...`, the submission scored against the answer key kept here;
- `predict.py` on the multi-representation run gives evaluation's probabilities.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import check_metrics_against_predictions, feature_flags
from export_helpers import make_model_dir, tiny_model_config

from asc_keras.config import ExportConfig
from asc_keras.evaluation import metrics as metrics_lib
from asc_keras.evaluation import submission

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INPUTS = ("logmel", "cqt", "gamma")
CLASSES = ["indoor", "outdoor", "transportation"]


def _script(name, *args, cwd):
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(cwd),
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    return proc.stdout


def _predictions(path):
    """`{filename: (label, device, probs [C])}` of a predictions.tsv."""
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return {r[0]: (r[1], r[2], np.array([float(v) for v in r[4:]])) for r in rows}


@pytest.fixture(scope="module")
def spsmr(tmp_path_factory, tiny_1b_features):
    """`(run_dir, export_dir, keras eval result)` of a tiny 1B SPSMR run exported by export.py."""
    from asc_keras.config import EvalConfig
    from asc_keras.evaluation import evaluator
    from asc_keras.export import exporter

    folder, feature_cfg, data_cfg = tiny_1b_features
    root = tmp_path_factory.mktemp("spsmr")
    model_cfg = tiny_model_config(feature_cfg, inputs=INPUTS, fusion="spsmr", width=0.125)
    run_dir = make_model_dir(
        root / "run", model_cfg, task="1b", feature_cfg=feature_cfg, features=folder, spread=40.0
    )
    cfg = ExportConfig(
        model_dir=run_dir,
        export_dir=str(root / "export"),
        calibration_examples=12,
        parity_examples=4,
        audio_frontend=False,
    )
    report = exporter.run(cfg, log=lambda *_: None)
    assert report["passed"], report["failures"]
    keras = evaluator.run(
        EvalConfig(model_dirs=(run_dir,), out_dir=str(root / "keras_eval"), batch_size=16),
        data_cfg,
        progress=False,
        print_fn=None,
    )
    return run_dir, cfg.export_dir, keras


@pytest.mark.slow
def test_evaluate_float_and_int8_tflite_of_a_multi_output_export(spsmr, tiny_1b_features, tmp_path):
    from asc_keras.inference import tflite_runner

    run_dir, export_dir, keras = spsmr
    float_file = os.path.join(export_dir, "model.tflite")
    int8_file = os.path.join(export_dir, "model_int8.tflite")
    parts = {f"{r}_probs" for r in INPUTS}
    for path in (float_file, int8_file):
        _, outs = tflite_runner.tflite_io(path)
        assert set(outs) == {"probs", *parts}
    scale, zero_point = outs["probs"]["quantization"]  # the int8 file's fused output
    out = tmp_path / "cli"
    stdout = _script(
        "evaluate.py",
        f"--model_dir={run_dir}",
        *feature_flags(tiny_1b_features),
        f"--tflite={float_file},{int8_file}",
        f"--out_dir={out}",
        "--batch_size=8",
        cwd=tmp_path,
    )
    saved = {}
    for name in ("model", "model_int8"):
        with open(out / name / "metrics.json") as f:
            saved[name] = json.load(f)
        check_metrics_against_predictions(saved[name], out / name / "predictions.tsv", CLASSES)
    # The float file scores the fused `probs` output: the Keras run's probabilities.
    (system,) = keras["systems"].values()
    got = _predictions(out / "model" / "predictions.tsv")
    assert list(got) == list(system["meta"]["filename"])
    float_probs = np.stack([v[2] for v in got.values()])  # [N, 3]
    np.testing.assert_allclose(float_probs, system["probs"], atol=1e-5)
    assert float_probs.max() > 0.5  # far from uniform, so the int8 file differs visibly
    int8_probs = np.stack(
        [v[2] for v in _predictions(out / "model_int8" / "predictions.tsv").values()]
    )
    steps = int8_probs / scale + zero_point  # int8 values, dequantized with the output's scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert np.abs(int8_probs - float_probs).max() > 1e-3  # two different files
    assert np.abs(int8_probs - float_probs).max() < 0.1
    assert "log_loss_caveat" not in saved["model"]
    # The change printed and saved is int8 minus float.
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["reference"] == "model"
    for key in ("all", "device_a"):
        change = comparison["change_vs_reference"]["model_int8"][key]
        for metric in ("accuracy", "log_loss"):
            assert change[metric] == pytest.approx(
                saved["model_int8"][key][metric] - saved["model"][key][metric], abs=1e-12
            )
    d = comparison["change_vs_reference"]["model_int8"]["all"]
    assert (
        f"all: accuracy {100 * d['accuracy']:+.2f} points, log loss {d['log_loss']:+.4f}" in stdout
    )


@pytest.mark.slow
def test_challenge_folder_to_submission(spsmr, tiny_1b_features, tmp_path):
    """Only audio/0.wav ...: features of the test split, a submission, scored by the key here."""
    run_dir, export_dir, keras = spsmr
    _, _, data_cfg = tiny_1b_features
    (system,) = keras["systems"].values()
    originals = list(system["meta"]["filename"])
    order = np.random.default_rng(0).permutation(len(originals))[:7]
    challenge = tmp_path / "challenge"
    (challenge / "audio").mkdir(parents=True)
    key = {}  # the answer key: challenge name -> (original clip, true label)
    for k, i in enumerate(order):
        shutil.copy(os.path.join(data_cfg.data_dir, originals[i]), challenge / "audio" / f"{k}.wav")
        key[f"{k}.wav"] = (i, CLASSES[int(system["meta"]["label"][i])])
    assert os.listdir(challenge) == ["audio"]
    features = tmp_path / "features"
    common = [
        f"--data_dir={challenge}",
        f"--features_dir={features}",
        "--clip_seconds=1.0",
        "--num_workers=1",
    ]
    _script(
        "prepare.py",
        f"--flagfile={REPO}/configs/base_1b.flags",
        *common,
        "--splits=test",
        cwd=tmp_path,
    )
    (folder,) = os.listdir(features)
    sub = tmp_path / "submission.csv"
    stdout = _script(
        "evaluate.py",
        f"--model_dir={run_dir}",
        *common,
        "--split=test",
        f"--tflite={export_dir}/model.tflite",
        f"--submission={sub}",
        f"--out_dir={tmp_path / 'out'}",
        cwd=tmp_path,
    )
    assert os.listdir(features) == [folder]  # prepare's features were the ones evaluated
    assert "unlabeled split, no metrics" in stdout
    names, scenes, probs, classes = submission.read_submission(str(sub))
    assert classes == CLASSES and names == [f"{k}.wav" for k in range(len(order))]
    assert scenes == [CLASSES[k] for k in probs.argmax(axis=1)]
    # Each clip got the probabilities its labelled original got, and scores as it did.
    np.testing.assert_allclose(probs, system["probs"][order], atol=1e-5)
    y = np.array([CLASSES.index(key[n][1]) for n in names])
    scored = metrics_lib.compute_metrics(y, probs, ["a"] * len(y), CLASSES)["all"]
    want = metrics_lib.compute_metrics(
        system["meta"]["label"][order], system["probs"][order], ["a"] * len(y), CLASSES
    )["all"]
    assert scored["accuracy"] == pytest.approx(want["accuracy"])
    assert scored["log_loss"] == pytest.approx(want["log_loss"], rel=1e-5)
    assert scored["confusion_matrix"] == want["confusion_matrix"]


@pytest.mark.slow
def test_predict_multi_representation_run_equals_evaluation(spsmr, tiny_1b_features, tmp_path):
    run_dir, _, keras = spsmr
    _, _, data_cfg = tiny_1b_features
    (system,) = keras["systems"].values()
    files = list(system["meta"]["filename"])[:3]
    paths = [os.path.join(data_cfg.data_dir, f) for f in files]
    stdout = _script("predict.py", f"--model={run_dir}", *paths, cwd=tmp_path)
    lines = stdout.strip().splitlines()
    assert lines[0].split() == ["file", "scene", *CLASSES]
    for k, (path, line) in enumerate(zip(paths, lines[1:], strict=True)):
        fields = line.split()
        assert fields[0] == path
        np.testing.assert_allclose([float(v) for v in fields[2:]], system["probs"][k], atol=1e-4)
        assert fields[1] == CLASSES[int(np.argmax(system["probs"][k]))]
