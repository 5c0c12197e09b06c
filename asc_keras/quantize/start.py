"""The run a QAT fine-tuning starts from (`train.py --qat_from=RUN`).

Input: a finished float training run's folder (its `model.keras`, the final weights, and
`config.json`) and the model config of the QAT run. Output: the QAT model of those weights
(`qat_model_from_run`, `asc_keras.quantize.build.qat_model`) and what config.json records of the
start (`describe`: the folder, its model file and a SHA-256 of the starting weight values, so a
later retraining of RUN is noticed).

The QAT run must have the starting run's model config (the same network): pass the run's own
flags, `--flagfile=RUN/flags.txt`, with `--qat_from=RUN --model_dir=QATRUN --train_steps=N`.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from asc_keras.config import ModelConfig
from asc_keras.errors import AscError
from asc_keras.runs import MODEL_NAME, read_run


class QATStartError(AscError, ValueError):
    """The run named by --qat_from cannot start a QAT run (missing, or another network)."""


def weights_sha256(model) -> str:
    """SHA-256 of every weight of `model` (name, shape, float32 bytes, in layer order)."""
    digest = hashlib.sha256()
    for v in model.weights:
        value = np.ascontiguousarray(np.asarray(v.numpy(), np.float32))
        digest.update(f"{v.path}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _canonical(config) -> str:
    return json.dumps(json.loads(json.dumps(dict(config))), sort_keys=True)


def load_start(run_dir: str, model_cfg: ModelConfig):
    """The float model of `run_dir`, checked against `model_cfg`.

    Raises:
        QATStartError: No finished run there, a QAT run, or a different model config.
    """
    from asc_keras.models import load_model
    from asc_keras.quantize.build import is_qat_model

    path = os.path.join(run_dir, MODEL_NAME)
    if not os.path.exists(path):
        raise QATStartError(f"{path}: missing (--qat_from needs a finished training run)")
    try:
        info = read_run(run_dir)
    except (OSError, ValueError) as e:
        raise QATStartError(f"--qat_from={run_dir}: {e}") from None
    if _canonical(info.model_config) != _canonical(model_cfg.to_dict()):
        old, new = json.loads(_canonical(info.model_config)), model_cfg.to_dict()
        diff = sorted(
            k for k in set(old) | set(new) if old.get(k) != json.loads(json.dumps(new.get(k)))
        )
        raise QATStartError(
            f"{run_dir}/config.json: --qat_from needs the same model config (differs in "
            f"{', '.join(diff[:6])}); pass --flagfile={run_dir}/flags.txt"
        )
    model = load_model(path, compile=False)
    if is_qat_model(model):
        raise QATStartError(f"{path}: already a QAT model; start from a float run")
    return model


def qat_model_from_run(run_dir: str, model_cfg: ModelConfig):
    """The QAT model of the final weights of `run_dir` (see `load_start`)."""
    from asc_keras.quantize.build import qat_model

    return qat_model(load_start(run_dir, model_cfg))


def describe(run_dir: str, model_cfg: ModelConfig) -> dict:
    """`{'path', 'model', 'weights_sha256'}` of the starting run, for config.json."""
    model = load_start(run_dir, model_cfg)
    return {
        "path": os.path.abspath(run_dir),
        "model": os.path.abspath(os.path.join(run_dir, MODEL_NAME)),
        "weights_sha256": weights_sha256(model),
    }
