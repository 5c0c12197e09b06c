"""The export's files: the features-in SavedModel and TFLite float32 / int8 models (and with
`float16` a TFLite model of float16 weights, `model_float16.tflite`), and the waveform-in
SavedModel and TFLite model of a model that reads only `logmel`.

`write_artifacts(model, normalization, folder, ...)` writes them and returns one entry per file
(name, input, dtype, bytes, status, timing, TFLite input/output dtypes). TensorFlow runs the
SavedModels: the network as trained. The TFLite converter reads a second, temporary SavedModel of
the rewritten network (`rewrite.for_tflite`, named `<saved_model>` + `CONVERTER_SOURCE_SUFFIX`,
removed after), whose ops (a depthwise convolution of unequal strides) TensorFlow's own kernels
do not all run.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from asc_keras.config import FeatureConfig
from asc_keras.export import calibration as calibration_lib
from asc_keras.export import report as report_lib
from asc_keras.export import savedmodel, serving, tflite
from asc_keras.export.errors import ExportError
from asc_keras.export.staging import remove_tree
from asc_keras.inference.loader import DEFAULT_ARTIFACT, FLOAT16_ARTIFACT, SAVED_MODEL_DIR
from asc_keras.inference.tflite_runner import tflite_io

SAVED_MODEL = SAVED_MODEL_DIR  # the names predict.py and evaluate.py look for
TFLITE = DEFAULT_ARTIFACT
TFLITE_INT8 = "model_int8.tflite"
TFLITE_FLOAT16 = FLOAT16_ARTIFACT
AUDIO_SAVED_MODEL = "audio_saved_model"
AUDIO_TFLITE = "model_audio.tflite"
# The rewritten network the TFLite converter reads, beside each SavedModel while converting.
CONVERTER_SOURCE_SUFFIX = ".tflite_source"


def first_line(exc: BaseException) -> str:
    """`'<type>: <first line of the message>'`, at most 300 characters."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _write(path: str, content: bytes) -> None:
    with open(path, "wb") as f:
        f.write(content)


def _io_dtypes(path: str) -> dict:
    """`{'input_dtype', 'output_dtype'}` of a `.tflite` file (the int8 file reads float32
    features and writes int8 outputs); empty for other artifacts."""
    if not path.endswith(".tflite"):
        return {}
    ins, outs = tflite_io(path)
    return {
        f"{side}_dtype": "/".join(sorted({np.dtype(d["dtype"]).name for d in details.values()}))
        for side, details in (("input", ins), ("output", outs))
    }


@contextlib.contextmanager
def _converter_source(
    saved_model: str, make_model: Callable[[], object], *, rewrite: bool, name: str
) -> Iterator[str]:
    """The SavedModel folder the TFLite converter reads for `name`: `saved_model` itself
    without `rewrite`, else a temporary SavedModel of `make_model()` beside it (removed after).

    Raises:
        ExportError: The rewritten model could not be written.
    """
    if not rewrite:
        yield saved_model
        return
    source = f"{saved_model}{CONVERTER_SOURCE_SUFFIX}"
    remove_tree(source)
    try:
        try:
            savedmodel.export_saved_model(make_model(), source)
        except Exception as exc:  # as in `add`: Keras and TensorFlow raise many kinds
            raise ExportError(f"{name}: {first_line(exc)}") from exc
        yield source
    finally:
        remove_tree(source)


class _Entries:
    """Writes artifacts into a folder, one entry each, logging a line per artifact."""

    def __init__(self, folder: str, log: Callable[[str], None]):
        self.folder, self.log = folder, log
        self.entries: list[dict] = []

    def add(self, name: str, kind: str, dtype: str, make: Callable[[str], None], *, required):
        """`make(path)` writes artifact `name`; its failure raises `ExportError` when
        `required`, else it is recorded as 'not converted'."""
        path = os.path.join(self.folder, name)
        t0 = time.time()
        try:
            make(path)
        except Exception as exc:  # converter errors share no base class narrower than this
            if required:
                raise ExportError(f"{name}: {first_line(exc)}") from exc
            self.entries.append(
                {
                    "name": name,
                    "input": kind,
                    "dtype": dtype,
                    "bytes": None,
                    "status": "not converted",
                    "error": first_line(exc),
                }
            )
            self.log(f"export: {name} did not convert: {first_line(exc)}")
            return
        self.entries.append(
            {
                "name": name,
                "input": kind,
                "dtype": dtype,
                "bytes": report_lib.file_bytes(path),
                "status": "ok",
                "error": None,
                "seconds": round(time.time() - t0, 2),
                **_io_dtypes(path),
            }
        )
        self.log(
            f"export: {name} ({report_lib.human_bytes(self.entries[-1]['bytes'])}, "
            f"{time.time() - t0:.1f} s)"
        )


def write_artifacts(
    model,
    normalization: Mapping,
    folder: str,
    *,
    feature_cfg: FeatureConfig,
    calibration: calibration_lib.Examples | None,
    audio: bool = True,
    rewrite: bool = True,
    float16: bool = False,
    log: Callable[[str], None] = print,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> list[dict]:
    """Write the serving models of `model` into `folder`.

    Args:
        model: The trained Keras model (normalized features in).
        normalization: `{rep: {'mean': [F], 'std': [F]}}` of the training split.
        folder: An existing, empty folder.
        feature_cfg: The run's feature settings (for the audio frontend).
        calibration: Raw training features that calibrate the int8 model; None: no int8 model.
        audio: Also export waveform-in models when the model reads only `logmel`.
        rewrite: Export the network as `rewrite.for_tflite` makes it (False: as trained; the
            benchmark's baseline).
        float16: Also write `model_float16.tflite` (float16 weights, `tflite.convert_float16`).
        log: Progress lines.
        ranges: Activation ranges the int8 file takes instead of calibrated ones (a QAT
            run's, `asc_keras.quantize`); None: calibrated.

    Returns:
        One entry per artifact: `{'name', 'input' ('features' | 'waveform'), 'dtype',
        'bytes', 'status' ('ok' | 'not converted'), 'error'}`.

    Raises:
        ExportError: The SavedModel or a features-in TFLite model could not be written.
    """
    out = _Entries(folder, log)
    _write_features_in(
        out,
        model,
        normalization,
        calibration=calibration,
        rewrite=rewrite,
        float16=float16,
        ranges=ranges,
    )
    if audio and serving.supports_audio(model, feature_cfg):
        _write_waveform_in(out, model, normalization, feature_cfg, rewrite=rewrite)
    return out.entries


def _write_features_in(
    out: _Entries,
    model,
    normalization: Mapping,
    *,
    calibration: calibration_lib.Examples | None,
    rewrite: bool,
    float16: bool = False,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> None:
    """The raw-features-in SavedModel, float32 TFLite, (with `calibration`) int8 TFLite and
    (with `float16`) float16-weights TFLite."""
    features_model = serving.feature_serving_model(model, normalization)
    out.add(
        SAVED_MODEL,
        "features",
        "float32",
        lambda p: savedmodel.export_saved_model(features_model, p),
        required=True,
    )
    with _converter_source(
        os.path.join(out.folder, SAVED_MODEL),
        lambda: serving.feature_serving_model(model, normalization, rewrite=True),
        rewrite=rewrite,
        name=TFLITE,
    ) as source:
        out.add(
            TFLITE,
            "features",
            "float32",
            lambda p: _write(p, tflite.convert_float(source)),
            required=True,
        )
        if calibration is not None:
            out.add(
                TFLITE_INT8,
                "features",
                "int8",
                lambda p: _write(
                    p,
                    tflite.convert_int8(
                        source, lambda: calibration.batches(batch_size=1), ranges=ranges
                    ),
                ),
                required=True,
            )
        if float16:
            out.add(
                TFLITE_FLOAT16,
                "features",
                "float16",
                lambda p: _write(p, tflite.convert_float16(source)),
                required=True,
            )


def _write_waveform_in(
    out: _Entries, model, normalization: Mapping, feature_cfg: FeatureConfig, *, rewrite: bool
) -> None:
    """The waveform-in SavedModel and float32 TFLite model; either may fail ('not converted')."""
    audio_model = serving.audio_serving_model(model, feature_cfg, normalization)
    audio_dir = os.path.join(out.folder, AUDIO_SAVED_MODEL)
    out.add(
        AUDIO_SAVED_MODEL,
        "waveform",
        "float32",
        lambda p: savedmodel.export_saved_model(audio_model, p),
        required=False,
    )
    if not os.path.isdir(audio_dir):
        return

    def audio_tflite(path):
        with _converter_source(
            audio_dir,
            lambda: serving.audio_serving_model(model, feature_cfg, normalization, rewrite=True),
            rewrite=rewrite,
            name=AUDIO_TFLITE,
        ) as source:
            _write(path, tflite.convert_float(source))

    out.add(AUDIO_TFLITE, "waveform", "float32", audio_tflite, required=False)
