"""Every part of an ensemble starts from its own initial weights, fixed by (seed, part name).

SPSMF bands and SPSMR members are trained as separate runs (`train.py --model_part=...`, the
reproduction's plan) or inside one joint row model; a part must start from the same weights in
both, and two parts of one seed must not start from the same weights. Tiny widths and frame
counts keep each build well under a second.
"""

from __future__ import annotations

import itertools
import os
import pathlib

import keras
import numpy as np
import pytest

from asc_keras import flags as flags_lib
from asc_keras.config import ModelConfig
from asc_keras.data import manifest as manifest_lib
from asc_keras.data import pipeline
from asc_keras.strategies import build_model, model_part, model_parts

CONFIGS = str(pathlib.Path(__file__).resolve().parents[1] / "configs")
TINY = ("--width=0.04", "--clip_seconds=1")
BINS_1A = {"logmel": 40, "cqt": 64, "gamma": 64, "mfcc": 40}


def row(name: str, *extra: str) -> ModelConfig:
    """The model config of `configs/<name>.flags` shrunk to tiny width (as train.py reads it)."""
    return flags_lib.flagfile_configs(os.path.join(CONFIGS, f"{name}.flags"), TINY + extra)[2]


def weights(model: keras.Model, prefix: str = "") -> dict[str, list[np.ndarray]]:
    """`{layer name: weights}` of the layers with weights whose names start with `prefix`."""
    return {
        layer.name: layer.get_weights()
        for layer in model.layers
        if layer.weights and layer.name.startswith(prefix)
    }


def first_kernel(model: keras.Model, part: str) -> np.ndarray:
    return model.get_layer(f"{part}_block1_conv1").get_weights()[0]


def separate_run(cfg: ModelConfig, seed: int) -> keras.Model:
    """The model a separate run of `cfg` starts from: a fresh process, global RNG at `seed`."""
    keras.utils.set_random_seed(seed)
    return build_model(cfg, seed=seed)


def test_two_bands_of_one_seed_start_from_different_kernels():
    full = row("1a_logmel_spsmf")
    bands = [p.name for p in model_parts(full)]
    assert len(bands) == 5
    kernels = {b: first_kernel(separate_run(model_part(full, b), 0), b) for b in bands}
    for a, b in itertools.combinations(bands, 2):
        assert kernels[a].shape == kernels[b].shape
        assert not np.array_equal(kernels[a], kernels[b]), (a, b)


def test_spsmr_members_of_one_seed_start_from_different_weights():
    full = row("1a_spsmr")
    members = [p.name for p in model_parts(full)]
    assert members == ["logmel", "cqt", "gamma", "mfcc"]
    models = {m: separate_run(model_part(full, m), 0) for m in members}
    for a, b in itertools.combinations(members, 2):
        assert not np.array_equal(first_kernel(models[a], a), first_kernel(models[b], b)), (a, b)
        head_a = models[a].get_layer(f"{a}_fc2").get_weights()[0]
        head_b = models[b].get_layer(f"{b}_fc2").get_weights()[0]
        assert not np.array_equal(head_a, head_b), (a, b)


@pytest.mark.parametrize(
    "name,part",
    [("1a_spsmr", "cqt"), ("1a_logmel_spsmf", "logmel_band3"), ("1a_spsmr_spsmt", "gamma")],
)
def test_a_part_starts_the_same_alone_and_inside_the_joint_model(name, part):
    alone_cfg = row(name, f"--model_part={part}")  # what a separate run builds
    assert alone_cfg == model_part(row(name), part)
    alone = build_model(alone_cfg, seed=4)
    keras.utils.set_random_seed(123)  # global random state must not matter
    joint = build_model(row(name), seed=4)
    expected = weights(alone)
    assert expected and set(expected) <= set(weights(joint, part))
    for layer, values in expected.items():
        for a, b in zip(values, joint.get_layer(layer).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=layer)
    dropout = f"{part}_dropout"  # the same dropout masks too
    assert joint.get_layer(dropout).seed == alone.get_layer(dropout).seed is not None


def test_same_seed_twice_is_bit_identical_and_the_seed_matters():
    cfg = ModelConfig(
        inputs=("logmel", "cqt"),
        input_bins=BINS_1A,
        fusion="spsmr",
        strategies=("spsmf",),
        num_bands=2,
        band_width=32,
        width=0.04,
        num_frames=32,
    )
    keras.utils.set_random_seed(1)
    first = weights(build_model(cfg, seed=7))
    keras.utils.set_random_seed(2)
    again = weights(build_model(cfg, seed=7))
    other = weights(build_model(cfg, seed=8))
    assert first.keys() == again.keys() == other.keys()
    for layer in first:
        for a, b in zip(first[layer], again[layer], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=layer)
    conv = "cqt_band1_block1_conv1"
    assert not np.array_equal(first[conv][0], other[conv][0])


def test_every_part_of_a_seed_sees_the_same_batches(tiny_1a_features):
    """Data order and mixup depend on the seed only, not on which representation a part reads."""
    manifest = manifest_lib.load_manifest(tiny_1a_features[0])

    def labels(representations, seed=3):
        ds = pipeline.train_dataset(
            manifest, representations=representations, batch_size=4, seed=seed, mixup_alpha=0.2
        )
        return np.stack([y for _, y in ds.take(5).as_numpy_iterator()])

    logmel = labels(("logmel",))
    assert not np.isin(logmel, [0.0, 1.0]).all()  # mixed, so mixup draws are compared too
    np.testing.assert_array_equal(logmel, labels(("cqt",)))
    np.testing.assert_array_equal(logmel, labels(("logmel", "cqt", "gamma", "mfcc")))
    assert not np.array_equal(logmel, labels(("logmel",), seed=4))
