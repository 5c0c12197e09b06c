"""predict.py: one WAV, every kind of model, the same probabilities; the training features."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from export_helpers import export_tiny_spsmt

from asc_keras import audio
from asc_keras.data.manifest import load_manifest
from asc_keras.export import calibration
from asc_keras.features import compute_features
from asc_keras.inference import loader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_1b_features):
    """`(model_dir, export_dir, features folder)` of a tiny 1B Log-Mel SPSMT model."""
    run_dir, export_dir = export_tiny_spsmt(
        tmp_path_factory.mktemp("predict"), tiny_1b_features, spread=40.0, parity_examples=4
    )
    return run_dir, export_dir, tiny_1b_features[0]


def _wavs(folder: str, n: int) -> list[str]:
    manifest = load_manifest(folder)
    data_dir = manifest.dataset["data_dir"]
    return [os.path.join(data_dir, f) for f in manifest.split("evaluate").files[:n]]


def test_predict_features_are_the_training_features(exported):
    """No train/serve skew: predict's features of a clip equal the precomputed ones."""
    run_dir, _, folder = exported
    classifier = loader.load_classifier(run_dir)
    manifest = load_manifest(folder)
    stored = calibration.read_examples(manifest, "evaluate", [0], ("logmel",))
    path = os.path.join(manifest.dataset["data_dir"], stored.filenames[0])
    wave = audio.load_clip(path, classifier.feature_config)
    np.testing.assert_array_equal(
        compute_features(wave, classifier.feature_config)["logmel"], stored.features["logmel"][0]
    )


def test_every_model_kind_gives_the_same_probabilities(exported):
    run_dir, export_dir, folder = exported
    paths = _wavs(folder, 3)
    kinds = {
        "model_dir": run_dir,
        "keras_file": os.path.join(run_dir, "model.keras"),
        "saved_model": os.path.join(export_dir, "saved_model"),
        "tflite": os.path.join(export_dir, "model.tflite"),
        "export_dir": export_dir,
        "int8": os.path.join(export_dir, "model_int8.tflite"),
        "audio_saved_model": os.path.join(export_dir, "audio_saved_model"),
        "audio_tflite": os.path.join(export_dir, "model_audio.tflite"),
    }
    probs = {}
    for kind, model in kinds.items():
        classifier = loader.load_classifier(model)
        assert classifier.classes == ("indoor", "outdoor", "transportation")
        assert classifier.normalization is None or kind in ("model_dir", "keras_file")
        preds = [classifier.classify(p) for p in paths]
        probs[kind] = np.stack([p.probs for p in preds])  # [3, C]
        assert all(p.scene == classifier.classes[int(np.argmax(p.probs))] for p in preds)
    ref = probs["model_dir"]
    assert np.abs(ref.sum(axis=1) - 1).max() < 1e-5
    assert ref.max() > 0.4  # the probabilities are far from uniform, so the checks mean much
    for kind in ("keras_file", "saved_model", "tflite", "export_dir"):
        np.testing.assert_allclose(probs[kind], ref, atol=1e-5, err_msg=kind)
    for kind in ("audio_saved_model", "audio_tflite"):  # Log-Mel in the graph: float32 FFT
        np.testing.assert_allclose(probs[kind], ref, atol=1e-3, err_msg=kind)
    # int8: quantized inputs with the model's own scale and zero point give float's answers.
    assert np.abs(probs["int8"] - ref).max() < 0.05
    assert np.array_equal(probs["int8"].argmax(1), ref.argmax(1))


@pytest.mark.slow
def test_predict_cli(exported, tmp_path):
    _, export_dir, folder = exported
    paths = _wavs(folder, 2)
    bad = tmp_path / "not_audio.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "predict.py"),
            f"--model={os.path.join(export_dir, 'model_int8.tflite')}",
            *paths,
            str(bad),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 1  # the bad file
    assert f"error: {bad}:" in proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split() == ["file", "scene", "indoor", "outdoor", "transportation"]
    classifier = loader.load_classifier(os.path.join(export_dir, "model_int8.tflite"))
    for path, line in zip(paths, lines[1:], strict=True):
        fields = line.split()
        expected = classifier.classify(path)
        assert fields[0] == path and fields[1] == expected.scene
        np.testing.assert_allclose([float(v) for v in fields[2:]], expected.probs, atol=1e-4)


def test_load_classifier_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        loader.load_classifier(str(tmp_path / "missing.tflite"))
    (tmp_path / "x.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="not a .tflite file"):
        loader.load_classifier(str(tmp_path / "x.bin"))
