"""Model sizes: the 22 paper rows at full size from the real flagfiles, and the size rules.

Each row's flagfile is parsed through the summary code path and its full-size model built (no
forward pass); its float32 MiB must be within 1 % of the paper for 1A and 3 % for 1B, and the
1B models must pass the DCASE 2020 500 KB rule.
"""

from __future__ import annotations

import gc
import pathlib
import re

import keras
import numpy as np
import pytest
from conftest import flagfile_params

from asc_keras.config import ModelConfig
from asc_keras.models import model_size
from asc_keras.strategies import build_model
from asc_keras.summary import model_config_from_args

REPO = pathlib.Path(__file__).resolve().parents[1]

# Paper Tables 2-4: 1A in MB (= MiB of float32 weights), 1B in KB (= KiB).
PAPER_SIZES = {
    "1a_logmel": 18.9,
    "1a_cqt": 18.9,
    "1a_gamma": 18.9,
    "1a_mfcc": 18.9,
    "1a_logmel_spsmf": 94.4,
    "1a_cqt_spsmf": 94.4,
    "1a_gamma_spsmf": 94.4,
    "1a_mfcc_spsmf": 94.4,
    "1a_logmel_spsmt": 18.9,
    "1a_cqt_spsmt": 18.9,
    "1a_gamma_spsmt": 18.9,
    "1a_mfcc_spsmt": 18.9,
    "1a_ef": 18.9,
    "1a_mf": 20.2,
    "1a_lf": 72.5,
    "1a_spsmr": 75.5,
    "1a_spsmr_spsmf": 377.6,
    "1a_spsmr_spsmt": 75.5,
    "1a_spsmr_spsmf_spsmt": 453.1,
    "1b_logmel": 468,
    "1b_logmel_spsmt": 468,
    "1b_ef_spsmt": 491,
}


def test_every_row_has_a_flagfile_naming_its_paper_size():
    files = {p.stem: p for p in (REPO / "configs").glob("1[ab]_*.flags")}
    assert set(files) == set(PAPER_SIZES)
    for row, path in files.items():
        lines = path.read_text().splitlines()
        assert lines[0] == f"--flagfile=base_{row[:2]}.flags"
        comments = [line for line in lines if line.startswith("#")]
        unit = "MB" if row.startswith("1a") else "KB"
        assert any(re.search(rf"Tables? \d.*: {PAPER_SIZES[row]} {unit}", c) for c in comments), row
        assert not any("/" in line for line in lines[1:] if not line.startswith("#")), row


@pytest.mark.parametrize("row", flagfile_params(sorted(PAPER_SIZES)))
def test_full_size_row_matches_the_paper(row, monkeypatch):
    monkeypatch.chdir("/")  # nested flagfiles resolve against the including file, from anywhere
    cfg = model_config_from_args([f"--flagfile={REPO / 'configs' / f'{row}.flags'}"])
    assert cfg.width == 1.0 and cfg.num_frames == 862
    keras.backend.clear_session()
    gc.collect()
    size = model_size(build_model(cfg))
    if row.startswith("1a"):
        assert size.mib_float32 == pytest.approx(PAPER_SIZES[row], rel=0.01)
    else:
        assert size.kib_float32 == pytest.approx(PAPER_SIZES[row], rel=0.03)
        assert size.dcase_kb == pytest.approx(PAPER_SIZES[row], rel=0.03)
        assert size.within_1b_limit
    keras.backend.clear_session()
    gc.collect()


def tiny_model(**kwargs) -> keras.Model:
    return build_model(ModelConfig(width=0.125, num_frames=64, **kwargs))


def test_float32_size_counts_every_weight_including_batchnorm_statistics():
    model = tiny_model()
    size = model_size(model)
    assert size.params == model.count_params() == sum(int(np.prod(v.shape)) for v in model.weights)
    assert size.trainable_params < size.params
    assert size.mib_float32 == size.params * 4 / 2**20


def test_dcase_rule_excludes_batchnorm_and_zeros():
    model = tiny_model(strategies=("spsmt",))  # TimeDistributed wraps the head's Dense layers
    batchnorm = sum(
        layer.count_params()
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    zero_biases = sum(  # Dense biases start at zero
        int(np.prod(v.shape)) for v in model.weights if v.path.endswith("bias")
    )
    size = model_size(model)
    assert batchnorm > 0 and zero_biases > 0
    assert size.dcase_params == size.params - batchnorm - zero_biases
    assert size.dcase_bytes == 4 * size.dcase_params
    assert size.dcase_kb == size.dcase_bytes / 1024
    kernel = model.get_layer("logmel_block1_conv1").kernel
    kernel.assign(np.zeros(kernel.shape, "float32"))
    assert model_size(model).dcase_params == size.dcase_params - int(np.prod(kernel.shape))


def test_dcase_rule_counts_bytes_by_dtype():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float16")
    try:
        model = tiny_model()
    finally:
        keras.config.set_dtype_policy(policy)
    size = model_size(model)
    assert size.dcase_bytes == 2 * size.dcase_params
    assert size.mib_float32 == size.params * 4 / 2**20  # the paper figure stays float32
