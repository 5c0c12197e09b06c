"""Quiet by default: no TensorFlow / converter / LiteRT log lines unless asked; start-up flags.

Scripts run as subprocesses; their stdout and stderr must hold no native log line. The same
conversion with `ASC_KERAS_TF_LOGS=1` shows those lines, so the check can fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from export_helpers import make_model_dir, tiny_model_config

from asc_keras.cli import quiet, usage
from asc_keras.config import FeatureConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Independent of quiet.NOISE: what TensorFlow, absl C++ logging and the converter print.
TF_LOG = re.compile(
    r"^[IWE]\d{4} .*\.(cc|h):\d+\]|absl::InitializeLog|oneDNN|fully_quantize|"
    r"XNNPACK|cpu_feature_guard|rebuild TensorFlow",
    re.MULTILINE,
)

CONVERT = """
import sys
from asc_keras.cli import quiet
quiet.setup(sys.argv)
import keras, numpy as np
from asc_keras.export import calibration, savedmodel, serving, tflite, verify
x = keras.Input((8, 4), name="logmel")
stats = {"logmel": {"mean": np.zeros(4), "std": np.ones(4)}}
y = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(
    serving._normalize(x, stats, "logmel")))
savedmodel.export_saved_model(keras.Model({"logmel": x}, {"probs": y}), sys.argv[1] + "/sm")
ex = calibration.synthetic_examples({"logmel": (8, 4)}, stats, 4, seed=0)
open(sys.argv[1] + "/m.tflite", "wb").write(
    tflite.convert_int8(sys.argv[1] + "/sm", lambda: ex.batches()))
print("probs", verify.tflite_outputs(sys.argv[1] + "/m.tflite", ex.features)["probs"].shape)
"""


def _run(args, env_extra=None, **kwargs):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", quiet.ENV_SHOW_LOGS)
    }
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
        **kwargs,
    )


def test_noise_patterns():
    assert quiet.is_noise("I0000 00:00:1795994875.034066   22108 tf_record_dataset_op.cc:390] x")
    assert quiet.is_noise("WARNING: All log messages before absl::InitializeLog() is called")
    assert quiet.is_noise("fully_quantize: 0, inference_type: 6, input_inference_type: INT8")
    assert quiet.is_noise("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    # Python absl logging, our own lines and fatal C++ lines pass.
    assert not quiet.is_noise("I0516 12:00:00.123456 1234 train.py:30] step 100")
    assert not quiet.is_noise("error: /data/x.wav: not a WAV file")
    assert not quiet.is_noise("F0000 00:00:1.0 1 check.cc:10] Check failed: x")
    assert quiet.wants_logs(["x.py", "--verbosity=1"]) and quiet.wants_logs(["x.py", "-v", "2"])
    assert not quiet.wants_logs(["x.py", "--verbosity=0"], environ={})
    assert quiet.wants_logs(["x.py"], environ={quiet.ENV_SHOW_LOGS: "1"})
    assert usage.missing({"a": None, "b": "x", "c": ""}, ["a", "b", "c"]) == ["a", "c"]


@pytest.mark.slow
def test_conversion_is_quiet_unless_asked(tmp_path):
    (tmp_path / "q").mkdir()
    (tmp_path / "v").mkdir()
    quiet_run = _run(["-c", CONVERT, str(tmp_path / "q")])
    assert quiet_run.returncode == 0, quiet_run.stderr[-2000:]
    assert "probs (4, 3)" in quiet_run.stdout
    assert not TF_LOG.search(quiet_run.stdout + quiet_run.stderr), quiet_run.stderr[:2000]
    loud = _run(["-c", CONVERT, str(tmp_path / "v")], {quiet.ENV_SHOW_LOGS: "1"})
    assert loud.returncode == 0
    assert TF_LOG.search(loud.stdout + loud.stderr)  # the check above can fail


@pytest.mark.slow
def test_script_is_quiet_and_reports_all_missing_flags(tmp_path):
    feature_cfg = FeatureConfig(clip_seconds=0.5)
    model_cfg = tiny_model_config(
        feature_cfg, task="1a", backbone="1a", inputs=("logmel",), width=1 / 16
    )
    run_dir = make_model_dir(tmp_path / "run", model_cfg, task="1a", feature_cfg=feature_cfg)
    proc = _run(
        [
            "export.py",
            f"--model_dir={run_dir}",
            f"--export_dir={tmp_path / 'out'}",
            "--noexport_int8",
            "--noexport_audio",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "model.tflite" in proc.stdout
    assert not TF_LOG.search(proc.stdout + proc.stderr), proc.stderr[:2000]

    missing = _run(["export.py"])
    assert missing.returncode == 1
    assert "missing required flags --model_dir, --export_dir" in missing.stderr
    assert "Traceback" not in missing.stderr
    for flag in ("--help", "-h"):
        helped = _run(["train.py", flag])
        assert helped.returncode == 0, helped.stderr
        assert "--train_steps" in helped.stdout and "python train.py" in helped.stdout


def test_retracing_notes_are_dropped_unless_verbose():
    """One process that builds several models traces each once; TensorFlow's "retracing"
    warning about that is dropped after `quiet_python_logs`, and shown with `--verbosity`."""
    import logging

    import tensorflow as tf
    from absl import flags
    from absl import logging as absl_logging

    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    def traced_per_model():  # what a per-run tf.function factory does
        for i in range(7):
            tf.function(lambda x: x * 2)(tf.constant([float(i)] * (i + 1)))

    tf_logger = logging.getLogger("tensorflow")
    handler, level = Collect(), absl_logging.get_verbosity()
    tf_logger.addHandler(handler)
    try:
        for verbose in (True, False):
            fv = flags.FlagValues()
            flags.DEFINE_integer("verbosity", 0, "", flag_values=fv)
            fv(["script", "--verbosity=0"] if verbose else ["script"])
            quiet.quiet_python_logs(fv)
            seen.clear()
            traced_per_model()
            retracing = [m for m in seen if "triggered tf.function retracing" in m]
            assert bool(retracing) == verbose, seen
    finally:
        tf_logger.removeHandler(handler)
        tf_logger.removeFilter(quiet.NO_RETRACING_NOTES)
        absl_logging.set_verbosity(level)
