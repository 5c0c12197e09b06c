"""DIR augmentation: the convolution and draw against NumPy transcriptions of their formulas, the
precomputed copies (device-a train clips only, featurized as the clean clip, reruns byte for
byte, a changed response folder recomputes, a bad response named in one line), the training
stream's pick (its probability, p = 0 clean, alignment, exact resume) and one train.py run."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import pathlib
import shutil

import numpy as np
import pytest

from asc_keras.config import DataConfig, FeatureConfig
from asc_keras.data import (
    device_ir,
    dir_pipeline,
    dir_shards,
    manifest,
    pipeline,
    precompute,
    synthetic,
)

REPO = pathlib.Path(__file__).resolve().parent.parent
FEATURES = FeatureConfig(clip_seconds=1.0, logmel_bins=64, representations=("logmel",))
QUIET = dict(progress=False, log=lambda *_: None)


def _reference_draw(seed, clip, copy, n):
    """sha256 of "seed/clip/copy", first 16 hex digits as an integer, modulo n."""
    return int(hashlib.sha256(f"{seed}/{clip}/{copy}".encode()).hexdigest()[:16], 16) % n


def test_apply_ir_is_the_full_convolution_truncated_to_the_clip():
    rng = np.random.default_rng(0)
    wave = rng.standard_normal(1000).astype(np.float32)
    ir = rng.standard_normal(37).astype(np.float32)
    want = np.convolve(wave.astype(np.float64), ir.astype(np.float64))[: len(wave)]
    got = device_ir.apply_ir(wave, ir)
    assert got.shape == wave.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # A unit impulse delayed by 5 samples shifts the clip and keeps its length.
    delay = np.zeros(8, np.float32)
    delay[5] = 1.0
    np.testing.assert_allclose(device_ir.apply_ir(wave, delay)[5:], wave[:-5], atol=1e-6)


def test_draw_follows_the_formula_and_spreads_evenly():
    names = [f"audio/clip-{i}-a.wav" for i in range(400)]
    for seed in (0, 7):
        for copy in range(3):
            got = [device_ir.draw(seed, n, copy, 5) for n in names]
            assert got == [_reference_draw(seed, n, copy, 5) for n in names]
    counts = np.bincount([device_ir.draw(0, n, c, 4) for n in names for c in range(3)], minlength=4)
    assert counts.min() > 0.8 * 300 and counts.max() < 1.2 * 300
    assert [device_ir.draw(0, n, 0, 5) for n in names] != [
        device_ir.draw(1, n, 0, 5) for n in names
    ]


def test_load_ir_resamples_to_the_feature_rate(tmp_path):
    import soundfile as sf
    import soxr

    ir = synthetic.irs.device_ir(0, sample_rate=48000)
    sf.write(tmp_path / "x.wav", np.stack([ir, ir], 1), 48000, subtype="FLOAT")
    got = device_ir.load_ir(str(tmp_path / "x.wav"), 44100)
    np.testing.assert_allclose(got, soxr.resample(ir, 48000, 44100, quality="HQ"), atol=1e-6)


def test_synthetic_irs_are_deterministic(tmp_path):
    a = synthetic.write_device_irs(tmp_path / "a", 3, seed=4)
    b = synthetic.write_device_irs(tmp_path / "b", 3, seed=4)
    names = sorted(os.listdir(a))
    assert names == ["ir_000.wav", "ir_001.wav", "ir_002.wav"]
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    assert device_ir.folder_hash(str(a)) != device_ir.folder_hash(
        str(synthetic.write_device_irs(tmp_path / "c", 3, seed=5))
    )


@pytest.fixture(scope="module")
def dir_set(tmp_path_factory):
    """A synthetic TAU 2022 set (1 s clips, 3 responses), its features and 2 copies each."""
    root = tmp_path_factory.mktemp("dir")
    synthetic.generate(
        root / "data",
        task="tau2022",
        clips_per_class=4,
        clips_per_location=2,
        clip_seconds=1.0,
        seed=2,
    )
    irs = synthetic.write_device_irs(root / "data", 3, seed=2)
    data_cfg = DataConfig(
        data_dir=str(root / "data"),
        features_dir=str(root / "f"),
        task="tau2022",
        num_workers=1,
        clips_per_shard=16,
        dir_folder=str(irs),
        dir_copies=2,
    )
    folder = precompute.ensure_features(FEATURES, data_cfg, **QUIET)
    s = dir_shards.ensure_copies(folder, FEATURES, data_cfg, **QUIET)
    return s, data_cfg


def _records(paths):
    import tensorflow as tf

    from asc_keras.data import schema

    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("logmel", *schema.STRING_KEYS)}
    out = {}
    for r in tf.data.TFRecordDataset(list(paths)):
        ex = tf.io.parse_single_example(r, spec)
        x = np.frombuffer(ex["logmel"].numpy(), "<f4").reshape(-1, *FEATURES.shapes["logmel"])
        out[ex["filename"].numpy().decode()] = (ex["device"].numpy().decode(), x)
    return out


def _files(folder):
    return {n: (pathlib.Path(folder) / n).read_bytes() for n in sorted(os.listdir(folder))}


def test_copies_only_for_device_a_train_clips(dir_set):
    s, data_cfg = dir_set
    m = manifest.load_manifest(s.folder)
    assert [n.replace(f"dir-{s.key}", "train") for n in s.shards] == list(m.split("train").shards)
    recs = _records(s.shard_paths())
    assert list(recs) == list(m.split("train").files)  # record for record, in order
    held = {n for n, (_, x) in recs.items() if len(x)}
    assert held == {n for n, (d, _) in recs.items() if d == "a"} and 0 < len(held) < len(recs)
    assert all(x.shape == (2, 87, 64) for n, (_, x) in recs.items() if n in held)
    assert not held & set(m.split("evaluate").files)
    assert s.num_copied == len(held)


def test_copy_features_are_the_features_of_the_convolved_clip(dir_set):
    from asc_keras import audio
    from asc_keras.features import compute_features

    s, data_cfg = dir_set
    recs = _records(s.shard_paths())
    name = next(n for n, (d, _) in recs.items() if d == "a")
    names = sorted(os.listdir(data_cfg.dir_folder))
    wave = audio.load_clip(os.path.join(data_cfg.data_dir, name), FEATURES)
    for c in range(2):
        ir = device_ir.load_ir(
            os.path.join(data_cfg.dir_folder, names[_reference_draw(0, name, c, 3)]), 44100
        )
        y = np.convolve(wave.astype(np.float64), ir.astype(np.float64))[: len(wave)]
        want = compute_features(y.astype(np.float32), FEATURES)["logmel"]
        np.testing.assert_allclose(recs[name][1][c], want, atol=2e-3)


def test_rerun_is_byte_identical_and_a_changed_folder_recomputes(dir_set, tmp_path):
    s, data_cfg = dir_set
    before = _files(s.folder)
    lines = []
    again = dir_shards.ensure_copies(s.folder, FEATURES, data_cfg, progress=False, log=lines.append)
    assert again == s and lines == [] and _files(s.folder) == before  # only read
    os.remove(s.shard_paths()[1])  # an interrupted run: recomputed, the same bytes
    dir_shards.ensure_copies(s.folder, FEATURES, data_cfg, **QUIET)
    assert _files(s.folder) == before
    irs = tmp_path / "irs"
    shutil.copytree(data_cfg.dir_folder, irs)
    synthetic.write_device_irs(tmp_path, 1, seed=9)  # device_irs/ir_000.wav replaced
    shutil.copy(tmp_path / "device_irs" / "ir_000.wav", irs / "ir_000.wav")
    other = dir_shards.ensure_copies(
        s.folder, FEATURES, dataclasses.replace(data_cfg, dir_folder=str(irs)), **QUIET
    )
    assert other.key != s.key and other.irs_sha256 != s.irs_sha256
    assert all(os.path.exists(p) for p in other.shard_paths() + s.shard_paths())


@pytest.mark.parametrize("bad", ["garbage", "zeros"])
def test_bad_ir_file_is_one_line_naming_it(dir_set, tmp_path, bad):
    import soundfile as sf

    s, data_cfg = dir_set
    irs = tmp_path / "irs"
    shutil.copytree(data_cfg.dir_folder, irs)
    if bad == "garbage":
        (irs / "broken.wav").write_bytes(b"not a wav file at all")
    else:
        sf.write(irs / "broken.wav", np.zeros(64, np.float32), 44100, subtype="PCM_16")
    with pytest.raises(device_ir.ImpulseResponseError) as e:
        dir_shards.ensure_copies(
            s.folder, FEATURES, dataclasses.replace(data_cfg, dir_folder=str(irs)), **QUIET
        )
    assert str(irs / "broken.wav") in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(device_ir.ImpulseResponseError, match=r"no \*\.wav"):
        device_ir.ir_files(str(tmp_path / "empty"))


def _stream(s, *, p, batches, skip=0, seed=3):
    m = manifest.load_manifest(s.folder)
    copies = None
    if p is not None:
        copies = dir_pipeline.make_copies(
            s, m.shard_paths("train"), ("logmel",), manifest=m, p=p, seed=seed
        )
    ds = pipeline.train_dataset(
        m,
        representations=("logmel",),
        batch_size=8,
        seed=seed,
        mixup_alpha=0.0,
        skip_batches=skip,
        dir_copies=copies,
    )
    return np.concatenate([f["logmel"].numpy() for f, _ in ds.take(batches)])  # [N, T, F]


def _candidates(s):
    """Flattened normalized clean maps and copies, with (clip, copy index or -1, device)."""
    m = manifest.load_manifest(s.folder)
    mean, std = pipeline.normalization_arrays(m.normalization, "logmel")
    clean = _records(m.shard_paths("train"))
    copies = _records(s.shard_paths())
    maps, who = [], []
    for name, (device, x) in clean.items():
        maps.append((x[0] - mean) / std)
        who.append((name, -1, device))
        for c, y in enumerate(copies[name][1]):
            maps.append((y - mean) / std)
            who.append((name, c, device))
    return np.stack(maps).reshape(len(maps), -1), who


def _identify(stream, maps):
    flat = stream.reshape(len(stream), -1)
    d = (flat**2).sum(1)[:, None] - 2 * flat @ maps.T + (maps**2).sum(1)[None]
    best = d.argmin(1)
    assert np.all(d[np.arange(len(flat)), best] < 1e-3 * flat.shape[1])
    return best


def test_pick_probability_alignment_p0_and_resume(dir_set):
    s, _ = dir_set
    maps, who = _candidates(s)
    clean = _stream(s, p=None, batches=150)
    assert np.array_equal(_stream(s, p=0.0, batches=150), clean)  # p = 0: the clean stream
    mixed = _stream(s, p=0.6, batches=150)
    got, want = _identify(mixed, maps), _identify(clean, maps)
    same_clip = [who[g][0] == who[w][0] for g, w in zip(got, want, strict=True)]
    assert all(same_clip)  # the same clip at every position, clean or a copy of it
    is_a = np.array([who[w][2] == "a" for w in want])
    copied = np.array([who[g][1] >= 0 for g in got])
    assert not copied[~is_a].any()  # other devices never change
    assert abs(copied[is_a].mean() - 0.6) < 0.06, copied[is_a].mean()  # ~800 device-a draws
    # Both copies are drawn (where they differ: two copies may draw the same response).
    at = {(n, c): i for i, (n, c, _) in enumerate(who)}
    twins = {n for n, c in at if c == 1 and np.array_equal(maps[at[n, 0]], maps[at[n, 1]])}
    index = np.array([who[g][1] for g in got if who[g][1] >= 0 and who[g][0] not in twins])
    assert 0.35 < (index == 1).mean() < 0.65
    np.testing.assert_array_equal(_stream(s, p=0.6, batches=5, skip=145), mixed[-40:])  # resume


def _main(script):
    spec = importlib.util.spec_from_file_location(f"asc_{script}_main", REPO / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.slow
def test_train_with_dir_end_to_end_and_resume_keeps_the_set(tmp_path):
    from absl import flags

    from asc_keras import flags as flags_lib
    from asc_keras.training.checkpoints import IncompatibleModelDirError

    data = tmp_path / "data"
    synthetic.generate(
        data, task="tau2022", clips_per_class=2, clips_per_location=1, clip_seconds=1.0, seed=3
    )
    synthetic.write_device_irs(data, 2, seed=3)
    argv = [
        "--task=tau2022",
        f"--data_dir={data}",
        f"--features_dir={tmp_path / 'f'}",
        "--representations=logmel",
        "--model_inputs=logmel",
        "--num_workers=1",
        f"--dir_folder={data / 'device_irs'}",
        "--dir_copies=2",
        "--dir_p=0.6",
        f"--model_dir={tmp_path / 'run'}",
        "--width=0.1",
        "--train_steps=2",
        "--batch_size=4",
        "--eval_every=0",
        "--checkpoint_every=2",
    ]
    flags_lib.define_all()
    try:
        flags_lib.parse(["train.py", *argv])
        assert _main("train")(["train.py"]) in (None, 0)
        record = json.loads((tmp_path / "run" / "config.json").read_text())
        assert record["train_config"]["dir_p"] == 0.6
        assert record["dir"]["copies"] == 2 and record["dir"]["device"] == "a"
        flags.FLAGS.unparse_flags()
        flags_lib.parse(["train.py", *argv, "--dir_seed=1", "--train_steps=4"])
        with pytest.raises(IncompatibleModelDirError, match="dir"):
            _main("train")(["train.py"])
    finally:
        flags.FLAGS.unparse_flags()
