"""The in-graph Log-Mel layer against `compute_features` (librosa), its saving and TFLite.

Tolerance, and why: librosa computes the FFT in float64 and rounds to complex64, the layer runs
a float32 FFT. The rounding error of a float32 FFT is about 1e-7 of the frame's largest
component, so a mel band far below the frame's peak carries a relative error that grows as the
band gets weaker: measured on 10 s clips, at most 2e-4 dB within 60 dB of the frame peak, 1e-3
dB within 80 dB, 6e-3 dB at 100 dB below it, and up to about 0.2 dB only for bands near the
-100 dB floor that sit 120 dB or more under a pure tone. The checks: at most 0.01 dB on every
value above -80 dB (20 dB over the floor) and within 100 dB of its frame's peak, at most 0.5 dB
anywhere, and a noise-like scene (every band within 40 dB of the peak) within 1e-3 dB.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from asc_keras.config import FeatureConfig
from asc_keras.features import compute_features
from asc_keras.features.normalization import normalize
from asc_keras.models.frontend import FeatureNormalization, LogMelSpectrogram

SR = 44100
CFG_1B = FeatureConfig(clip_seconds=1.0, logmel_bins=64, representations=("logmel",))
CFG_1A = FeatureConfig(clip_seconds=1.0, logmel_bins=40, representations=("logmel",))


def _signals(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(n) / SR
    brown = np.cumsum(rng.standard_normal(n))
    brown = brown - np.convolve(brown, np.ones(2048) / 2048, mode="same")  # no DC drift
    half_silent = 0.2 * rng.standard_normal(n)
    half_silent[n // 2 :] = 0.0  # digital silence: the -100 dB floor in the second half
    return {
        "noise": 0.1 * rng.standard_normal(n),
        "brown": 0.01 * brown,
        "tones": 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.sin(2 * np.pi * 5000 * t),
        "chirp": 0.5 * np.sin(2 * np.pi * (50 * t + 8000 * t**2)),
        "quiet": 1e-4 * rng.standard_normal(n),
        "half_silent": half_silent,
        "full_scale": np.clip(3 * rng.standard_normal(n), -1, 1),
    }


def _layer(cfg: FeatureConfig) -> LogMelSpectrogram:
    return LogMelSpectrogram(
        sample_rate=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        n_mels=cfg.logmel_bins,
        fmin=cfg.logmel_fmin,
        fmax=cfg.logmel_fmax,
        top_db=cfg.top_db,
    )


@pytest.mark.parametrize("cfg", [CFG_1B, CFG_1A], ids=["1b_64_bins", "1a_40_bins"])
def test_logmel_layer_matches_compute_features(cfg):
    layer = _layer(cfg)
    for name, wave in _signals(cfg.num_samples).items():
        wave = wave.astype(np.float32)
        ref = compute_features(wave, cfg)["logmel"]  # [T, F]
        got = np.asarray(layer(wave[None]))[0]  # [T, F]
        assert got.shape == ref.shape == (cfg.num_frames, cfg.logmel_bins), name
        diff = np.abs(got - ref)
        below_peak = ref.max(axis=1, keepdims=True) - ref
        above_floor = (ref > -80.0) & (below_peak < 100.0)
        assert diff[above_floor].max() < 0.01, (name, diff[above_floor].max())
        assert diff.max() < 0.5, (name, diff.max())
        if name in ("noise", "full_scale"):
            assert diff.max() < 1e-3, (name, diff.max())
        if name == "half_silent":  # frames of pure zeros sit on the -100 dB floor
            np.testing.assert_allclose(got[-5:], -100.0, atol=1e-4)
            np.testing.assert_allclose(ref[-5:], -100.0, atol=1e-4)


def test_logmel_layer_top_db():
    cfg = dataclasses.replace(CFG_1B, top_db=60.0)
    wave = _signals(cfg.num_samples)["tones"].astype(np.float32)
    ref = compute_features(wave, cfg)["logmel"]
    got = np.asarray(_layer(cfg)(wave[None]))[0]
    assert got.min() == pytest.approx(ref.max() - 60.0, abs=0.01)
    assert np.abs(got - ref).max() < 0.01


def test_frontend_layers_save_and_load(tmp_path):
    cfg = CFG_1B
    mean = np.linspace(-50, -20, cfg.logmel_bins).astype(np.float32)
    std = np.linspace(5, 12, cfg.logmel_bins).astype(np.float32)
    wave_in = keras.Input((cfg.num_samples,), name="waveform")
    x = _layer(cfg)(wave_in)
    x = FeatureNormalization(mean=mean, std=std, name="logmel_normalization")(x)
    model = keras.Model(wave_in, x)
    path = str(tmp_path / "frontend.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    wave = _signals(cfg.num_samples)["noise"].astype(np.float32)[None]
    np.testing.assert_array_equal(np.asarray(loaded(wave)), np.asarray(model(wave)))
    # The normalization equals the input pipeline's (x - mean) / std.
    expected = normalize(compute_features(wave[0], cfg)["logmel"], mean, std)
    assert np.abs(np.asarray(model(wave))[0] - expected).max() < 1e-3
    config = loaded.get_layer("logmel_normalization").get_config()
    assert config["mean"] == pytest.approx(mean.tolist())


def test_frontend_layer_rejects_bad_statistics():
    with pytest.raises(ValueError, match="positive stds"):
        FeatureNormalization(mean=[0.0, 1.0], std=[1.0, 0.0])
    with pytest.raises(ValueError, match="differ in shape"):
        FeatureNormalization(mean=[0.0, 1.0], std=[1.0])
