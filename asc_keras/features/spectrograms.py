"""The paper's four spectrograms of one clip, as pure numpy functions.

Input: a float32 mono wave `[cfg.num_samples]` at `cfg.sample_rate` (see `asc_keras.audio`).
Output of `compute_features`: `{name: float32 [cfg.num_frames, cfg.bins(name)]}` for the names in
`cfg.representations`; 862 frames for a 10 s clip at 44.1 kHz with hop 512. librosa works in
`[freq, time]`; everything here is transposed to the project's `[time, freq]`.

One STFT is shared: X = librosa.stft(wave, n_fft, hop_length, window='hann', center=True,
pad_mode='constant') (librosa's defaults), `[time, F]` with F = 1 + n_fft // 2, and
P = |X|^2 its power. With dB(v) = 10 * log10(max(v, 1e-10)), clipped at `cfg.top_db` below the
clip's maximum when `cfg.top_db` is set (librosa.power_to_db with ref 1.0):

- `logmel` = dB(P @ M.T), M the librosa mel filterbank (Slaney scale, Slaney area norm) with
  `cfg.logmel_bins` bands between `cfg.logmel_fmin` and `cfg.logmel_fmax`. Equal to
  `power_to_db(librosa.feature.melspectrogram(y=wave, ...))`.
- `mfcc` = librosa.feature.mfcc(S=power_to_db(P @ M128.T, top_db=80), n_mfcc=cfg.mfcc_bins): the
  orthonormal DCT-II of the 128-band log-mel (fmin 0, fmax Nyquist). The 80 dB clip is librosa's
  own inside `librosa.feature.mfcc(y=...)`, so the result equals librosa's MFCC of the wave; it
  does not follow `cfg.top_db`.
- `gamma` = dB(P @ W.T) = 10 * log10(max(P @ W.T, 1e-10)), P the same power STFT, W the Ellis
  FFT gammatone weights from `gammatone.fftweight.fft_weights(n_fft, sr, cfg.gamma_bins, 1.0,
  cfg.gamma_fmin, cfg.gamma_fmax, 1 + n_fft // 2)`, bands in ascending centre frequency
  (the weights applied to the power STFT, then dB). The package's own
  `fft_gtgram` weights the magnitude instead and frames differently (854 instead of 862 frames
  per 10 s), so only its weights are used.
- `cqt` = dB(|C|^2) = 20 * log10(max(|C|, 1e-5)) with C = librosa.cqt(wave, sr, hop_length,
  fmin=cfg.cqt_fmin, n_bins=cfg.cqt_bins, bins_per_octave=cfg.cqt_bins_per_octave) (librosa's
  defaults otherwise: tuning 0, Hann wavelets, L1 norm, length scaling). This is
  `librosa.amplitude_to_db(|C|, ref=1.0, amin=1e-5)`, whose floor (1e-5 in amplitude = 1e-10 in
  power) matches the other three. The CQT needs its own multi-rate transform, not the STFT.

Filterbanks are built once per setting (`functools.lru_cache`) and returned read-only; the
CQT's filter basis too (`cqt_filters.reused_filters`, bit-identical to librosa's own).
"""

from __future__ import annotations

import functools

import librosa
import numpy as np
from gammatone import fftweight
from threadpoolctl import threadpool_limits

from asc_keras.config import FeatureConfig
from asc_keras.features import cqt_filters

# Bumped whenever a definition below changes the numbers: it is part of the features cache key
# and of every manifest, so features computed by older code are never reused.
FEATURE_CODE_VERSION = 2
AMIN_POWER = 1e-10  # floor of every power before 10 * log10: -100 dB
MFCC_TOP_DB = 80.0  # librosa.feature.mfcc's own clip of its log-mel
GAMMATONE_WIDTH = 1.0  # band width in ERB, the package's (and Ellis') default


@functools.lru_cache(maxsize=16)
def mel_filterbank(
    *, sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """librosa's mel filterbank (Slaney scale and area norm): float32 `[n_mels, 1 + n_fft // 2]`.

    Cached per setting; the returned array is read-only.
    """
    fb = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float32
    )  # [n_mels, 1 + n_fft // 2]
    fb.setflags(write=False)
    return fb


@functools.lru_cache(maxsize=16)
def gammatone_weights(
    *, sample_rate: int, n_fft: int, n_bands: int, fmin: float, fmax: float
) -> np.ndarray:
    """Ellis' FFT gammatone weights from the `gammatone` package: float32 `[n_bands, 1 + n_fft//2]`.

    Rows are in ascending centre frequency (ERB-spaced between `fmin` and `fmax`). Cached per
    setting; the returned array is read-only.
    """
    weights, _ = fftweight.fft_weights(
        n_fft, sample_rate, n_bands, GAMMATONE_WIDTH, fmin, fmax, n_fft // 2 + 1
    )  # [n_bands, 1 + n_fft // 2] float64
    weights = weights.astype(np.float32)
    weights.setflags(write=False)
    return weights


def _to_db(power: np.ndarray, *, top_db: float | None) -> np.ndarray:
    """dB(power) = 10 * log10(max(power, 1e-10)), optionally clipped top_db below the max."""
    return librosa.power_to_db(power, ref=1.0, amin=AMIN_POWER, top_db=top_db)


def stft_magnitude(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """|STFT| shared by logmel, gamma and mfcc.

    Args:
        wave: float32 `[n]`.
        cfg: gives `n_fft` and `hop_length`.

    Returns:
        float32 `[1 + n // hop_length, 1 + n_fft // 2]` (Hann window, centred frames).
    """
    stft = librosa.stft(
        wave, n_fft=cfg.n_fft, hop_length=cfg.hop_length, window="hann", center=True
    )  # [1 + n_fft // 2, time] complex64
    return np.abs(stft).T  # [time, 1 + n_fft // 2]


def logmel_from_power(power: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel spectrogram: float32 `[time, 1 + n_fft // 2]` power -> `[time, cfg.logmel_bins]`."""
    fb = mel_filterbank(
        sample_rate=cfg.sample_rate,
        n_fft=cfg.n_fft,
        n_mels=cfg.logmel_bins,
        fmin=cfg.logmel_fmin,
        fmax=cfg.logmel_fmax,
    )  # [logmel_bins, 1 + n_fft // 2]
    mel = power @ fb.T  # [time, logmel_bins]
    return _to_db(mel, top_db=cfg.top_db)  # [time, logmel_bins]


def mfcc_from_power(power: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """MFCC: float32 `[time, 1 + n_fft // 2]` power -> `[time, cfg.mfcc_bins]`."""
    fb = mel_filterbank(
        sample_rate=cfg.sample_rate,
        n_fft=cfg.n_fft,
        n_mels=cfg.mfcc_mels,
        fmin=0.0,
        fmax=cfg.sample_rate / 2.0,
    )  # [mfcc_mels, 1 + n_fft // 2]
    log_mel = _to_db(power @ fb.T, top_db=MFCC_TOP_DB)  # [time, mfcc_mels]
    coeffs = librosa.feature.mfcc(S=log_mel.T, n_mfcc=cfg.mfcc_bins)  # [mfcc_bins, time]
    return coeffs.T  # [time, mfcc_bins]


def gamma_from_power(power: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Gammatone spectrogram: float32 power `[time, 1 + n_fft // 2]` -> `[time, gamma_bins]`."""
    weights = gammatone_weights(
        sample_rate=cfg.sample_rate,
        n_fft=cfg.n_fft,
        n_bands=cfg.gamma_bins,
        fmin=cfg.gamma_fmin,
        fmax=cfg.gamma_fmax,
    )  # [gamma_bins, 1 + n_fft // 2]
    return _to_db(power @ weights.T, top_db=cfg.top_db)  # [time, gamma_bins]


def cqt_from_wave(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Constant-Q spectrogram in dB: float32 `[n]` -> `[1 + n // hop_length, cfg.cqt_bins]`."""
    with cqt_filters.reused_filters():  # the filter basis built once per setting, same values
        cqt = librosa.cqt(
            wave,
            sr=cfg.sample_rate,
            hop_length=cfg.hop_length,
            fmin=cfg.cqt_fmin,
            n_bins=cfg.cqt_bins,
            bins_per_octave=cfg.cqt_bins_per_octave,
        )  # [cqt_bins, time] complex64
    magnitude = np.abs(cqt)  # [cqt_bins, time]
    return _to_db(np.square(magnitude), top_db=cfg.top_db).T  # [time, cqt_bins]


@threadpool_limits.wrap(limits=1)
def compute_features(wave: np.ndarray, cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """Every representation in `cfg.representations` of one clip, sharing one STFT.

    Runs with one BLAS thread whatever the process's setting: float32 matrix products round
    differently with other thread counts (by about 1e-5), and precompute's worker processes, a
    resumed run's main process and predict must all get the same bytes.

    Args:
        wave: mono `[cfg.num_samples]` at `cfg.sample_rate` (cast to float32).
        cfg: the feature settings.

    Returns:
        `{name: float32 C-contiguous [cfg.num_frames, cfg.bins(name)]}` in the order of
        `cfg.representations`.

    Raises:
        ValueError: `wave` is not 1-D of length `cfg.num_samples`.
    """
    wave = np.ascontiguousarray(wave, dtype=np.float32)  # [num_samples]
    if wave.shape != (cfg.num_samples,):
        raise ValueError(
            f"expected a mono wave of shape ({cfg.num_samples},), got {wave.shape}; "
            "load it with asc_keras.audio.load_clip"
        )
    names = cfg.representations
    power = None
    if {"logmel", "gamma", "mfcc"} & set(names):
        power = np.square(stft_magnitude(wave, cfg))  # [num_frames, 1 + n_fft // 2]
    out = {}
    for name in names:
        if name == "logmel":
            feat = logmel_from_power(power, cfg)
        elif name == "mfcc":
            feat = mfcc_from_power(power, cfg)
        elif name == "gamma":
            feat = gamma_from_power(power, cfg)
        else:  # "cqt"; FeatureConfig admits no other name
            feat = cqt_from_wave(wave, cfg)
        feat = np.ascontiguousarray(feat, dtype=np.float32)  # [num_frames, bins(name)]
        if feat.shape != (cfg.num_frames, cfg.bins(name)):
            raise RuntimeError(
                f"{name}: computed shape {feat.shape}, expected {(cfg.num_frames, cfg.bins(name))}"
            )
        out[name] = feat
    return out
