"""In-graph frontends: the Log-Mel spectrogram of a waveform, and per-bin feature normalization.

Both are registered, weightless Keras layers whose `call` is made of TensorFlow ops only, so a
model that holds them exports to a SavedModel and converts to TFLite. They let one set of trained
weights serve "features in" and "audio in" (the YAMNet pattern):

    waveform [batch, num_samples] --LogMelSpectrogram--> [batch, num_frames, n_mels]
        --FeatureNormalization--> [batch, num_frames, n_mels] --trained network--> probs

- `LogMelSpectrogram` reproduces `asc_keras.features.spectrograms.logmel_from_power` of
  `compute_features` (librosa): zero centre padding of `n_fft // 2` samples on both sides
  (librosa >= 0.10's `pad_mode='constant'`), frames of `n_fft` every `hop_length` samples
  (`1 + num_samples // hop_length` frames), the periodic Hann window (librosa's
  `get_window('hann', n_fft, fftbins=True)`, the same numbers as
  `tf.signal.hann_window(n_fft, periodic=True)`), a real FFT, power `re^2 + im^2`, the librosa
  mel filterbank (Slaney scale and area norm, the very matrix `compute_features` uses, as a
  constant), then `10 * log10(max(mel, amin))` (and the optional `top_db` clip below the clip's
  maximum). The FFT runs in float32 here and in float64 inside librosa: the difference is
  measured in `tests/test_frontend.py` (well under 0.01 dB above the floor).
- `FeatureNormalization` standardizes each frequency bin with fixed training-split statistics,
  `(x - mean) / std`, `[..., freq] -> [..., freq]`, exactly what the input pipeline does.
"""

from __future__ import annotations

import keras
import numpy as np

from asc_keras.features.spectrograms import AMIN_POWER, mel_filterbank

PACKAGE = "asc_keras"


@keras.saving.register_keras_serializable(package=PACKAGE)
class LogMelSpectrogram(keras.layers.Layer):
    """Log-Mel spectrogram of a mono waveform, as `compute_features` computes `logmel`.

    Args:
        sample_rate: Sample rate of the waveform in Hz.
        n_fft: Window and FFT size (a power of two for TFLite's RFFT).
        hop_length: Hop between frames in samples.
        n_mels: Mel bands.
        fmin: Lowest mel frequency in Hz.
        fmax: Highest mel frequency in Hz.
        amin: Floor of the mel power before the logarithm.
        top_db: If set, values more than `top_db` below the clip's maximum are raised to it.

    Input `[batch, num_samples]` float32; output `[batch, 1 + num_samples // hop_length, n_mels]`
    float32 in dB.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 44100,
        n_fft: int = 2048,
        hop_length: int = 512,
        n_mels: int = 40,
        fmin: float = 0.0,
        fmax: float = 22050.0,
        amin: float = AMIN_POWER,
        top_db: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.amin = float(amin)
        self.top_db = None if top_db is None else float(top_db)
        fb = mel_filterbank(
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
        )  # [n_mels, 1 + n_fft // 2]
        self._mel_matrix = np.ascontiguousarray(fb.T, dtype=np.float32)  # [1 + n_fft//2, n_mels]
        n = np.arange(self.n_fft, dtype=np.float64)
        # Periodic Hann: librosa's get_window('hann', n_fft, fftbins=True).
        self._window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / self.n_fft)).astype(np.float32)

    def call(self, waveform):
        import tensorflow as tf

        waveform = tf.convert_to_tensor(waveform, tf.float32)  # [b, n]
        pad = self.n_fft // 2
        x = tf.pad(waveform, [[0, 0], [pad, pad]])  # [b, n + n_fft]
        frames = tf.signal.frame(x, self.n_fft, self.hop_length, axis=-1)  # [b, t, n_fft]
        frames = frames * tf.constant(self._window)  # [b, t, n_fft]
        spectrum = tf.signal.rfft(frames)  # [b, t, 1 + n_fft // 2] complex64
        power = tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum))
        mel = tf.tensordot(power, tf.constant(self._mel_matrix), axes=1)  # [b, t, n_mels]
        mel = tf.maximum(mel, self.amin)
        db = (10.0 / np.log(10.0)) * tf.math.log(mel)  # [b, t, n_mels]
        if self.top_db is not None:
            peak = tf.reduce_max(db, axis=[1, 2], keepdims=True)  # [b, 1, 1]
            db = tf.maximum(db, peak - self.top_db)
        return db

    def compute_output_shape(self, input_shape):
        n = input_shape[1]
        frames = None if n is None else 1 + n // self.hop_length
        return (input_shape[0], frames, self.n_mels)

    def get_config(self):
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            amin=self.amin,
            top_db=self.top_db,
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class FeatureNormalization(keras.layers.Layer):
    """Fixed per-frequency-bin standardization, `(x - mean) / std`.

    Args:
        mean: `[freq]` training-split mean.
        std: `[freq]` training-split standard deviation (positive; floored by the caller as the
            input pipeline floors it).

    Input and output `[..., freq]` float32.
    """

    def __init__(self, *, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean = np.asarray(mean, np.float32).reshape(-1)  # [freq]
        self.std = np.asarray(std, np.float32).reshape(-1)  # [freq]
        if self.mean.shape != self.std.shape:
            raise ValueError(f"mean {self.mean.shape} and std {self.std.shape} differ in shape")
        if not (np.all(np.isfinite(self.mean)) and np.all(self.std > 0)):
            raise ValueError("normalization needs finite means and positive stds")

    def call(self, x):
        import tensorflow as tf

        return (x - tf.constant(self.mean)) / tf.constant(self.std)  # [..., freq]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(mean=self.mean.tolist(), std=self.std.tolist())
        return config
