"""Tests of asc_keras.features.normalization: streaming per-bin mean/std, merging, JSON state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from asc_keras.features import RunningStats, normalize


def _clips(seed: int, n: int, bins: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    offsets = np.linspace(-60.0, 20.0, bins)
    return [
        (offsets + 5.0 * rng.standard_normal((int(rng.integers(5, 40)), bins))).astype(np.float32)
        for _ in range(n)
    ]


def test_updates_equal_stats_of_concatenation():
    clips = _clips(0, 7)
    stats = RunningStats(8)
    for x in clips:
        stats.update(x)
    allx = np.concatenate(clips).astype(np.float64)
    assert stats.count == allx.shape[0]
    np.testing.assert_allclose(stats.mean, allx.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.std, allx.std(axis=0), rtol=1e-12)


def test_merge_equals_stats_over_concatenation():
    a_clips, b_clips = _clips(1, 5), _clips(2, 3)
    a, b = RunningStats(8), RunningStats(8)
    for x in a_clips:
        a.update(x)
    for x in b_clips:
        b.update(x)
    assert a.merge(b) is a
    allx = np.concatenate(a_clips + b_clips).astype(np.float64)
    assert a.count == allx.shape[0]
    np.testing.assert_allclose(a.mean, allx.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.std, allx.std(axis=0), rtol=1e-12)
    # Merging an empty one changes nothing; merging into an empty one copies.
    before = a.to_dict()
    a.merge(RunningStats(8))
    assert a.to_dict() == before
    c = RunningStats(8).merge(a)
    np.testing.assert_array_equal(c.mean, a.mean)


def test_dict_round_trip_through_json_is_exact():
    stats = RunningStats(8, std_floor=1e-4)
    for x in _clips(3, 4):
        stats.update(x)
    back = RunningStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert back.count == stats.count and back.std_floor == 1e-4
    np.testing.assert_array_equal(back.mean, stats.mean)
    np.testing.assert_array_equal(back.std, stats.std)
    assert back.mean.dtype == np.float64


def test_std_floor_on_constant_bin():
    stats = RunningStats(2)
    stats.update(np.array([[1.0, 3.0], [1.0, 5.0]], np.float32))
    np.testing.assert_array_equal(stats.std, [1e-5, 1.0])


def test_errors():
    stats = RunningStats(4)
    with pytest.raises(ValueError, match="no frames"):
        _ = stats.mean
    with pytest.raises(ValueError, match=r"expected \[time, 4\]"):
        stats.update(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        stats.update(np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match="cannot merge"):
        stats.merge(RunningStats(5))


def test_normalize_standardizes_each_bin():
    x = np.concatenate(_clips(4, 3))
    stats = RunningStats(8)
    stats.update(x)
    z = normalize(x, stats.mean, stats.std)
    assert z.dtype == np.float32 and z.shape == x.shape
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-5)
