"""Every flagfile's exported SavedModels run in TensorFlow's portable kernels (oneDNN off).

TensorFlow switches its oneDNN kernels on by itself only on CPUs with AVX-512 VNNI and similar;
laptops, most cloud machines and GPUs run TensorFlow's own kernels, which refuse some ops oneDNN
takes (a depthwise convolution of unequal strides, say). Every flagfile's model (tiny width) is
written as the export writes its SavedModel (`serving.feature_serving_model`); a 1B, a
Log-Mel 1B (with its waveform-in SavedModel), the TAU 2022 and a multi-input 1A model go
through the whole `export.artifacts.write_artifacts` (SavedModels and float TFLite). Then a fresh
process with `TF_ENABLE_ONEDNN_OPTS=0` loads every SavedModel, calls its `serving_default`
signature and must give the Keras model's outputs.
"""

from __future__ import annotations

import glob
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
FLAGFILES = sorted(
    glob.glob(str(REPO / "configs" / "1*.flags")) + glob.glob(str(REPO / "configs" / "tau*.flags"))
)
WHOLE_EXPORT = ("1b_ef_spsmt", "1b_logmel", "tau2022_ef_spsmt", "1a_mf")

CALL_SAVED_MODELS = """
import json, os, sys
import numpy as np
import tensorflow as tf
root = sys.argv[1]
for name in json.load(open(os.path.join(root, "models.json"))):
    for kind in ("saved_model", "audio_saved_model"):
        folder = os.path.join(root, name, kind)
        if not os.path.isdir(folder):
            continue
        fn = tf.saved_model.load(folder).signatures["serving_default"]
        inputs = dict(np.load(os.path.join(root, name, kind + "_inputs.npz")))
        out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        np.savez(os.path.join(root, name, kind + "_outputs.npz"),
                 **{k: v.numpy() for k, v in out.items()})
"""


@pytest.mark.slow
def test_every_flagfile_saved_model_runs_without_onednn(tmp_path):
    import keras

    from asc_keras import flags as flags_lib
    from asc_keras.export import artifacts, checks, savedmodel, serving, verify
    from asc_keras.strategies import build_model

    assert set(WHOLE_EXPORT) <= {os.path.basename(p)[: -len(".flags")] for p in FLAGFILES}
    rng = np.random.default_rng(0)
    expected, names = {}, []
    for path in FLAGFILES:
        name = os.path.basename(path)[: -len(".flags")]
        _, feature_cfg, model_cfg, _ = flags_lib.flagfile_configs(
            path, ("--width=0.04", "--clip_seconds=1")
        )
        keras.utils.set_random_seed(0)
        model = build_model(model_cfg)
        normalization = {
            r: {
                "mean": rng.normal(-40, 5, feature_cfg.bins(r)),
                "std": rng.uniform(5, 15, feature_cfg.bins(r)),
            }
            for r in model_cfg.inputs
        }
        folder = tmp_path / name
        folder.mkdir()
        if name in WHOLE_EXPORT:
            entries = artifacts.write_artifacts(
                model,
                normalization,
                str(folder),
                feature_cfg=feature_cfg,
                calibration=None,
                log=lambda *_: None,
            )
            assert all(e["status"] == "ok" for e in entries), entries
        else:
            savedmodel.export_saved_model(
                serving.feature_serving_model(model, normalization), str(folder / "saved_model")
            )
        raw = {
            r: rng.normal(-40, 10, (2, *feature_cfg.shapes[r])).astype(np.float32)
            for r in model_cfg.inputs
        }
        np.savez(folder / "saved_model_inputs.npz", **raw)
        expected[name, "saved_model"] = verify.keras_outputs(
            model, checks.normalized(raw, normalization)
        )
        if (folder / "audio_saved_model").is_dir():
            wave = rng.normal(0, 0.1, (2, feature_cfg.num_samples)).astype(np.float32)
            np.savez(folder / "audio_saved_model_inputs.npz", waveform=wave)
            audio = serving.audio_serving_model(model, feature_cfg, normalization)
            expected[name, "audio_saved_model"] = verify.keras_outputs(audio, {"waveform": wave})
        names.append(name)
    (tmp_path / "models.json").write_text(json.dumps(names))
    assert {kind for _, kind in expected} == {"saved_model", "audio_saved_model"}

    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", CALL_SAVED_MODELS, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for (name, kind), want in expected.items():
        got = dict(np.load(tmp_path / name / f"{kind}_outputs.npz"))
        assert set(got) == set(want), (name, kind)
        for key in want:
            np.testing.assert_allclose(
                got[key], want[key], atol=1e-5, err_msg=f"{name} {kind} {key}"
            )
