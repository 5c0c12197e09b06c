"""Starting a run from another run's final weights (`--init_from=RUN`, per-device fine-tuning).

Input: a finished training run folder (`config.json`, `normalization.json`, `model.keras`).
`read_init(path, ...)` refuses, in one line, a run of another task, classes, feature settings or
model config than the new run's (fine-tuning keeps the model), loads its `model.keras` and
returns an `InitFrom`: the weights (numpy arrays in `model.weights` order), their SHA-256
(`weights_sha256`) and the run's normalization, which the fine-tuned run keeps so that its
inputs are those the weights were trained on. `InitFrom.apply(model)` copies the weights into a
freshly built model of the same config before its first step (a resumed run restores its own
checkpoint instead); `InitFrom.record()` is what config.json's `init_from` entry holds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

from asc_keras import runs
from asc_keras.config import FeatureConfig, ModelConfig
from asc_keras.errors import AscError


class InitFromError(AscError, ValueError):
    """The --init_from run cannot start this run (another model, or not a finished run)."""


def weights_sha256(weights: Sequence[np.ndarray]) -> str:
    """SHA-256 over every array's dtype, shape and bytes, in order."""
    digest = hashlib.sha256()
    for w in weights:
        w = np.ascontiguousarray(w)
        digest.update(f"{w.dtype.str}{w.shape}".encode())
        digest.update(w.tobytes())
    return digest.hexdigest()


def _json(value):
    return json.loads(json.dumps(value))


def _differences(old: Mapping, new: Mapping) -> list[str]:
    return [
        f"{k}: {old.get(k)!r} -> {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]


def _own_path(path: str) -> str:
    """A variable's layer and name (`ef_fc1_dense/kernel`): a wrapped layer's variables (SPSMT's
    `TimeDistributed` Dense) carry the wrapper's name in front in a freshly built model
    (`ef_fc1/ef_fc1_dense/kernel`) but not in one loaded from `model.keras`."""
    return "/".join(path.split("/")[-2:])


@dataclasses.dataclass(frozen=True)
class InitFrom:
    """The starting weights of a run, read from another run's folder."""

    path: str  # the run folder (absolute)
    model_path: str  # its model.keras
    names: tuple[str, ...]  # variable paths, `model.weights` order
    weights: tuple  # numpy arrays, `model.weights` order
    sha256: str
    normalization: Mapping  # {rep: {'mean', 'std'}} of the run

    def record(self) -> dict:
        """config.json's `init_from` entry."""
        return {"path": self.path, "model": self.model_path, "weights_sha256": self.sha256}

    def apply(self, model) -> None:
        """Assign the weights to `model` (built from the same config).

        Raises:
            InitFromError: The model's variables differ from the run's (names or shapes).
        """
        names = tuple(v.path for v in model.weights)
        shapes = tuple(tuple(v.shape) for v in model.weights)
        if tuple(map(_own_path, names)) != tuple(map(_own_path, self.names)) or shapes != tuple(
            w.shape for w in self.weights
        ):
            raise InitFromError(
                f"{self.model_path}: its {len(self.names)} weights do not match the model's "
                f"{len(names)}; --init_from needs a run of the same model"
            )
        for variable, value in zip(model.weights, self.weights, strict=True):
            variable.assign(value)


def read_init(
    path: str,
    *,
    task: str,
    classes: Sequence[str],
    feature_cfg: FeatureConfig,
    model_cfg: ModelConfig,
) -> InitFrom:
    """The final weights of run folder `path`, checked against the new run's settings.

    Raises:
        InitFromError: Not a finished run, or another task, classes, feature settings or model
            config (one line naming the differing fields).
    """
    from asc_keras.models import load_model

    path = os.path.abspath(path)
    model_path = os.path.join(path, runs.MODEL_NAME)
    if not os.path.isfile(model_path):
        raise InitFromError(f"{model_path}: missing; --init_from takes a finished run folder")
    try:
        info = runs.read_run(path)
    except (OSError, ValueError, TypeError) as e:
        raise InitFromError(f"--init_from={path}: {e}") from None
    where = os.path.join(path, runs.CONFIG_NAME)
    if info.task != task or tuple(info.classes) != tuple(classes):
        raise InitFromError(
            f"{where}: a {info.task} run with classes {list(info.classes)}; this run is {task} "
            f"with {list(classes)}"
        )
    for what, old, new in (
        ("feature", info.feature_config.to_dict(), feature_cfg.to_dict()),
        ("model", dict(info.model_config), model_cfg.to_dict()),
    ):
        diff = _differences(_json(old), _json(new))
        if diff:
            raise InitFromError(
                f"{where}: --init_from needs the same {what} config, it differs in "
                f"{'; '.join(diff[:4])}{'; ...' if len(diff) > 4 else ''} (replay the run's "
                f"flags: --flagfile={os.path.join(path, runs.FLAGS_NAME)})"
            )
    model = load_model(model_path, compile=False)
    weights = tuple(np.asarray(v.numpy()) for v in model.weights)
    return InitFrom(
        path=path,
        model_path=model_path,
        names=tuple(v.path for v in model.weights),
        weights=weights,
        sha256=weights_sha256(weights),
        normalization=info.normalization,
    )
