"""Export a training run: SavedModel, TFLite float32 and int8, audio-in models; check; report.

`run(export_cfg, *, data_cfg=None, features_dir=None)` is what `export.py` does:

1. Refuse an existing, non-empty `export_dir` unless `overwrite`.
2. Load the run (`serving.load_run`); measure the model (`asc_keras.models.size`); a 1B model
   over its task's complexity rule (DCASE 2020 1B: 500 KB; TAU 2022: 128 kB int8, 30 M MACs)
   stops here with `SizeRuleError` (nothing is written).
3. Find the run's precomputed features (`--features_dir` holding a manifest, else
   `precompute.ensure_features` for `--data_dir`, else the folder recorded in config.json) and
   draw the int8 calibration sample (training split, seeded, class-stratified:
   `calibration.sample_split`) and the parity sample (evaluate split when precomputed).
4. Write into a staging folder `<export_dir>.partial-<pid>` (`write_artifacts`):

       saved_model/          serving_default: {rep: float32 [batch, T, F]} RAW features -> outputs
       model.tflite          the same signature, float32
       model_int8.tflite     the same signature: raw float32 features in, normalized in float,
                             then the int8 network and int8 outputs (`tflite.convert_int8`)
       audio_saved_model/    (models whose one input is logmel) waveform [batch, num_samples]
       model_audio.tflite    the same, float32 (when it converts)
       export_config.json    task, classes, feature/model settings, normalization, artifacts
       export_report.json    sizes and every check

5. Check every artifact against the trained Keras model fed the pipeline's normalized features,
   output by output (`verify`); TFLite files in both LiteRT and TensorFlow's interpreter, and
   the two runtimes against each other. Audio-in models are checked against the Keras model on
   `compute_features` (librosa) features of the same waveforms.
6. Print the report. All passed: the staging folder becomes `export_dir` (an old one is
   replaced only with `overwrite`). Any check failed: it becomes `<export_dir>.rejected` and
   `ParityError` is raised, so `export_dir` only ever holds verified exports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from asc_keras import oom
from asc_keras.config import DataConfig, ExportConfig, FeatureConfig
from asc_keras.data.manifest import MANIFEST_NAME, Manifest, load_manifest, write_json_atomic
from asc_keras.errors import AscError
from asc_keras.export import calibration as calibration_lib
from asc_keras.export import report as report_lib
from asc_keras.export import savedmodel, serving, tflite, verify
from asc_keras.models.rules import check_size_rule, size_summary

SAVED_MODEL = "saved_model"
TFLITE = "model.tflite"
TFLITE_INT8 = "model_int8.tflite"
AUDIO_SAVED_MODEL = "audio_saved_model"
AUDIO_TFLITE = "model_audio.tflite"
EXPORT_CONFIG_NAME = "export_config.json"
# The rewritten network the TFLite converter reads, beside each SavedModel while converting.
CONVERTER_SOURCE_SUFFIX = ".tflite_source"
FORMAT_VERSION = 1


class ExportError(AscError, RuntimeError):
    """An export that cannot be made or did not pass its checks; one line naming the cause."""


class OverwriteError(ExportError):
    """The export folder exists and `overwrite` was not given."""


class SizeRuleError(ExportError):
    """A 1B model over the DCASE 2020 500 KB rule."""


class ParityError(ExportError):
    """An artifact whose outputs differ from the Keras model beyond the tolerance."""


@dataclasses.dataclass(frozen=True)
class Tolerances:
    """Largest allowed absolute output differences from the Keras model."""

    floating: float = 1e-5  # SavedModel, float TFLite
    int8: float = 0.1  # int8 TFLite
    audio: float = 1e-3  # audio-in models, against Keras on librosa features


def _remove_tree(path: str) -> None:
    """Remove a folder of ours if it is there (a leftover of an interrupted export)."""
    if os.path.isdir(path):
        shutil.rmtree(path)


def _write(path: str, content: bytes) -> None:
    with open(path, "wb") as f:
        f.write(content)


def _io_dtypes(path: str) -> dict:
    """`{'input_dtype', 'output_dtype'}` of a `.tflite` file (the int8 file reads float32
    features and writes int8 outputs); empty for other artifacts."""
    if not path.endswith(".tflite"):
        return {}
    ins, outs = verify.tflite_io(path)
    return {
        f"{side}_dtype": "/".join(sorted({np.dtype(d["dtype"]).name for d in details.values()}))
        for side, details in (("input", ins), ("output", outs))
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


# ---------------------------------------------------------------------------------------------
# Writing artifacts.


@contextlib.contextmanager
def _converter_source(
    saved_model: str, make_model: Callable[[], object], *, rewrite: bool, name: str
):
    """The SavedModel folder the TFLite converter reads for `name`: `saved_model` itself
    without `rewrite`, else a temporary SavedModel of `make_model()` beside it (removed after).

    Raises:
        ExportError: The rewritten model could not be written.
    """
    if not rewrite:
        yield saved_model
        return
    source = f"{saved_model}{CONVERTER_SOURCE_SUFFIX}"
    _remove_tree(source)
    try:
        try:
            savedmodel.export_saved_model(make_model(), source)
        except Exception as exc:  # as in `add`: Keras and TensorFlow raise many kinds
            raise ExportError(f"{name}: {_first_line(exc)}") from exc
        yield source
    finally:
        _remove_tree(source)


def write_artifacts(
    model,
    normalization: Mapping,
    folder: str,
    *,
    feature_cfg: FeatureConfig,
    calibration: calibration_lib.Examples | None,
    audio: bool = True,
    rewrite: bool = True,
    log: Callable[[str], None] = print,
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
        log: Progress lines.

    Returns:
        One entry per artifact: `{'name', 'input' ('features' | 'waveform'), 'dtype',
        'bytes', 'status' ('ok' | 'not converted'), 'error'}`.

    Raises:
        ExportError: The SavedModel or a features-in TFLite model could not be written.
    """
    entries = []

    def add(name, kind, dtype, make, *, required):
        path = os.path.join(folder, name)
        t0 = time.time()
        try:
            make(path)
        except Exception as exc:  # converter errors share no base class narrower than this
            if required:
                raise ExportError(f"{name}: {_first_line(exc)}") from exc
            entries.append(
                {
                    "name": name,
                    "input": kind,
                    "dtype": dtype,
                    "bytes": None,
                    "status": "not converted",
                    "error": _first_line(exc),
                }
            )
            log(f"export: {name} did not convert: {_first_line(exc)}")
            return
        entries.append(
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
        log(
            f"export: {name} ({report_lib.human_bytes(entries[-1]['bytes'])}, "
            f"{time.time() - t0:.1f} s)"
        )

    # TensorFlow runs the SavedModels: the network as trained. The TFLite converter reads a
    # second, temporary SavedModel of the rewritten network (`rewrite.for_tflite`), whose ops
    # (a depthwise convolution of unequal strides) TensorFlow's own kernels do not all run.
    features_model = serving.feature_serving_model(model, normalization)
    sm_dir = os.path.join(folder, SAVED_MODEL)
    add(
        SAVED_MODEL,
        "features",
        "float32",
        lambda p: savedmodel.export_saved_model(features_model, p),
        required=True,
    )
    with _converter_source(
        sm_dir,
        lambda: serving.feature_serving_model(model, normalization, rewrite=True),
        rewrite=rewrite,
        name=TFLITE,
    ) as source:
        add(
            TFLITE,
            "features",
            "float32",
            lambda p: _write(p, tflite.convert_float(source)),
            required=True,
        )
        if calibration is not None:
            add(
                TFLITE_INT8,
                "features",
                "int8",
                lambda p: _write(
                    p, tflite.convert_int8(source, lambda: calibration.batches(batch_size=1))
                ),
                required=True,
            )
    if audio and serving.supports_audio(model, feature_cfg):
        audio_model = serving.audio_serving_model(model, feature_cfg, normalization)
        audio_dir = os.path.join(folder, AUDIO_SAVED_MODEL)
        add(
            AUDIO_SAVED_MODEL,
            "waveform",
            "float32",
            lambda p: savedmodel.export_saved_model(audio_model, p),
            required=False,
        )
        if os.path.isdir(audio_dir):

            def audio_tflite(path):
                with _converter_source(
                    audio_dir,
                    lambda: serving.audio_serving_model(
                        model, feature_cfg, normalization, rewrite=True
                    ),
                    rewrite=rewrite,
                    name=AUDIO_TFLITE,
                ) as source:
                    _write(path, tflite.convert_float(source))

            add(AUDIO_TFLITE, "waveform", "float32", audio_tflite, required=False)
    return entries


# ---------------------------------------------------------------------------------------------
# Checking artifacts.


def normalized(features: Mapping[str, np.ndarray], normalization: Mapping) -> dict:
    """Raw `{rep: [N, T, F]}` normalized as the training input pipeline does it."""
    out = {}
    for rep, x in features.items():
        mean, std = serving.normalization_arrays(normalization, rep)
        out[rep] = (np.asarray(x, np.float32) - mean) / std
    return out


def _tflite_checks(
    path: str, name: str, inputs: Mapping, reference: Mapping, *, tolerance: float
) -> tuple[list[verify.Parity], dict]:
    """An artifact in both runtimes against the reference, and the runtimes against each other;
    also returns LiteRT's outputs."""
    outs = {rt: verify.tflite_outputs(path, inputs, runtime=rt) for rt in verify.RUNTIMES}
    checks = [
        verify.compare(reference, outs[rt], tolerance=tolerance, artifact=f"{name} {rt}")
        for rt in verify.RUNTIMES
    ]
    _, out_details = verify.tflite_io(path)
    steps = [
        float(d["quantization"][0])
        for d in out_details.values()
        if np.issubdtype(np.dtype(d["dtype"]), np.integer)
    ]
    # Float files: the float tolerance, at most 1e-5 (the audio-in model's FFT differs by about
    # 1e-6 between the two runtimes); integer outputs: one quantization step.
    same = max([min(tolerance, 1e-5), *steps])
    checks.append(
        verify.compare(
            outs["litert"],
            outs["tensorflow"],
            tolerance=same,
            artifact=f"{name} tensorflow",
            reference_name="litert",
        )
    )
    return checks, outs["litert"]


def check_artifacts(
    entries: list[dict],
    folder: str,
    model,
    normalization: Mapping,
    *,
    examples: calibration_lib.Examples,
    waves: np.ndarray | None,
    feature_cfg: FeatureConfig,
    tolerances: Tolerances,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Add `parity` to every entry; returns the failures (empty when all passed).

    Args:
        entries: From `write_artifacts`.
        folder: Where they are.
        model: The trained Keras model (the reference, on normalized features).
        normalization: The training statistics.
        examples: Raw features of the parity clips.
        waves: float32 `[N, num_samples]` waveforms for audio-in artifacts (None: skip them).
        feature_cfg: Turns `waves` into reference features with `compute_features`.
        tolerances: Largest allowed output differences.
        log: Progress lines.
    """
    reference = verify.keras_outputs(model, normalized(examples.features, normalization))
    audio_reference = None
    if waves is not None and any(e["input"] == "waveform" for e in entries):
        from asc_keras.features import compute_features

        logmel_cfg = dataclasses.replace(feature_cfg, representations=("logmel",))
        logmel = np.stack([compute_features(w, logmel_cfg)["logmel"] for w in waves])
        audio_reference = verify.keras_outputs(model, normalized({"logmel": logmel}, normalization))
    failures = []
    for entry in entries:
        path = os.path.join(folder, entry["name"])
        checks: list[verify.Parity] = []
        if entry["status"] != "ok":
            entry["parity"] = []
            continue
        if entry["input"] == "waveform":
            if audio_reference is None:
                entry["parity"] = []
                continue
            inputs, ref, tol = {serving.WAVEFORM: waves}, audio_reference, tolerances.audio
        else:
            inputs, ref = examples.features, reference
            tol = tolerances.int8 if entry["dtype"] == "int8" else tolerances.floating
        if entry["name"].endswith(".tflite"):
            checks, outs = _tflite_checks(path, entry["name"], inputs, ref, tolerance=tol)
            if entry["dtype"] == "int8" and examples.devices and "probs" in ref:
                entry["per_device"] = verify.agreement_by_device(ref, outs, examples.devices)
        else:
            outs = verify.saved_model_outputs(path, inputs)
            checks = [
                verify.compare(ref, outs, tolerance=tol, artifact=f"{entry['name']} tensorflow")
            ]
        entry["parity"] = [c.to_dict() for c in checks]
        for c in checks:
            if not c.passed:
                failures.append(
                    f"{c.artifact} vs {c.reference}: max |diff| "
                    f"{c.max_abs_diff:.3g} > {c.tolerance:g}"
                    + (f", missing outputs {list(c.missing)}" if c.missing else "")
                )
        log(
            f"check: {entry['name']}: max |diff| "
            f"{max(c.max_abs_diff for c in checks[:2]):.2g} vs keras"
        )
    return failures


# ---------------------------------------------------------------------------------------------
# Data for calibration and checks.


def find_features(
    run: serving.TrainedRun,
    *,
    data_cfg: DataConfig | None,
    features_dir: str | None,
    log: Callable[[str], None] = print,
) -> Manifest | None:
    """The run's precomputed features (see the module docstring), or None when there are none.

    Raises:
        ManifestError: The features found do not match the run.
    """
    folder = None
    if features_dir and os.path.exists(os.path.join(features_dir, MANIFEST_NAME)):
        folder = features_dir
    elif data_cfg is not None and data_cfg.data_dir:
        from asc_keras.data import precompute

        data_cfg = dataclasses.replace(data_cfg, task=run.task, classes=tuple(run.classes))
        folder = precompute.ensure_features(
            run.feature_config, data_cfg, splits=("train",), progress=False, log=log
        )
    elif run.features and os.path.exists(os.path.join(run.features, MANIFEST_NAME)):
        folder = run.features
    if folder is None:
        return None
    manifest = load_manifest(folder)
    manifest.check_compatible(run.feature_config, run.task, representations=run.input_names)
    return manifest


def parity_waves(
    manifest: Manifest | None,
    filenames: Sequence[str],
    feature_cfg: FeatureConfig,
    *,
    n: int,
    seed: int,
) -> tuple[np.ndarray, str]:
    """`(waves float32 [n', num_samples], source)`: the parity clips' audio when the dataset is
    at hand (`load_clip`, as `predict.py` reads audio), else seeded synthetic scenes."""
    from asc_keras import audio

    data_dir = (manifest.dataset or {}).get("data_dir", "") if manifest is not None else ""
    paths = [os.path.join(data_dir, f) for f in filenames[:n]] if data_dir else []
    if paths and all(os.path.exists(p) for p in paths):
        return np.stack([audio.load_clip(p, feature_cfg) for p in paths]), data_dir
    rng = np.random.default_rng(seed)
    t = np.arange(feature_cfg.num_samples) / feature_cfg.sample_rate
    waves = []
    for _ in range(n):
        f0, f1 = rng.uniform(100, 4000, size=2)
        wave = (
            0.05 * rng.standard_normal(len(t))
            + 0.2 * np.sin(2 * np.pi * f0 * t)
            + 0.1 * np.sin(2 * np.pi * (f1 * t + 300 * t**2))
        )
        waves.append(wave * rng.uniform(0.1, 1.0))
    return np.asarray(waves, np.float32), "synthetic"


# ---------------------------------------------------------------------------------------------
# The whole export.


def _check_destination(export_dir: str, *, overwrite: bool) -> None:
    if os.path.isfile(export_dir):
        raise OverwriteError(f"{export_dir}: is a file, not an export folder")
    if os.path.isdir(export_dir) and os.listdir(export_dir) and not overwrite:
        raise OverwriteError(
            f"{export_dir}: already holds an export; pass --overwrite to replace it"
        )


def _publish(staging: str, export_dir: str) -> None:
    if os.path.exists(export_dir):
        old = f"{export_dir}.old-{os.getpid()}"
        os.rename(export_dir, old)
        os.rename(staging, export_dir)
        shutil.rmtree(old)
    else:
        os.rename(staging, export_dir)


def export_config_record(
    run: serving.TrainedRun, entries: Sequence[Mapping], output_shapes: Mapping[str, Sequence[int]]
) -> dict:
    """The content of export_config.json: everything `predict.py` needs next to an artifact."""
    model = run.model
    return {
        "format_version": FORMAT_VERSION,
        "task": run.task,
        "classes": list(run.classes),
        "feature_config": run.feature_config.to_dict(),
        "model_config": dict(run.model_config),
        "model_name": model.name,
        "source_model_dir": os.path.abspath(run.path),
        "signature": savedmodel.SIGNATURE,
        "inputs": {t.name: list(t.shape[1:]) for t in model.inputs},
        "outputs": {n: list(output_shapes[n]) for n in serving.output_names(model)},
        "normalization": {
            r: {
                k: v.astype(np.float64).tolist()
                for k, v in zip(
                    ("mean", "std"), serving.normalization_arrays(run.normalization, r), strict=True
                )
            }
            for r in run.input_names
        },
        "artifacts": {
            e["name"]: {
                k: e[k] for k in ("input", "dtype", "input_dtype", "output_dtype") if k in e
            }
            for e in entries
            if e["status"] == "ok"
        },
    }


def run(
    cfg: ExportConfig,
    *,
    data_cfg: DataConfig | None = None,
    features_dir: str | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Export, check and report one training run (see the module docstring).

    Args:
        cfg: What to export and the tolerances.
        data_cfg: The dataset, to find or compute the run's features (optional).
        features_dir: A features folder holding `manifest.json` (optional; wins over data_cfg).
        log: Progress lines and the report table.

    Returns:
        The report (also in `<export_dir>/export_report.json`).

    Raises:
        OverwriteError, SizeRuleError, ParityError, ExportError: see the module docstring.
        OutOfMemoryError: memory ran out (one line saying which flag to lower).
        FileNotFoundError, ValueError, ManifestError: a broken run or features folder.
    """
    lower = (
        f"--calibration_examples (now {cfg.calibration_examples}) or --parity_examples "
        f"(now {cfg.parity_examples})"
    )
    with oom.reported("export", lower):
        return _run(cfg, data_cfg=data_cfg, features_dir=features_dir, log=log)


def _run(
    cfg: ExportConfig,
    *,
    data_cfg: DataConfig | None,
    features_dir: str | None,
    log: Callable[[str], None],
) -> dict:
    t_start = time.time()
    export_dir = os.path.normpath(cfg.export_dir)
    _check_destination(export_dir, overwrite=cfg.overwrite)
    trained = serving.load_run(cfg.model_dir)
    model = trained.model
    size = size_summary(model, trained.task)
    check_size_rule(size, model_dir=cfg.model_dir, error=SizeRuleError)

    manifest = find_features(trained, data_cfg=data_cfg, features_dir=features_dir, log=log)
    reps = trained.input_names
    calib = None
    if cfg.int8:
        if manifest is None:
            raise ExportError(
                f"{cfg.model_dir}: int8 calibration needs the training split's features; pass "
                "--data_dir (or --features_dir), or --noexport_int8"
            )
        calib = calibration_lib.sample_split(
            manifest,
            "train",
            cfg.calibration_examples,
            seed=cfg.calibration_seed,
            representations=reps,
        )
    if manifest is not None:
        split = "evaluate" if "evaluate" in manifest.splits else "train"
        examples = calibration_lib.sample_split(
            manifest,
            split,
            cfg.parity_examples,
            seed=cfg.calibration_seed + 1,
            representations=reps,
        )
    else:
        examples = calibration_lib.synthetic_examples(
            {r: trained.feature_config.shapes[r] for r in reps},
            trained.normalization,
            cfg.parity_examples,
            seed=cfg.calibration_seed + 1,
        )

    staging = f"{export_dir}.partial-{os.getpid()}"
    _remove_tree(staging)
    os.makedirs(staging)
    try:
        entries = write_artifacts(
            model,
            trained.normalization,
            staging,
            feature_cfg=trained.feature_config,
            calibration=calib,
            audio=cfg.audio_frontend,
            log=log,
        )
        one = normalized({r: v[:1] for r, v in examples.features.items()}, trained.normalization)
        shapes = {k: v.shape[1:] for k, v in verify.keras_outputs(model, one).items()}
        write_json_atomic(
            os.path.join(staging, EXPORT_CONFIG_NAME),
            export_config_record(trained, entries, shapes),
        )
        waves, audio_source = None, None
        if any(e["input"] == "waveform" and e["status"] == "ok" for e in entries):
            waves, audio_source = parity_waves(
                manifest,
                examples.filenames,
                trained.feature_config,
                n=min(len(examples), 4),
                seed=cfg.calibration_seed + 2,
            )
        tolerances = Tolerances(
            floating=cfg.float_tolerance, int8=cfg.int8_tolerance, audio=cfg.audio_tolerance
        )
        failures = check_artifacts(
            entries,
            staging,
            model,
            trained.normalization,
            examples=examples,
            waves=waves,
            feature_cfg=trained.feature_config,
            tolerances=tolerances,
            log=log,
        )
        report = {
            "format_version": FORMAT_VERSION,
            "model_dir": os.path.abspath(cfg.model_dir),
            "export_dir": os.path.abspath(export_dir),
            "task": trained.task,
            "model_name": model.name,
            "size": size,
            "artifacts": entries,
            "calibration": None
            if calib is None
            else {
                "split": calib.split,
                "num_examples": len(calib),
                "seed": cfg.calibration_seed,
                "class_counts": {
                    trained.classes[k] if k >= 0 else "unlabeled": c
                    for k, c in calib.class_counts().items()
                },
                "device_counts": calib.device_counts(),
            },
            "parity_data": {
                "split": examples.split,
                "num_examples": len(examples),
                "audio": audio_source,
            },
            "settings": cfg.to_dict(),
            "passed": not failures,
            "failures": failures,
            "seconds": round(time.time() - t_start, 1),
        }
        report_lib.write_report(staging, report)
        log(report_lib.format_report(report))
        if failures:
            rejected = f"{export_dir}.rejected"
            _remove_tree(rejected)
            os.rename(staging, rejected)
            raise ParityError(
                f"{len(failures)} check(s) failed; the artifacts are in "
                f"{rejected}, {export_dir} was not changed: {failures[0]}"
            )
        _publish(staging, export_dir)
    finally:
        _remove_tree(staging)
    return report
