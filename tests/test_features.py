"""Oracle tests of asc_keras.features.spectrograms against librosa and the gammatone package.

Most tests use 1 s clips (`FeatureConfig(clip_seconds=1.0)`: 87 frames); one checks the 862
frames of a 10 s clip for all four representations.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from gammatone import fftweight

from asc_keras.config import FeatureConfig
from asc_keras.features import compute_features
from asc_keras.features.spectrograms import gammatone_weights, mel_filterbank

CFG = FeatureConfig(clip_seconds=1.0)
SR = CFG.sample_rate


def _wave(num_samples: int, seed: int = 0) -> np.ndarray:
    """A chirp in noise with a silent stretch (exercises the -100 dB floor): float32 `[n]`."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / SR
    x = 0.3 * np.sin(2 * np.pi * (200 + 2000 * t) * t) + 0.02 * rng.standard_normal(num_samples)
    x[num_samples // 2 : num_samples // 2 + 4096] = 0.0
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def wave():
    return _wave(CFG.num_samples)


@pytest.fixture(scope="module")
def feats(wave):
    return compute_features(wave, CFG)


def test_shapes_and_dtypes_1s(feats):
    assert list(feats) == list(CFG.representations)
    for name, x in feats.items():
        assert x.shape == (CFG.num_frames, CFG.bins(name)) == (87, CFG.bins(name))
        assert x.dtype == np.float32 and x.flags.c_contiguous and np.isfinite(x).all()


def test_logmel_matches_librosa(wave, feats):
    mel = librosa.feature.melspectrogram(
        y=wave, sr=SR, n_fft=2048, hop_length=512, n_mels=40, fmin=0.0, fmax=22050.0
    )
    ref = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T
    np.testing.assert_allclose(feats["logmel"], ref, atol=1e-3, rtol=0)
    assert feats["logmel"].min() == pytest.approx(-100.0)  # the silent frames


def test_mfcc_matches_librosa(wave, feats):
    ref = librosa.feature.mfcc(y=wave, sr=SR, n_mfcc=40, n_fft=2048, hop_length=512, n_mels=128).T
    np.testing.assert_allclose(feats["mfcc"], ref, atol=1e-3, rtol=1e-5)


def test_cqt_matches_librosa(wave, feats):
    cqt = librosa.cqt(wave, sr=SR, hop_length=512, fmin=220.0, n_bins=64, bins_per_octave=12)
    ref = librosa.amplitude_to_db(np.abs(cqt), ref=1.0, amin=1e-5, top_db=None).T
    np.testing.assert_allclose(feats["cqt"], ref, atol=1e-3, rtol=0)


def test_gammatone_weights_are_the_packages():
    ours = gammatone_weights(sample_rate=SR, n_fft=2048, n_bands=64, fmin=20.0, fmax=22050.0)
    ref, _ = fftweight.fft_weights(2048, SR, 64, 1.0, 20.0, 22050.0, 1025)
    assert ours.shape == (64, 1025) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-12)
    assert np.all(np.diff(ours.argmax(axis=1)) >= 0)  # ascending centre frequency


def test_gamma_matches_reference_from_package_weights(wave, feats):
    weights, _ = fftweight.fft_weights(2048, SR, 64, 1.0, 20.0, 22050.0, 1025)
    power = np.abs(librosa.stft(wave.astype(np.float64), n_fft=2048, hop_length=512)) ** 2
    ref = (10 * np.log10(np.maximum(weights @ power, 1e-10))).T  # weights on the power STFT
    np.testing.assert_allclose(feats["gamma"], ref, atol=1e-3, rtol=0)


def test_top_db_clips_logmel_gamma_cqt():
    cfg = FeatureConfig(clip_seconds=1.0, top_db=40.0)
    feats = compute_features(_wave(cfg.num_samples), cfg)
    for name in ("logmel", "gamma", "cqt"):
        x = feats[name]
        assert x.max() - x.min() == pytest.approx(40.0, abs=1e-3)


def test_subset_of_representations(wave, feats):
    cfg = FeatureConfig(representations=("cqt", "mfcc"), clip_seconds=1.0)
    out = compute_features(wave, cfg)
    assert list(out) == ["cqt", "mfcc"]
    np.testing.assert_array_equal(out["cqt"], feats["cqt"])
    np.testing.assert_array_equal(out["mfcc"], feats["mfcc"])


def test_wrong_length_is_rejected():
    with pytest.raises(ValueError, match=r"expected a mono wave of shape \(44100,\)"):
        compute_features(np.zeros(44000, np.float32), CFG)
    with pytest.raises(ValueError, match="mono wave"):
        compute_features(np.zeros((44100, 2), np.float32), CFG)


def test_filterbanks_are_cached_and_read_only():
    kw = dict(sample_rate=SR, n_fft=2048, n_mels=40, fmin=0.0, fmax=22050.0)
    fb = mel_filterbank(**kw)
    assert fb is mel_filterbank(**kw)
    assert not fb.flags.writeable
    ref = librosa.filters.mel(sr=SR, n_fft=2048, n_mels=40, fmin=0.0, fmax=22050.0)
    np.testing.assert_array_equal(fb, ref)
    gw = gammatone_weights(sample_rate=SR, n_fft=2048, n_bands=64, fmin=20.0, fmax=22050.0)
    assert not gw.flags.writeable


def test_ten_second_clip_has_862_frames_everywhere():
    cfg = FeatureConfig()
    feats = compute_features(_wave(cfg.num_samples, seed=1), cfg)
    assert cfg.num_frames == 862
    assert {k: v.shape for k, v in feats.items()} == {
        "logmel": (862, 40),
        "cqt": (862, 64),
        "gamma": (862, 64),
        "mfcc": (862, 40),
    }
    for x in feats.values():
        assert x.dtype == np.float32 and np.isfinite(x).all()
