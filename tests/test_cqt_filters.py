"""The CQT's reused filter basis: bit-identical to librosa's own CQT, call after call."""

import importlib

import librosa
import numpy as np

from asc_keras.config import FeatureConfig
from asc_keras.features import cqt_filters, spectrograms


def _librosa_db(wave, cfg):
    """The published definition, straight from librosa (no reuse): dB(|CQT|^2), [time, bins]."""
    c = librosa.cqt(
        wave,
        sr=cfg.sample_rate,
        hop_length=cfg.hop_length,
        fmin=cfg.cqt_fmin,
        n_bins=cfg.cqt_bins,
        bins_per_octave=cfg.cqt_bins_per_octave,
    )
    return librosa.power_to_db(np.abs(c) ** 2, ref=1.0, amin=1e-10, top_db=cfg.top_db).T


def test_reused_filters_give_librosa_bytes_on_every_call():
    rng = np.random.default_rng(3)
    for bins in (64, 48):  # two settings: two sets of bases
        cfg = FeatureConfig(
            representations=("cqt",), clip_seconds=1.0, sample_rate=22050, cqt_bins=bins
        )
        for _ in range(3):  # the first call builds, the next reuse (and scale copies in place)
            wave = (0.1 * rng.standard_normal(cfg.num_samples)).astype(np.float32)
            got = spectrograms.cqt_from_wave(wave, cfg)
            np.testing.assert_array_equal(got, _librosa_db(wave, cfg).astype(got.dtype))


def test_librosa_is_left_as_it_was_after_the_block():
    module = importlib.import_module("librosa.core.constantq")
    before = getattr(module, cqt_filters.FILTER_FUNCTION)
    with cqt_filters.reused_filters():
        assert getattr(module, cqt_filters.FILTER_FUNCTION) is not before
    assert getattr(module, cqt_filters.FILTER_FUNCTION) is before


def test_nested_blocks_put_librosa_back_once_the_last_closes():
    module = importlib.import_module("librosa.core.constantq")
    before = getattr(module, cqt_filters.FILTER_FUNCTION)
    with cqt_filters.reused_filters():
        with cqt_filters.reused_filters():
            inner = getattr(module, cqt_filters.FILTER_FUNCTION)
        assert getattr(module, cqt_filters.FILTER_FUNCTION) is inner is not before
    assert getattr(module, cqt_filters.FILTER_FUNCTION) is before
