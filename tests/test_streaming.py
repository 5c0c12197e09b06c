"""Streaming predict: windows read block by block equal slices of the whole recording, memory
stays bounded, three synthetic scenes back to back are found in the timeline, and every model kind
(Keras run, SavedModel, float and int8 TFLite, waveform-in) streams through predict.py.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import os
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import soxr
from export_helpers import export_tiny_spsmt

from asc_keras.audio import RESAMPLE_QUALITY, AudioError
from asc_keras.config import FeatureConfig
from asc_keras.data import synthetic
from asc_keras.features import compute_features
from asc_keras.inference import classify, loader, streaming

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENES = ("park", "metro", "airport")


@pytest.mark.parametrize("rate", [44100, 48000])
def test_windows_are_slices_of_the_whole_recording(tmp_path, rate):
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(int(3.3 * rate))).astype(np.float32)
    path = str(tmp_path / "x.wav")
    sf.write(path, np.stack([x, x], 1), rate, subtype="FLOAT")
    whole = x if rate == 44100 else soxr.resample(x, rate, 44100, quality=RESAMPLE_QUALITY)
    got = list(
        streaming.windows(path, sample_rate=44100, window=44100, hop=22050, block_seconds=0.37)
    )
    total = len(whole)
    assert [s for s, _, _ in got] == [0, 22050, 44100, 66150, 88200, total - 44100]
    assert got[-1][1] == total
    for s, e, w in got:
        assert len(w) == 44100
        np.testing.assert_allclose(w, whole[s:e], atol=1e-4)
    short = list(streaming.windows(path, sample_rate=44100, window=10 * 44100, hop=44100))
    assert len(short) == 1 and short[0][1] == total and not short[0][2][total:].any()
    with pytest.raises(AudioError, match="file not found"):
        list(streaming.windows(str(tmp_path / "no.wav"), sample_rate=44100, window=1, hop=1))


def test_memory_stays_bounded(tmp_path):
    path = str(tmp_path / "long.wav")
    seconds, rate = 180, 48000
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        for _ in range(seconds // 10):
            f.write(np.full(10 * rate, 0.01, np.float32))
    tracemalloc.start()
    n = sum(1 for _ in streaming.windows(path, sample_rate=44100, window=44100, hop=44100))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == seconds
    assert peak < 3e6, peak  # the whole file as float32 would be 31.8 MB


@dataclasses.dataclass
class _Centroids:
    """A nearest-centroid 'model' over the mean Log-Mel spectrum: softmax of -distance."""

    centroids: np.ndarray  # [C, F]
    input_names: tuple[str, ...] = ("logmel",)

    def __call__(self, features):
        m = features["logmel"].mean(axis=1)  # [B, F]
        d = ((m[:, None, :] - self.centroids[None]) ** 2).mean(-1)  # [B, C]
        e = np.exp(-(d - d.min(1, keepdims=True)))
        return e / e.sum(1, keepdims=True)


def test_three_scenes_back_to_back_are_found(tmp_path):
    cfg = FeatureConfig(representations=("logmel",), clip_seconds=1.0)
    centroids = []
    for scene in SCENES:  # other locations and segments than the recording's
        wave = synthetic.scene_recording([scene] * 3, seconds_each=1.0, seed=11)
        centroids.append(
            compute_features(wave, dataclasses.replace(cfg, clip_seconds=3.0))["logmel"].mean(0)
        )
    classifier = classify.Classifier(
        _Centroids(np.stack(centroids)), cfg, SCENES, None, "centroids"
    )
    path = str(tmp_path / "three.wav")
    sf.write(
        path, synthetic.scene_recording(SCENES, seconds_each=4.0, seed=5), 44100, subtype="PCM_24"
    )
    items = list(streaming.timeline(classifier, path, hop_seconds=0.5))
    assert len(items) == 23 and items[-1].end == pytest.approx(12.0)
    for k, scene in enumerate(SCENES):  # windows wholly inside scene k
        inside = [w.scene for w in items if w.start >= 4 * k and w.end <= 4 * (k + 1)]
        assert len(inside) == 7 and inside.count(scene) >= 6, (scene, inside)
    text = streaming.format_timeline(path, items, SCENES)
    assert text.count("\n") == len(items) + 2 and "overall:" in text


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_1b_features):
    return export_tiny_spsmt(
        tmp_path_factory.mktemp("stream"), tiny_1b_features, spread=10.0, parity_examples=2
    )


def _predict_main():
    spec = importlib.util.spec_from_file_location(
        "asc_predict_main", os.path.join(REPO, "predict.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.slow
def test_every_model_kind_streams(exported, tmp_path, capsys):
    from absl import flags

    from asc_keras import flags as flags_lib

    run_dir, export_dir = exported
    path = str(tmp_path / "three.wav")
    wave = synthetic.scene_recording(SCENES, seconds_each=1.5, seed=2)  # 4.5 s at 44.1 kHz
    wave = soxr.resample(wave, 44100, 48000)
    sf.write(path, np.stack([wave, wave], 1), 48000, subtype="PCM_24")  # resampled per block
    kinds = [
        run_dir,
        os.path.join(export_dir, "saved_model"),
        os.path.join(export_dir, "model.tflite"),
        os.path.join(export_dir, "model_int8.tflite"),
        os.path.join(export_dir, "model_audio.tflite"),
    ]
    flags_lib.define_all()
    timelines = {}
    try:
        for kind in kinds:
            out = str(tmp_path / f"{os.path.basename(kind)}.csv")
            flags.FLAGS.unparse_flags()
            flags_lib.parse(["predict.py", f"--model={kind}", f"--timeline_csv={out}"])
            assert _predict_main()(["predict.py", path]) == 0
            assert "overall:" in capsys.readouterr().out
            with open(out) as f:
                timelines[kind] = list(csv.DictReader(f))
    finally:
        flags.FLAGS.unparse_flags()
    reference = timelines[run_dir]
    assert [r["start"] for r in reference] == ["0.000", "1.000", "2.000", "3.000", "3.500"]
    classes = list(loader.load_classifier(run_dir).classes)
    ref = np.array([[float(r[c]) for c in classes] for r in reference])
    for kind, rows in timelines.items():
        got = np.array([[float(r[c]) for c in classes] for r in rows])
        tol = 0.15 if "int8" in kind else 2e-3
        np.testing.assert_allclose(got, ref, atol=tol, err_msg=kind)
