"""Tests of asc_keras.audio: decoding 24-bit WAVs, mono, resampling, length checks, errors.

Every file is written into `tmp_path` with soundfile; clips are 1 s (`FeatureConfig(
clip_seconds=1.0)`, 44,100 samples) to stay fast.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import soundfile as sf

from asc_keras.audio import AudioError, decode, fix_length, load_clip, to_mono
from asc_keras.config import FeatureConfig

CFG = FeatureConfig(clip_seconds=1.0)


def _tone(seconds: float, rate: int, *, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return amp * np.sin(2 * np.pi * freq * t)  # [n] float64


def _pcm24(x: np.ndarray) -> np.ndarray:
    """Values exactly representable in 24-bit PCM, as int32 left-aligned codes / 2**31."""
    return np.round(x * 2**23) / 2**23


def test_pcm24_mono_44k_round_trip_is_exact(tmp_path):
    x = _pcm24(_tone(1.0, 44100) + 0.01 * np.random.default_rng(0).standard_normal(44100))
    path = tmp_path / "a.wav"
    sf.write(path, x, 44100, subtype="PCM_24")
    assert sf.info(path).subtype == "PCM_24"
    wave = load_clip(path, CFG)
    assert wave.dtype == np.float32 and wave.shape == (CFG.num_samples,)
    np.testing.assert_array_equal(wave, x.astype(np.float32))


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = _pcm24(_tone(1.0, 44100, freq=300)), _pcm24(_tone(1.0, 44100, freq=700))
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="PCM_24")
    wave = load_clip(path, CFG)
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize("rate", [48000, 22050])
def test_other_rates_are_resampled(tmp_path, rate):
    freq = 1000.0
    stereo = np.stack([_tone(1.0, rate, freq=freq), _tone(1.0, rate, freq=freq)], axis=1)
    path = tmp_path / f"r{rate}.wav"
    sf.write(path, stereo, rate, subtype="PCM_24")
    wave = load_clip(path, CFG)
    assert wave.shape == (44100,) and wave.dtype == np.float32
    # The resampled tone is the same tone at 44.1 kHz (edges excluded: filter transients).
    expected = _tone(1.0, 44100, freq=freq)
    np.testing.assert_allclose(wave[2000:-2000], expected[2000:-2000], atol=2e-3)


def test_pad_and_truncate_within_tolerance(tmp_path):
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    sf.write(short, _tone(0.6, 44100), 44100, subtype="PCM_24")
    sf.write(long, _tone(1.4, 44100), 44100, subtype="PCM_24")
    wave = load_clip(short, CFG)
    assert wave.shape == (44100,)
    assert np.all(wave[int(0.6 * 44100) :] == 0) and np.any(wave[:100] != 0)
    assert load_clip(long, CFG).shape == (44100,)


def test_too_short_names_file_and_duration(tmp_path):
    path = tmp_path / "audio" / "short-clip-a.wav"
    path.parent.mkdir()
    sf.write(path, _tone(0.32, 44100), 44100, subtype="PCM_24")
    with pytest.raises(AudioError) as info:
        load_clip(path, FeatureConfig(clip_seconds=10.0))
    assert str(info.value) == f"{path}: 0.32 s long, expected 10.00 s (+/- 1.00 s)"
    with pytest.raises(AudioError, match="0.32 s long"):
        load_clip(path, CFG, max_length_error_seconds=0.5)
    assert load_clip(path, CFG, max_length_error_seconds=0.7).shape == (44100,)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioError) as info:
        load_clip(path, CFG)
    assert str(info.value) == f"{path}: file not found"


@pytest.mark.parametrize("seed, size", [(0, 2000), (1, 100_000)])
def test_corrupt_bytes(tmp_path, capfd, seed, size):
    # Seed 1 makes libsndfile try its MP3 decoder, which prints an "error:" line of its own to
    # the process's stderr and ends in libsndfile's "File does not exist or is not a regular
    # file": both are wrong for an existing file that is simply no audio.
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    capfd.readouterr()
    with pytest.raises(AudioError) as info:
        load_clip(path, CFG)
    assert str(info.value) == (
        f"{path}: cannot decode audio (not a WAV or any other recognised audio format)"
    )
    assert capfd.readouterr().err == ""


def test_header_only_file(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, _tone(1.0, 44100), 44100, subtype="PCM_24")
    cut = tmp_path / "header.wav"
    cut.write_bytes(good.read_bytes()[:30])
    with pytest.raises(AudioError) as info:
        load_clip(cut, CFG)
    # libsndfile's own detail, without its "Error opening '<path>': " prefix.
    assert str(info.value) == (
        f"{cut}: cannot decode audio (Error in WAV file. No 'data' chunk marker.)"
    )


def test_truncated_wav_is_an_error(tmp_path):
    # libsndfile would silently decode the bytes present; the data-chunk size gives it away,
    # even when the remainder would be within the length tolerance.
    good = tmp_path / "good.wav"
    sf.write(good, _tone(1.0, 44100), 44100, subtype="PCM_24")
    data = good.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) - 3000])
    with pytest.raises(AudioError, match=r"cut\.wav: truncated WAV: data chunk declares 132300"):
        load_clip(cut, CFG)


def test_ulaw_is_rejected(tmp_path):
    path = tmp_path / "ulaw.wav"
    sf.write(path, _tone(1.0, 44100), 44100, subtype="ULAW")
    with pytest.raises(AudioError) as info:
        load_clip(path, CFG)
    assert str(info.value) == (
        f"{path}: unsupported sample format ULAW; expected PCM_16/PCM_24/PCM_32/FLOAT/DOUBLE"
    )


def test_non_finite_float_samples(tmp_path):
    x = _tone(1.0, 44100)
    x[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_clip(path, CFG)


def test_pcm16_and_float_are_accepted(tmp_path):
    for subtype in ("PCM_16", "FLOAT"):
        path = tmp_path / f"{subtype}.wav"
        sf.write(path, _tone(1.0, 44100), 44100, subtype=subtype)
        samples, rate = decode(path)
        assert rate == 44100 and samples.shape == (44100, 1) and samples.dtype == np.float32


def test_audio_error_pickles_and_is_a_value_error():
    err = AudioError("audio/x.wav", "cannot decode WAV (bad\nthing)")
    assert isinstance(err, ValueError)
    assert str(err) == "audio/x.wav: cannot decode WAV (bad thing)"
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, AudioError) and str(back) == str(err) and back.path == "audio/x.wav"


def test_helpers():
    np.testing.assert_array_equal(fix_length(np.ones(3, np.float32), 5), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(fix_length(np.arange(5, dtype=np.float32), 2), [0, 1])
    mono = to_mono(np.array([[1.0, 0.0], [0.5, 0.5]], np.float32))
    assert mono.dtype == np.float32
    np.testing.assert_array_equal(mono, [0.5, 0.5])
