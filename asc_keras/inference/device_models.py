"""Per-device models (DCASE 2025): a folder of one model per recording device, and the choice of
model per clip.

Layout of `--device_models=DIR`: one subfolder per device, named after it, each holding what
`loader` loads: a training run folder (`model.keras`, e.g. `train.py --init_from=GENERAL
--train_devices=b --model_dir=DIR/b`), an export folder (its `model.tflite`) or a SavedModel:

    DIR/b/   DIR/c/   DIR/s1/ ...

A clip whose device has a model there is classified by that model; every other clip (an unseen
device, an unknown device) by the general model. The device of a clip is the records' `device`
field (evaluate.py) or, for an audio file, the last field of a TAU file name
(`audio/airport-barcelona-0-0-0-b.wav`: `asc_keras.labels.parse_filename` with the tasks'
`filename_fields`), unless a device is given for every file (predict.py's `--clip_device`).

- `find(folder) -> {device: path}`; `clip_device(path) -> str | None`;
- `load_classifiers(folder)` (predict.py) and `load_predictors(folder)` (evaluate.py), both
  through `loader`, with the settings stored beside each model;
- `combine(general, per_device, devices) -> (probs [N, C], model used per clip [N])`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from asc_keras import labels, runs
from asc_keras.errors import AscError
from asc_keras.inference import loader

GENERAL = "general"  # the name of the general model in reports


class DeviceModelsError(AscError, ValueError):
    """A per-device models folder that cannot be used."""


def find(folder: str) -> dict[str, str]:
    """`{device: model path}` of the subfolders that `loader` can load, sorted by device.

    Raises:
        DeviceModelsError: The folder is missing or holds no model (one line naming it).
    """
    if not os.path.isdir(folder):
        raise DeviceModelsError(f"{folder}: no such folder (--device_models)")
    found = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and loader.artifact_kind(path) is not None:
            found[name] = path
    if not found:
        raise DeviceModelsError(
            f"{folder}: no per-device model; expected <device>/ subfolders holding a training "
            "run (model.keras), an export folder or a SavedModel"
        )
    return found


def clip_device(path: str) -> str | None:
    """The device field of a DCASE 2020 / TAU 2022 file name; None for other names."""
    parsed = labels.parse_filename(path)
    return parsed.device if parsed is not None else None


def load_classifiers(folder: str) -> dict:
    """`{device: loader.Classifier}` of every model in `folder`."""
    return {device: loader.load_classifier(path) for device, path in find(folder).items()}


def _settings(path: str) -> tuple[dict, tuple[str, ...], Mapping | None]:
    """`(feature config dict, classes, normalization or None)` stored with a model."""
    kind = loader.artifact_kind(path)
    if kind == "keras":
        info = runs.read_run(path)
        return info.feature_config.to_dict(), tuple(info.classes), info.normalization
    cfg, _ = loader.export_config(path)
    classes = tuple(cfg.get("classes") or labels.classes(cfg["task"]))
    return dict(cfg["feature_config"]), classes, None


def load_predictors(
    folder: str, *, feature_config: Mapping, classes: Sequence[str]
) -> dict[str, tuple[object, Mapping | None]]:
    """`{device: (predictor, normalization or None for raw-feature artifacts)}`.

    Raises:
        DeviceModelsError: A model of other classes or feature settings than the general
            model's (`feature_config`, compared without the representations).
    """
    out = {}
    for device, path in find(folder).items():
        features, own_classes, normalization = _settings(path)
        if tuple(own_classes) != tuple(classes):
            raise DeviceModelsError(
                f"{path}: classes {list(own_classes)} differ from the general model's "
                f"{list(classes)}"
            )
        diff = [
            k
            for k in sorted(set(features) | set(feature_config))
            if k != "representations" and features.get(k) != feature_config.get(k)
        ]
        if diff:
            raise DeviceModelsError(
                f"{path}: feature settings differ from the general model's ({', '.join(diff)})"
            )
        out[device] = (loader.load_predictor(path, name=device), normalization)
    return out


def combine(
    general: np.ndarray, per_device: Mapping[str, np.ndarray], devices: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Each clip's probabilities from its device's model, else from the general model.

    Args:
        general: float32 `[N, C]` of the general model.
        per_device: `{device: float32 [N, C]}` of each device model on the same clips.
        devices: the device of each clip `[N]`.

    Returns:
        `(probs float32 [N, C], model used per clip: device name or GENERAL, [N])`.
    """
    devices = np.asarray([str(d) for d in devices], dtype=object)
    probs = np.array(general, dtype=np.float32, copy=True)
    used = np.full(len(devices), GENERAL, dtype=object)
    for device, p in per_device.items():
        mask = devices == device
        probs[mask] = p[mask]
        used[mask] = device
    return probs, used


def choose(general, classifiers: Mapping, path: str, *, device: str | None = None):
    """`(device or None, model name, classifier)` for one audio file: its device's classifier
    when `classifiers` has one, else `general`; the device is `device` when given, else read
    from the file name (`clip_device`)."""
    device = device or clip_device(path)
    if device in classifiers:
        return device, device, classifiers[device]
    return device, GENERAL, general


def format_choices(rows: Sequence, classes: Sequence[str]) -> str:
    """predict.py's per-device table: `rows` of `(path, device, model, Prediction)`."""
    width = max([len("file"), *(len(r[0]) for r in rows)])
    col = max(8, *(len(c) for c in classes))
    lines = [
        f"{'file':{width}s}  {'device':7s} {'model':8s} {'scene':{col}s}  "
        + "  ".join(f"{c:>{col}s}" for c in classes)
    ]
    for path, device, model, p in rows:
        lines.append(
            f"{path:{width}s}  {device or '?':7s} {model:8s} {p.scene:{col}s}  "
            + "  ".join(f"{v:>{col}.4f}" for v in p.probs)
        )
    return "\n".join(lines)
