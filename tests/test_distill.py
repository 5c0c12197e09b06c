"""Knowledge distillation: the loss against a NumPy transcription of the published formula
(temperature, lambda, frame-wise outputs, mixup-mixed targets), teacher files (write, read,
import, errors), the pipeline carrying the soft targets through mixup, exact resume with a
teacher and the refusal of a changed teacher file, and the reproduction's stale check."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from asc_keras.data import teacher as teacher_lib

CLASSES = ("airport", "bus", "park")
EPS = 1e-7  # keras.config.epsilon()


def np_softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def np_kd_loss(y, q, p, *, lam, temperature):
    """Per clip: lam * CE(y, p) + (1 - lam) * T^2 * KL(q || softmax(log p / T)), as cpjku's
    recipe states it, in float64; `p` `[b, C]` or frames `[b, T', C]` (mean over frames)."""
    p = np.asarray(p, np.float64)
    frames = p.ndim == 3
    if frames:
        y = np.broadcast_to(y[:, None], p.shape)
        q = np.broadcast_to(q[:, None], p.shape)
    pn = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)  # Keras' categorical CE
    ce = -(y * np.log(pn)).sum(-1)
    z = np.log(np.clip(p, EPS, 1.0)) / temperature
    log_r = z - np.log(np.exp(z).sum(-1, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        q_log_q = np.where(q > 0, q * np.log(q), 0.0)
    kd = temperature**2 * (q_log_q - q * log_r).sum(-1)
    if frames:
        ce, kd = ce.mean(-1), kd.mean(-1)
    return lam * ce + (1 - lam) * kd, ce, kd


def _two_output_model(frames: int, bins: int, num_classes: int):
    """A tiny model with a clip output and a frame-wise output (as SPSMT's `frames`)."""
    import keras

    x = keras.Input((frames, bins), name="logmel")
    clip = keras.layers.Dense(num_classes, name="clip_dense")(keras.layers.Flatten()(x))
    clip = keras.layers.Softmax(name="a_probs")(clip)
    per_frame = keras.layers.Dense(num_classes, name="frame_dense")(x)  # [b, T, C]
    per_frame = keras.layers.Softmax(name="a_frames")(per_frame)
    return keras.Model({"logmel": x}, {"a_probs": clip, "a_frames": per_frame})


@pytest.mark.parametrize("lam, temperature", [(0.02, 2.0), (0.5, 1.0), (0.3, 4.0)])
def test_training_step_loss_matches_the_formula(lam, temperature):
    """The loss the training step computes (clip and frames outputs, mixed labels and mixed soft
    targets, their CE and KD terms) equals the NumPy transcription."""
    import keras
    import tensorflow as tf

    from asc_keras.data import mixup
    from asc_keras.training import distill, loop

    rng = np.random.default_rng(0)
    b, t, f, c = 6, 5, 4, 3
    model = _two_output_model(t, f, c)
    features = {"logmel": rng.standard_normal((b, t, f)).astype(np.float32) * 3}
    onehot = np.eye(c, dtype=np.float32)[rng.integers(0, c, b)]
    q = np_softmax(rng.standard_normal((b, c)) * 4 / temperature).astype(np.float32)
    mixed_x, mixed = mixup.mixup_batch(
        features, np.concatenate([onehot, q], 1), alpha=0.4, seed=tf.constant([3, 4], tf.int64)
    )
    mixed = mixed.numpy()
    outputs = {k: v.numpy() for k, v in model(mixed_x, training=True).items()}

    strategy = tf.distribute.get_strategy()
    step = loop.make_train_step(
        strategy,
        model,
        keras.optimizers.SGD(0.0),
        {"a_probs": "clip", "a_frames": "frames"},
        tf.Variable(0, dtype=tf.int64),
        global_batch=b,
        jit_compile=False,
        distill=distill.Distillation(kd_lambda=lam, temperature=temperature, num_classes=c),
    )
    got = {k: float(v) for k, v in step(mixed_x, tf.constant(mixed)).items()}
    y, qm = mixed[:, :c].astype(np.float64), mixed[:, c:].astype(np.float64)
    want_total, want_ce, want_kd = 0.0, 0.0, 0.0
    for name in ("a_probs", "a_frames"):
        loss, ce, kd = np_kd_loss(y, qm, outputs[name], lam=lam, temperature=temperature)
        np.testing.assert_allclose(got[name], loss.mean(), rtol=2e-5)
        want_total += loss.mean()
        want_ce += ce.mean()
        want_kd += kd.mean()
    np.testing.assert_allclose(got["total"], want_total, rtol=2e-5)
    np.testing.assert_allclose(got["ce"], want_ce, rtol=2e-5)
    np.testing.assert_allclose(got["kd"], want_kd, rtol=2e-5)


def test_mixing_the_targets_gives_the_gradient_of_mixing_the_two_kd_losses():
    """d/dz KL(lam q1 + (1 - lam) q2 || softmax(z / T)) == d/dz [lam KL(q1 || .) + (1 - lam)
    KL(q2 || .)], from the NumPy formula by central differences."""
    rng = np.random.default_rng(1)
    c, temperature, lam = 4, 2.0, 0.3
    q1, q2 = np_softmax(rng.standard_normal(c)), np_softmax(rng.standard_normal(c))
    z0 = rng.standard_normal(c)

    def kl(q, z):
        log_r = z / temperature - np.log(np.exp(z / temperature).sum())
        return (q * (np.log(q) - log_r)).sum()

    def grad(fn):
        h = 1e-6
        return np.array([(fn(z0 + h * e) - fn(z0 - h * e)) / (2 * h) for e in np.eye(c)])

    mixed = grad(lambda z: kl(lam * q1 + (1 - lam) * q2, z))
    separate = grad(lambda z: lam * kl(q1, z) + (1 - lam) * kl(q2, z))
    np.testing.assert_allclose(mixed, separate, atol=1e-7)


# --- teacher files -----------------------------------------------------------------------------


def _names(n):
    return [f"audio/clip-{i:03d}-a.wav" for i in range(n)]


def test_teacher_file_round_trip_is_sorted_and_byte_identical(tmp_path):
    names = _names(5)[::-1]
    logits = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    config = {"runs": ["r1"], "weights": [1.0], "fusion": "single"}
    a, b = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    teacher_lib.write_teacher(a, names, logits, CLASSES, config)
    teacher_lib.write_teacher(b, names, logits, CLASSES, config)
    assert open(a, "rb").read() == open(b, "rb").read()
    read = teacher_lib.read_teacher(a, CLASSES)
    assert list(read.filenames) == sorted(names) and read.config == config
    np.testing.assert_array_equal(read.logits[read.rows(names)], logits)
    with np.load(a) as z:  # plain NPZ for anyone else
        assert list(z["classes"]) == list(CLASSES) and z["logits"].dtype == np.float32
    t = 2.0
    np.testing.assert_allclose(
        read.targets(names[:2], temperature=t), np_softmax(logits[:2] / t), rtol=1e-6
    )


def test_user_csv_and_npz_import_in_the_tasks_class_order(tmp_path):
    names = _names(3)
    logits = np.arange(9, dtype=np.float64).reshape(3, 3) / 4
    csv = tmp_path / "ens.csv"  # comma separated, columns shuffled, an extra column
    csv.write_text(
        "scene_label,park,filename,airport,bus\n"
        + "".join(f"x,{r[2]},{n},{r[0]},{r[1]}\n" for n, r in zip(names, logits, strict=True))
    )
    tsv = tmp_path / "ens_tab.csv"
    tsv.write_text(
        "filename\tairport\tbus\tpark\n"
        + "".join(f"{n}\t{r[0]}\t{r[1]}\t{r[2]}\n" for n, r in zip(names, logits, strict=True))
    )
    npz = tmp_path / "ens.npz"
    base = [os.path.basename(n).encode() for n in names]  # bytes, as np.savez of b'' strings
    np.savez(npz, filenames=np.array(base), logits=logits)
    for path in (csv, tsv, npz):
        t = teacher_lib.read_teacher(str(path), CLASSES)
        np.testing.assert_allclose(t.logits[t.rows(names)], logits, rtol=1e-7)  # base names too
    other = tmp_path / "other.npz"  # the same classes in another order: columns follow them
    np.savez(other, filenames=np.array(names), logits=logits, classes=np.array(CLASSES[::-1]))
    t = teacher_lib.read_teacher(str(other), CLASSES)
    np.testing.assert_allclose(t.logits, logits[:, ::-1], rtol=1e-7)


def test_missing_clip_and_class_mismatch_are_one_line(tmp_path):
    names = _names(4)
    path = str(tmp_path / "t.npz")
    teacher_lib.write_teacher(path, names[:3], np.zeros((3, 3)), CLASSES, {})
    t = teacher_lib.read_teacher(path, CLASSES)
    with pytest.raises(teacher_lib.TeacherError) as e:
        t.targets(names, temperature=2.0)
    msg = str(e.value)
    assert "\n" not in msg and names[3] in msg and path in msg and "1 of 4" in msg
    with pytest.raises(teacher_lib.TeacherError) as e:
        teacher_lib.read_teacher(path, ("airport", "bus", "tram"))
    assert "\n" not in str(e.value) and "tram" in str(e.value)
    csv = tmp_path / "few.csv"
    csv.write_text("filename,airport,bus\naudio/x.wav,1,2\n")
    with pytest.raises(teacher_lib.TeacherError, match="park"):
        teacher_lib.read_teacher(str(csv), CLASSES)


# --- the pipeline, training, resume ------------------------------------------------------------


def _teacher_for(folder, path, *, drop=0, seed=0):
    """A random teacher file for the training clips of a features folder (less `drop`)."""
    from asc_keras.data.manifest import load_manifest

    m = load_manifest(folder)
    files = list(m.split("train").files)[drop:]
    logits = np.random.default_rng(seed).standard_normal((len(files), len(m.classes))) * 3
    teacher_lib.write_teacher(str(path), files, logits, m.classes, {"fusion": "test"})
    return m, dict(zip(files, logits, strict=True))


def test_pipeline_mixes_the_soft_targets_with_the_inputs_labels(tiny_1b_features, tmp_path):
    """Clean batches: each clip's targets are softmax(its logits / T). Mixed batches: every
    mixed example's labels and targets are mixed with the weight and partner of its features."""
    from conftest import shard_logmel

    from asc_keras.data import pipeline

    folder, _, _ = tiny_1b_features
    m, logits = _teacher_for(folder, tmp_path / "t.npz")
    teacher = teacher_lib.read_teacher(str(tmp_path / "t.npz"), m.classes)
    files = m.split("train").files
    targets = (files, teacher.targets(files, temperature=2.0))
    ident = {"logmel": {"mean": np.zeros(64), "std": np.ones(64)}}
    c = len(m.classes)

    def batch(alpha):
        ds = pipeline.train_dataset(
            m,
            representations=("logmel",),
            batch_size=8,
            seed=3,
            mixup_alpha=alpha,
            normalization=ident,
            teacher_targets=targets,
        )
        x, y = next(iter(ds))
        return x["logmel"].numpy().astype(np.float64), y.numpy().astype(np.float64)

    raw = shard_logmel(folder)
    x, y = batch(0.0)
    assert y.shape == (8, 2 * c)
    for xi, yi in zip(x, y, strict=True):
        name = next(n for n, v in raw.items() if np.array_equal(v, xi))
        np.testing.assert_allclose(yi[c:], np_softmax(logits[name] / 2.0), rtol=1e-5)
    xm, ym = batch(0.4)
    for i in range(len(xm)):  # recover (lam, partner) from the features alone
        best = None
        for j in range(len(x)):
            d = x[i] - x[j]
            lam = 1.0 if not d.any() else float(((xm[i] - x[j]) * d).sum() / (d * d).sum())
            err = np.abs(lam * x[i] + (1 - lam) * x[j] - xm[i]).max()
            if best is None or err < best[0]:
                best = (err, lam, j)
        err, lam, j = best
        assert err < 1e-3
        np.testing.assert_allclose(ym[i], lam * y[i] + (1 - lam) * y[j], atol=2e-4)


def _run(features, model_dir, teacher, **kw):
    from asc_keras.config import ModelConfig, TrainConfig
    from asc_keras.training import trainer

    _, feature_cfg, data_cfg = features
    model_cfg = ModelConfig(
        backbone="1b",
        inputs=("logmel",),
        input_bins={"logmel": feature_cfg.bins("logmel")},
        num_frames=feature_cfg.num_frames,
        num_classes=3,
        width=0.04,
        strategies=("spsmt",),
    )
    args = dict(
        model_dir=str(model_dir),
        batch_size=4,
        eval_every=0,
        checkpoint_every=2,
        log_every=2,
        deterministic=True,
        teacher=str(teacher),
        kd_lambda=0.3,
    )
    train_cfg = TrainConfig(**{**args, **kw})
    return trainer.run(
        feature_cfg, data_cfg, model_cfg, train_cfg, progress=False, log=lambda *_: None
    )


def _weights(model_dir):
    from asc_keras.models import load_model

    return load_model(str(model_dir / "model.keras"), compile=False).get_weights()


@pytest.mark.slow
def test_resume_with_a_teacher_is_exact_and_a_changed_teacher_is_refused(
    tiny_1b_features, tmp_path
):
    from asc_keras.training import checkpoints

    folder, _, _ = tiny_1b_features
    path = tmp_path / "teacher.npz"
    _teacher_for(folder, path)
    straight = _run(tiny_1b_features, tmp_path / "straight", path, train_steps=4)
    assert {"ce", "kd", "total"} <= set(straight["train_loss"])
    _run(tiny_1b_features, tmp_path / "resumed", path, train_steps=2)
    out = _run(tiny_1b_features, tmp_path / "resumed", path, train_steps=4)
    assert out["resumed_from"] == 2
    for a, b in zip(_weights(tmp_path / "resumed"), _weights(tmp_path / "straight"), strict=True):
        np.testing.assert_array_equal(a, b)
    record = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert record["teacher"]["path"] == str(path)
    assert record["teacher"]["sha256"] == _sha256(path)
    assert record["train_config"]["teacher"] == str(path)

    _teacher_for(folder, path, seed=1)  # the same clips, other logits
    with pytest.raises(checkpoints.IncompatibleModelDirError) as e:
        _run(tiny_1b_features, tmp_path / "resumed", path, train_steps=6)
    assert "\n" not in str(e.value) and "teacher file" in str(e.value) and str(path) in str(e.value)


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_a_training_clip_without_teacher_logits_stops_before_the_first_step(
    tiny_1b_features, tmp_path
):
    """One line naming the clip, before the run folder exists (a fixed file then starts it)."""
    folder, _, _ = tiny_1b_features
    m, _ = _teacher_for(folder, tmp_path / "t.npz", drop=1)
    with pytest.raises(teacher_lib.TeacherError) as e:
        _run(tiny_1b_features, tmp_path / "run", tmp_path / "t.npz", train_steps=2)
    assert "\n" not in str(e.value) and m.split("train").files[0] in str(e.value)
    assert not (tmp_path / "run").exists()


def test_stale_check_and_legacy_records_see_the_teacher(tiny_1b_features, tmp_path):
    """A changed teacher file makes a reproduction run stale; a run recorded before the fields
    existed reads as one without a teacher."""
    from asc_keras import runs
    from asc_keras.config import ModelConfig, TrainConfig
    from asc_keras.reproduce import runner
    from asc_keras.training import checkpoints

    folder, feature_cfg, data_cfg = tiny_1b_features
    path = tmp_path / "t.npz"
    _teacher_for(folder, path)
    model_cfg = ModelConfig(
        backbone="1b", inputs=("logmel",), input_bins={"logmel": 64}, num_classes=3
    )

    def record(train_cfg):
        return runs.run_record(
            feature_cfg, data_cfg, model_cfg, train_cfg, classes=data_cfg.task_spec.classes
        )

    before = json.loads(json.dumps(record(TrainConfig(teacher=str(path)))))
    _teacher_for(folder, path, seed=1)
    after = record(TrainConfig(teacher=str(path)))
    diff = runner.record_differences(before, after)
    assert any(d.startswith("sha256") for d in diff), diff
    assert runner.record_differences(before, before) == []
    old = record(TrainConfig())
    for key in ("teacher", "kd_lambda", "kd_temperature"):
        old["train_config"].pop(key)
    assert runner.record_differences(old, record(TrainConfig())) == []
    assert runner.record_differences(old, after)  # turning a teacher on is stale
    os.makedirs(tmp_path / "run")
    (tmp_path / "run" / "config.json").write_text(json.dumps(old))
    assert checkpoints.check_resumable(str(tmp_path / "run"), record(TrainConfig()))
    with pytest.raises(checkpoints.IncompatibleModelDirError, match="teacher"):
        checkpoints.check_resumable(str(tmp_path / "run"), after)


# --- end to end on a synthetic TAU 2022 set ----------------------------------------------------


def _script(*args, timeout=300):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(
        [sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_teacher_run_to_teach_py_to_student_to_export_to_predict_with_devices(tmp_path):
    """The 2024/25 recipe end to end: a teacher run, teach.py (twice: the same bytes), a student
    trained with --teacher (the CE and KD terms in TensorBoard), its int8 export within the TAU
    2022 rule (counted on the file), the student fine-tuned for device b and exported, predict.py
    with the device models choosing b's model for a b clip and the general one for an a clip,
    and a CSV import."""
    from test_training import _scalar_tags

    data, feats = tmp_path / "data", tmp_path / "features"
    _script(
        "-m",
        "asc_keras.data.synthetic",
        "--task=tau2022",
        "--clips_per_class=2",
        "--subsegments=1",
        "--num_cities=2",
        f"--out={data}",
    )
    common = [
        "--flagfile=configs/tau2022_ef_spsmt.flags",
        f"--data_dir={data}",
        f"--features_dir={feats}",
        "--num_workers=1",
        "--batch_size=4",
        "--train_steps=2",
        "--eval_every=0",
        "--log_every=1",
        "--checkpoint_every=2",
    ]
    _script("train.py", *common, "--width=0.125", f"--model_dir={tmp_path / 'big'}")
    out = tmp_path / "teacher.npz"
    teach = ["teach.py", f"--model_dir={tmp_path / 'big'}", f"--data_dir={data}"]
    _script(*teach, f"--features_dir={feats}", f"--out={out}")
    first = out.read_bytes()
    _script(*teach, f"--features_dir={feats}", f"--out={out}")
    assert out.read_bytes() == first
    with np.load(out) as z:
        classes = tuple(str(c) for c in z["classes"])
    t = teacher_lib.read_teacher(str(out), classes)
    assert t.config["fusion"] == "single" and t.logits.shape[1] == 10
    assert np.all(t.logits <= 0) and np.allclose(np.exp(t.logits).sum(1), 1, atol=1e-4)

    student = tmp_path / "student"
    _script("train.py", *common, "--width=0.0625", f"--teacher={out}", f"--model_dir={student}")
    tags = _scalar_tags(str(student / "train"))
    assert {"loss", "loss/ce", "loss/kd"} <= set(tags)
    _script(
        "export.py",
        f"--model_dir={student}",
        f"--export_dir={tmp_path / 'export'}",
        f"--data_dir={data}",
        f"--features_dir={feats}",
        "--calibration_examples=8",
    )
    general = tmp_path / "export" / "model_int8.tflite"
    assert general.is_file()
    with open(tmp_path / "export" / "export_report.json") as f:
        counted = json.load(f)["complexity"]["model_int8.tflite"]["rule"]
    assert counted["within_limit"], counted

    tuned = tmp_path / "student_b"
    _script(
        "train.py",
        *common,
        "--width=0.0625",
        f"--init_from={student}",
        "--train_devices=b",
        f"--model_dir={tuned}",
    )
    _script(
        "export.py",
        f"--model_dir={tuned}",
        f"--export_dir={tmp_path / 'device_models' / 'b'}",
        f"--data_dir={data}",
        f"--features_dir={feats}",
        "--calibration_examples=8",
    )
    names = [line.split("\t")[0] for line in (data / "meta.csv").read_text().splitlines()[1:]]
    clips = [str(data / next(n for n in names if n.endswith(f"-{d}.wav"))) for d in ("b", "a")]
    shown = _script(
        "predict.py",
        f"--model={general}",
        f"--device_models={tmp_path / 'device_models'}",
        *clips,
    )
    rows = {line.split()[0]: line.split()[1:3] for line in shown.splitlines() if line[:1] == "/"}
    assert rows[clips[0]] == ["b", "b"] and rows[clips[1]] == ["a", "general"], shown

    csv = tmp_path / "elsewhere.csv"  # an ensemble trained elsewhere, as a CSV
    csv.write_text(
        "filename,"
        + ",".join(t.classes)
        + "\n"
        + "".join(
            f"{n}," + ",".join(f"{v:.6f}" for v in row) + "\n"
            for n, row in zip(t.filenames, t.logits, strict=True)
        )
    )
    imported = tmp_path / "imported.npz"
    _script(
        "teach.py", "--task=tau2022", f"--teacher={csv}", f"--data_dir={data}", f"--out={imported}"
    )
    again = teacher_lib.read_teacher(str(imported), t.classes)
    np.testing.assert_allclose(again.logits, t.logits, atol=1e-6)
    assert list(again.filenames) == list(t.filenames)


def test_teacher_fusion_of_a_rows_runs_uses_the_plans_weights():
    """The runs of SPSMR + SPSMF + SPSMT (20 band runs, 4 SPSMT runs) teach with the row's
    weights (1/40, 1/8), other runs with equal weights, --fusion_weights as given."""
    import types

    from asc_keras import flags as flags_lib
    from asc_keras.config.teach import TeachConfig
    from asc_keras.evaluation.teacher import fusion_of
    from asc_keras.strategies.parts import model_parts

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    _, _, row, _ = flags_lib.flagfile_configs(
        os.path.join(root, "configs", "1a_spsmr_spsmf_spsmt.flags")
    )
    parts = model_parts(row)
    runs = [types.SimpleNamespace(model_config=p.config.to_dict()) for p in parts]
    cfg = TeachConfig(out="t.npz", model_dirs=tuple(p.name for p in parts))
    weights, how = fusion_of(cfg, runs)
    assert how == "parts" and len(weights) == 24
    np.testing.assert_allclose(weights, [p.weight for p in parts])
    assert sorted(set(np.round(weights, 6))) == [round(1 / 40, 6), round(1 / 8, 6)]
    two = runs[:1] + runs[-1:]  # a band run and an SPSMT run: not the parts of one model
    assert fusion_of(TeachConfig(out="t.npz", model_dirs=("a", "b")), two) == ([0.5, 0.5], "mean")
    given = TeachConfig(out="t.npz", model_dirs=("a", "b"), fusion_weights=(1, 3))
    assert fusion_of(given, two) == ([0.25, 0.75], "weights")
