"""Evaluation: fusion, submission files, figures, reports, predictors and evaluate.py end to end.

The predictor tests build a tiny functional Keras model (named inputs, `probs` output), save it
as `.keras`, export it with normalization inside to a SavedModel (`serving_default`, named
inputs) and to float and int8 TFLite, and check that every predictor gives the same
probabilities. The end-to-end test evaluates hand-made model_dirs on a six-clip dataset.
"""

import json
import os
import warnings

import numpy as np
import pytest

from asc_keras import labels
from asc_keras.config import DataConfig, EvalConfig, FeatureConfig, ModelConfig
from asc_keras.evaluation import ensemble, metrics, plots, report, submission

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# Pure numpy parts.


def test_fuse_probs_is_mean():
    a = np.array([[0.2, 0.8], [0.6, 0.4]])
    b = np.array([[0.4, 0.6], [0.0, 1.0]])
    np.testing.assert_allclose(ensemble.fuse_probs([a, b]), [[0.3, 0.7], [0.3, 0.7]], atol=1e-7)
    np.testing.assert_allclose(ensemble.fuse_probs([a]), a, atol=1e-7)
    np.testing.assert_allclose(
        ensemble.fuse_probs([a, b], weights=[3, 1]), 0.75 * a + 0.25 * b, atol=1e-7
    )
    with pytest.raises(ValueError, match="different shapes"):
        ensemble.fuse_probs([a, b[:1]])
    with pytest.raises(ValueError, match="nothing"):
        ensemble.fuse_probs([])


def test_submission_format(tmp_path):
    classes = labels.classes("1b")
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [1e-9, 0.0, 1.0 - 1e-9]])
    files = ["audio/0.wav", "audio/1.wav", "audio/2.wav"]
    path = submission.write_submission(str(tmp_path / "sub" / "out.csv"), files, probs, classes)
    lines = open(path).read().splitlines()
    assert lines[0] == "filename\tscene_label\tindoor\toutdoor\ttransportation"
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[:2] for r in rows] == [
        ["0.wav", "outdoor"],
        ["1.wav", "indoor"],
        ["2.wav", "transportation"],
    ]
    assert all(len(r) == 5 for r in rows)
    names, scene, back, cls = submission.read_submission(path)
    assert names == ["0.wav", "1.wav", "2.wav"] and cls == list(classes)
    assert scene == ["outdoor", "indoor", "transportation"]
    np.testing.assert_allclose(back, probs, rtol=1e-7, atol=1e-12)
    kept = submission.write_submission(
        str(tmp_path / "k.csv"), files, probs, classes, keep_dirs=True
    )
    assert open(kept).read().splitlines()[1].startswith("audio/0.wav\toutdoor\t")
    with pytest.raises(ValueError, match="do not match"):
        submission.write_submission(str(tmp_path / "x.csv"), files[:2], probs, classes)


def _hand_metrics():
    y = np.array([0, 1, 2, 2, 1, 0])
    p = np.eye(3)[[0, 1, 2, 0, 1, 1]] * 0.8 + 0.2 / 3
    devices = ["a", "b", "a", "s1", "a", "c"]
    return y, p, devices


def test_plots_are_png(tmp_path):
    y, p, devices = _hand_metrics()
    m = metrics.compute_metrics(y, p, devices, labels.classes("1b"))["all"]
    cm = plots.confusion_png(m["confusion_matrix"], labels.classes("1b"), title="t")
    dev = plots.devices_png(m["device_wise"], title="t")
    for data in (cm, dev):
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    path = plots.write_png(str(tmp_path / "x" / "c.png"), cm)
    assert open(path, "rb").read() == cm
    with pytest.raises(ValueError, match="does not match"):
        plots.confusion_png(m["confusion_matrix"], ["one", "two"])


def test_write_report(tmp_path):
    classes = labels.classes("1b")
    y, p, devices = _hand_metrics()
    m = metrics.compute_metrics(y, p, devices, classes, device_order=labels.devices("1a"))
    meta = {
        "label": y,
        "filename": np.array([f"audio/{i}.wav" for i in range(6)], object),
        "device": np.array(devices, object),
    }
    printed = []
    table = report.write_report(
        str(tmp_path),
        m,
        classes,
        probs=p,
        meta=meta,
        extra={"split": "evaluate"},
        title="hand",
        print_fn=printed.append,
    )
    assert printed == [table]
    for name in ("indoor", "outdoor", "transportation", "device a"):
        assert name in table
    # Every figure is labelled by what it is: macro (DCASE) and micro accuracy on separate rows.
    rows = {line[:30].strip(): line[30:].split() for line in table.splitlines()}
    assert float(rows["DCASE: macro acc, log loss"][0]) == pytest.approx(
        100 * m["all"]["accuracy"], abs=0.01
    )
    assert float(rows["DCASE: macro acc, log loss"][1]) == pytest.approx(
        m["all"]["log_loss"], abs=1e-3
    )
    assert float(rows["micro acc (of clips)"][0]) == pytest.approx(
        100 * m["all"]["micro_accuracy"], abs=0.01
    )
    assert rows["micro acc (of clips)"][1] == "-"
    assert rows["class-mean log loss"][0] == "-"
    assert "per device (micro accuracy)" in table
    saved = json.load(open(tmp_path / "metrics.json"))
    assert saved["classes"] == list(classes) and saved["split"] == "evaluate"
    assert saved["all"]["accuracy"] == pytest.approx(m["all"]["accuracy"])
    assert saved["device_a"]["num_examples"] == 3
    for png in ("confusion.png", "confusion_device_a.png", "devices.png"):
        assert open(tmp_path / png, "rb").read(8) == PNG_SIGNATURE
    rows = open(tmp_path / "predictions.tsv").read().splitlines()
    assert rows[0].split("\t") == ["filename", "label", "device", "scene_label", *classes]
    assert rows[4].split("\t")[:4] == ["audio/3.wav", "transportation", "s1", "indoor"]
    assert open(tmp_path / "report.txt").read().strip() == table.strip()


# ---------------------------------------------------------------------------------------------
# Predictors over a tiny model and its exports.

T, F_LOGMEL, F_CQT = 12, 5, 7
NORM = {
    "logmel": {
        "mean": np.linspace(-3, 3, F_LOGMEL).astype(np.float32),
        "std": np.linspace(1, 4, F_LOGMEL).astype(np.float32),
    },
    "cqt": {
        "mean": np.linspace(5, 1, F_CQT).astype(np.float32),
        "std": np.linspace(2, 0.5, F_CQT).astype(np.float32),
    },
}


def tiny_model(input_bins, num_classes, *, seed=0):
    """A functional model with one named input per representation and a `probs` output."""
    import keras

    inputs = {name: keras.Input(tuple(bins), name=name) for name, bins in input_bins.items()}
    pooled = [keras.layers.GlobalAveragePooling1D(name=f"{n}_pool")(x) for n, x in inputs.items()]
    x = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="concat")(pooled)
    init = keras.initializers.RandomNormal(stddev=1.0, seed=seed)
    logits = keras.layers.Dense(
        num_classes,
        kernel_initializer=init,
        bias_initializer=keras.initializers.RandomNormal(seed=seed + 1),
        name="logits",
    )(x)
    probs = keras.layers.Softmax(name="probs")(logits)
    return keras.Model(inputs, {"probs": probs, "logits": logits})


def export_artifacts(model, normalization, out_dir, *, int8_samples=None):
    """SavedModel + float (and optionally int8) TFLite with normalization inside; raw inputs."""
    import keras
    import tensorflow as tf

    names = [t.name for t in model.inputs]
    specs = [tf.TensorSpec([None, *t.shape[1:]], tf.float32, name=t.name) for t in model.inputs]
    stats = {
        n: (tf.constant(normalization[n]["mean"]), tf.constant(normalization[n]["std"]))
        for n in names
    }

    def serve(*raw):
        x = {n: (r - stats[n][0]) / stats[n][1] for n, r in zip(names, raw, strict=True)}
        return {"probs": model(x, training=False)["probs"]}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=specs)
    saved = os.path.join(out_dir, "saved_model")
    archive.write_out(saved, verbose=False)
    paths = {"saved_model": saved}
    conv = tf.lite.TFLiteConverter.from_saved_model(saved)
    paths["tflite"] = os.path.join(out_dir, "model.tflite")
    open(paths["tflite"], "wb").write(conv.convert())
    if int8_samples is not None:
        conv = tf.lite.TFLiteConverter.from_saved_model(saved)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        count = len(int8_samples[names[0]])
        conv.representative_dataset = lambda: (
            {n: int8_samples[n][i : i + 1] for n in names} for i in range(count)
        )
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        paths["int8"] = os.path.join(out_dir, "model_int8.tflite")
        with warnings.catch_warnings():  # the calibrator still uses the deprecated interpreter
            warnings.simplefilter("ignore", UserWarning)
            open(paths["int8"], "wb").write(conv.convert())
    return paths


def _raw_batch(n, seed=0):
    rng = np.random.default_rng(seed)
    raw = {}
    for name, f in (("logmel", F_LOGMEL), ("cqt", F_CQT)):
        raw[name] = (NORM[name]["mean"] + NORM[name]["std"] * rng.normal(size=(n, T, f))).astype(
            np.float32
        )
    return raw


def _normalize(raw):
    return {n: (x - NORM[n]["mean"]) / NORM[n]["std"] for n, x in raw.items()}


@pytest.fixture(scope="module")
def tiny_artifacts(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tiny_export"))
    model = tiny_model({"logmel": (T, F_LOGMEL), "cqt": (T, F_CQT)}, 4)
    model.save(os.path.join(out, "model.keras"))
    paths = export_artifacts(model, NORM, out, int8_samples=_raw_batch(32, seed=1))
    return model, dict(paths, keras=os.path.join(out, "model.keras"))


def test_predictors_agree(tiny_artifacts):
    from asc_keras.inference import loader, predictors

    model, paths = tiny_artifacts
    raw = _raw_batch(5)
    want = model.predict_on_batch(_normalize(raw))["probs"]  # [5, 4]

    in_memory = predictors.KerasPredictor(model)
    from_file = loader.load_predictor(paths["keras"])
    saved = loader.load_predictor(paths["saved_model"])
    lite = loader.load_predictor(paths["tflite"])
    assert not in_memory.raw_features and not from_file.raw_features
    assert saved.raw_features and lite.raw_features and not lite.quantized
    for p in (in_memory, from_file, saved, lite):
        assert set(p.input_names) == {"logmel", "cqt"}
    np.testing.assert_allclose(in_memory(_normalize(raw)), want, atol=1e-6)
    np.testing.assert_allclose(from_file(_normalize(raw)), want, atol=1e-6)
    np.testing.assert_allclose(saved(raw), want, atol=1e-5)
    np.testing.assert_allclose(lite(raw), want, atol=1e-5)
    # Extra representations in the batch are ignored; a missing one is an error naming it.
    np.testing.assert_allclose(
        lite(dict(raw, gamma=np.zeros((5, T, 3), np.float32))), want, atol=1e-5
    )
    with pytest.raises(KeyError, match="cqt"):
        saved({"logmel": raw["logmel"]})


def test_int8_tflite_quantizes_inputs_and_dequantizes_outputs(tiny_artifacts):
    from asc_keras.inference import predictors, tflite_runner

    model, paths = tiny_artifacts
    raw = _raw_batch(6, seed=2)
    want = model.predict_on_batch(_normalize(raw))["probs"]
    lite = predictors.TFLitePredictor(paths["int8"])
    assert lite.quantized
    got = lite(raw)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=0.1)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=0.05)
    # Dequantized with the output's own parameters (softmax: scale 1/256, zero point -128).
    np.testing.assert_allclose(got * 256, np.round(got * 256), atol=1e-3)
    details = {
        "dtype": np.int8,
        "quantization_parameters": {
            "scales": np.array([0.5], np.float32),
            "zero_points": np.array([-3], np.int32),
        },
    }
    q = tflite_runner.quantize(np.array([0.0, 1.0, -100.0, 100.0]), details)
    np.testing.assert_array_equal(q, [-3, -1, -128, 127])
    np.testing.assert_allclose(tflite_runner.dequantize(q, details), [0.0, 1.0, -62.5, 65.0])


# ---------------------------------------------------------------------------------------------
# evaluate.py end to end on a six-clip dataset (conftest.small_1a_dir: 2 evaluate clips, devices
# s4 and a; fold1_test.csv lists the same two clips without labels).

E2E_FEATURES = FeatureConfig(clip_seconds=1.0, representations=("logmel", "cqt"))


def _model_dir(root, name, rep, *, seed):
    """A finished-run folder as training writes it: config.json (with the full model_config,
    from which separate part runs are recognised and weighted), normalization.json, model."""
    path = os.path.join(root, name)
    os.makedirs(path, exist_ok=True)
    frames, bins = E2E_FEATURES.shapes[rep]
    model = tiny_model({rep: (frames, bins)}, 10, seed=seed)
    model.save(os.path.join(path, "model.keras"))
    rng = np.random.default_rng(seed)
    norm = {
        r: {
            "mean": (-40 + 5 * rng.normal(size=E2E_FEATURES.bins(r))).tolist(),
            "std": (10 + rng.uniform(size=E2E_FEATURES.bins(r))).tolist(),
        }
        for r in E2E_FEATURES.representations
    }
    with open(os.path.join(path, "normalization.json"), "w") as f:
        json.dump(norm, f)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(
            {
                "task": "1a",
                "classes": list(labels.classes("1a")),
                "feature_config": E2E_FEATURES.to_dict(),
                "model_config": ModelConfig(
                    backbone="1a",
                    inputs=(rep,),
                    input_bins={rep: bins},
                    num_frames=frames,
                    num_classes=10,
                ).to_dict(),
            },
            f,
        )
    return path, model, norm


def test_evaluate_end_to_end(small_1a_dir, tmp_path):
    from asc_keras.data.manifest import load_manifest
    from asc_keras.evaluation import evaluator

    runs = {
        rep: _model_dir(str(tmp_path), f"run_{rep}", rep, seed=i)
        for i, rep in enumerate(("logmel", "cqt"))
    }
    data_cfg = DataConfig(
        data_dir=small_1a_dir,
        features_dir=str(tmp_path / "features"),
        task="1a",
        num_workers=1,
        clips_per_shard=4,
    )
    quiet = dict(progress=False, print_fn=None)

    # One Keras model_dir: default out_dir, every file written, device a reported apart.
    single = evaluator.run(
        EvalConfig(model_dirs=(runs["logmel"][0],), batch_size=1), data_cfg, **quiet
    )
    out = os.path.join(runs["logmel"][0], "eval_evaluate")
    assert single["out_dir"] == out
    for name in ("metrics.json", "confusion.png", "devices.png", "predictions.tsv", "report.txt"):
        assert os.path.exists(os.path.join(out, name)), name
    saved = json.load(open(os.path.join(out, "metrics.json")))
    assert saved["all"]["num_examples"] == 2 and saved["device_a"]["num_examples"] == 1
    assert list(saved["all"]["device_wise"]) == ["a", "s4"]
    logmel = single["systems"]["run_logmel"]
    assert list(logmel["meta"]["filename"]) == [
        "audio/metro-milan-1004-40004-s4.wav",
        "audio/park-prague-1005-40005-a.wav",
    ]

    # train.py's entry point gives the same numbers for the in-memory model.
    _, model, norm = runs["logmel"]
    norm = {r: {k: np.asarray(v, np.float32) for k, v in s.items()} for r, s in norm.items()}
    m, probs, meta = evaluator.evaluate_keras_model(
        model, load_manifest(single["features"]), split="evaluate", normalization=norm, batch_size=2
    )
    np.testing.assert_allclose(probs, logmel["probs"], atol=1e-6)
    assert m["all"]["log_loss"] == pytest.approx(saved["all"]["log_loss"])
    assert list(meta["device"]) == ["s4", "a"]

    # The same run through its exports (raw features in, normalization inside) agrees.
    paths = export_artifacts(model, norm, runs["logmel"][0])
    for kind in ("saved_model", "tflite"):
        arg = {"tflite": (paths["tflite"],)} if kind == "tflite" else {"saved_model": paths[kind]}
        res = evaluator.run(
            EvalConfig(model_dirs=(runs["logmel"][0],), out_dir=str(tmp_path / kind), **arg),
            data_cfg,
            **quiet,
        )
        (system,) = res["systems"].values()
        np.testing.assert_allclose(system["probs"], logmel["probs"], atol=1e-5)

    # Two model_dirs are fused: the mean of each run's probabilities.
    cqt = evaluator.run(EvalConfig(model_dirs=(runs["cqt"][0],)), data_cfg, **quiet)
    fused = evaluator.run(
        EvalConfig(model_dirs=(runs["logmel"][0], runs["cqt"][0]), out_dir=str(tmp_path / "fused")),
        data_cfg,
        **quiet,
    )
    np.testing.assert_allclose(
        fused["systems"]["fusion"]["probs"],
        (logmel["probs"] + cqt["systems"]["run_cqt"]["probs"]) / 2,
        atol=1e-6,
    )
    saved = json.load(open(tmp_path / "fused" / "metrics.json"))
    assert set(saved["member_metrics"]) == {"run_logmel", "run_cqt"}
    # Weighted fusion (systems of systems, e.g. SPSMR + SPSMF + SPSMT from separate runs).
    weighted = evaluator.run(
        EvalConfig(
            model_dirs=(runs["logmel"][0], runs["cqt"][0]),
            fusion_weights=(3, 1),
            out_dir=str(tmp_path / "weighted"),
        ),
        data_cfg,
        **quiet,
    )
    np.testing.assert_allclose(
        weighted["systems"]["fusion"]["probs"],
        0.75 * logmel["probs"] + 0.25 * cqt["systems"]["run_cqt"]["probs"],
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="one per model_dir"):
        EvalConfig(model_dirs=(runs["logmel"][0], runs["cqt"][0]), fusion_weights=(1,))

    # An unlabeled split: no metrics, a DCASE submission.
    sub = str(tmp_path / "submission.csv")
    test = evaluator.run(
        EvalConfig(model_dirs=(runs["logmel"][0],), split="test", submission=sub), data_cfg, **quiet
    )
    assert test["systems"]["run_logmel"]["metrics"] is None
    names, scene, probs, classes = submission.read_submission(sub)
    assert names == ["metro-milan-1004-40004-s4.wav", "park-prague-1005-40005-a.wav"]
    assert classes == list(labels.classes("1a"))
    np.testing.assert_allclose(probs, logmel["probs"], atol=1e-6)
    assert scene == [classes[k] for k in np.argmax(probs, axis=1)]

    with pytest.raises(ValueError, match="artifact names must differ"):
        evaluator.run(
            EvalConfig(model_dirs=(runs["logmel"][0],), tflite=(paths["tflite"], paths["tflite"])),
            data_cfg,
            **quiet,
        )

    # The command line comparing a float and an int8 file of a real export (two different
    # files): tests/test_evaluate_exports.py.


def test_evaluate_1b_on_tiny_features(tiny_1b_features, tmp_path):
    """A 1B run on the shared tiny synthetic features: device a is every clip."""
    from conftest import TINY_FEATURES_1B

    from asc_keras.data.manifest import load_manifest
    from asc_keras.evaluation import evaluator

    folder, feature_cfg, data_cfg = tiny_1b_features
    assert feature_cfg == TINY_FEATURES_1B
    path = str(tmp_path / "run_1b")
    os.makedirs(path)
    model = tiny_model({r: feature_cfg.shapes[r] for r in ("logmel", "gamma")}, 3, seed=3)
    model.save(os.path.join(path, "model.keras"))
    manifest = load_manifest(folder)
    norm = {
        r: {k: np.asarray(v).tolist() for k, v in s.items()}
        for r, s in manifest.normalization.items()
    }
    with open(os.path.join(path, "normalization.json"), "w") as f:
        json.dump(norm, f)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"task": "1b", "feature_config": feature_cfg.to_dict()}, f)

    res = evaluator.run(
        EvalConfig(model_dirs=(path,), batch_size=8), data_cfg, progress=False, print_fn=None
    )
    assert res["features"] == folder  # nothing recomputed
    system = res["systems"]["run_1b"]
    n = manifest.split("evaluate").num_examples
    assert system["probs"].shape == (n, 3)
    m = system["metrics"]
    assert m["all"]["num_examples"] == m["device_a"]["num_examples"] == n
    assert m["all"]["accuracy"] == pytest.approx(m["device_a"]["accuracy"])
    assert sum(map(sum, m["all"]["confusion_matrix"])) == n
    out = res["out_dir"]
    assert os.path.exists(os.path.join(out, "confusion.png"))
    assert not os.path.exists(os.path.join(out, "confusion_device_a.png"))
    # The manifest's own statistics (normalization=None) are what this run was given.
    _, probs, _ = evaluator.evaluate_keras_model(model, manifest, split="evaluate", batch_size=8)
    np.testing.assert_allclose(probs, system["probs"], atol=1e-6)


def test_saved_model_flag_takes_the_export_folder(tmp_path):
    from asc_keras.evaluation import evaluator

    export = tmp_path / "export"
    (export / "saved_model").mkdir(parents=True)
    (export / "saved_model" / "saved_model.pb").write_bytes(b"")
    assert evaluator.saved_model_folder(str(export)) == str(export / "saved_model")
    assert evaluator.saved_model_folder(str(export / "saved_model")) == str(export / "saved_model")
    assert evaluator.saved_model_folder(str(tmp_path / "nothing")) == str(tmp_path / "nothing")
