"""Every fusion and strategy at tiny width: shapes, fusion arithmetic, save/load, parts, flags.

The 22 paper rows are read from the real flagfiles in `configs/` (through the summary code
path), then shrunk to width 0.125 and 64 frames so each builds and runs in well under a second.
"""

from __future__ import annotations

import dataclasses
import pathlib

import keras
import numpy as np
import pytest
from conftest import flagfile_params

from asc_keras.config import ModelConfig
from asc_keras.models import framewise_categorical_crossentropy, load_model
from asc_keras.strategies import (
    assemble_model,
    band_bounds,
    build_model,
    fusion_weights_of_parts,
    loss_outputs,
    model_part,
    model_parts,
)
from asc_keras.summary import model_config_from_args

REPO = pathlib.Path(__file__).resolve().parents[1]
ROWS = sorted(p.stem for p in (REPO / "configs").glob("1[ab]_*.flags"))
BINS_1A = {"logmel": 40, "cqt": 64, "gamma": 64, "mfcc": 40}
REPS = tuple(BINS_1A)
TINY = dict(width=0.125, num_frames=64)


def row_config(row: str, monkeypatch) -> ModelConfig:
    monkeypatch.chdir(REPO)  # nested flagfile paths are relative to the repo root
    return model_config_from_args([f"--flagfile=configs/{row}.flags"])


def random_inputs(cfg: ModelConfig, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        n: rng.standard_normal((batch, *shape)).astype("float32")
        for n, shape in cfg.input_shapes.items()
    }


def run(model, x) -> dict[str, np.ndarray]:
    return {k: keras.ops.convert_to_numpy(v) for k, v in model(x, training=False).items()}


def test_rows_are_the_22_paper_rows():
    assert len(ROWS) == 22
    assert sum(r.startswith("1b_") for r in ROWS) == 3


@pytest.mark.parametrize("row", flagfile_params(ROWS))
def test_row_tiny_builds_runs_and_reloads(row, monkeypatch, tmp_path):
    cfg = dataclasses.replace(row_config(row, monkeypatch), **TINY)
    model = build_model(cfg)
    assert all("/" not in layer.name for layer in model.layers)
    parts = model_parts(cfg)
    expected = {"probs"} | {p.output for p in parts}
    assert set(model.output_names) == expected

    x = random_inputs(cfg)
    out = run(model, x)
    assert out["probs"].shape == (2, cfg.num_classes)
    np.testing.assert_allclose(out["probs"].sum(-1), 1.0, atol=1e-5)
    fused = np.zeros_like(out["probs"])
    for p in parts:
        y = out[p.output]
        if p.kind == "frames":
            assert y.ndim == 3 and y.shape[0] == 2 and y.shape[2] == cfg.num_classes
            np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)
            y = y.mean(axis=1)
        else:
            assert y.shape == (2, cfg.num_classes)
        fused += p.weight * y
    np.testing.assert_allclose(out["probs"], fused, atol=1e-6)

    path = tmp_path / f"{row}.keras"
    model.save(path)
    keras.backend.clear_session()
    reloaded = keras.saving.load_model(path, safe_mode=True)
    reloaded_out = run(reloaded, x)
    assert set(reloaded_out) == set(out)
    for name, y in out.items():
        np.testing.assert_array_equal(reloaded_out[name], y, err_msg=name)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(inputs=("logmel",), fusion="single"),
        dict(inputs=REPS, fusion="ef"),
        dict(inputs=REPS, fusion="mf"),
        dict(inputs=REPS, fusion="lf"),
        dict(inputs=REPS, fusion="spsmr"),
        dict(inputs=("cqt",), fusion="single", strategies=("spsmf",)),
    ],
    ids=["single", "ef", "mf", "lf", "spsmr", "spsmf"],
)
def test_spsmt_adds_no_parameters(kwargs):
    cfg = ModelConfig(input_bins=BINS_1A, **TINY, **kwargs)
    plain = build_model(cfg).count_params()
    with_spsmt = build_model(dataclasses.replace(cfg, strategies=(*cfg.strategies, "spsmt")))
    extra = 0
    if "spsmf" in cfg.strategies:  # SPSMF + SPSMT adds the SPSMT system's CNN(s)
        extra = build_model(dataclasses.replace(cfg, strategies=())).count_params()
    assert with_spsmt.count_params() == plain + extra


@pytest.mark.parametrize("bins,hop", [(40, 6), (64, 12)])
def test_spsmf_bands_cover_every_bin(bins, hop):
    bounds = band_bounds(bins, num_bands=5, width=16)
    assert [s for s, _ in bounds] == [k * hop for k in range(5)]
    assert all(e - s == 16 for s, e in bounds)
    covered = set().union(*(range(s, e) for s, e in bounds))
    assert covered == set(range(bins))


@pytest.mark.parametrize("bins,num_bands,width", [(40, 2, 16), (40, 5, 41), (40, 1, 16)])
def test_spsmf_bands_that_cannot_cover_raise(bins, num_bands, width):
    with pytest.raises(ValueError):
        band_bounds(bins, num_bands=num_bands, width=width)


def test_spsmf_band_sees_its_bins():
    cfg = ModelConfig(input_bins=BINS_1A, strategies=("spsmf",), band=4, **TINY)
    model = build_model(cfg)
    cut = keras.Model(model.inputs, model.get_layer("logmel_band4_cut").output)
    x = random_inputs(cfg)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(cut(x))[..., 0], x["logmel"][:, :, 24:40]
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(inputs=REPS, fusion="mf", strategies=("spsmf",)), "SPSMF"),
        (dict(inputs=REPS, fusion="lf", strategies=("spsmf", "spsmt")), "SPSMF"),
        (dict(inputs=("logmel", "cqt"), fusion="single"), "one input"),
        (dict(inputs=("logmel",), fusion="spsmr"), "two or more"),
        (dict(strategies=("spsmx",)), "strategies"),
        (dict(band=1), "band"),
        (dict(strategies=("spsmf",), band=5), "band"),
        (dict(inputs=REPS, fusion="spsmr", strategies=("spsmf",), band=0), "band"),
        (dict(backbone="2a"), "backbone"),
        (dict(inputs=("logmel",), input_bins={"cqt": 64}), "input_bins"),
    ],
)
def test_unsupported_combinations_raise(kwargs, match):
    kwargs = {"input_bins": BINS_1A, **kwargs}
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


def test_band_too_wide_for_input_raises_at_build():
    cfg = ModelConfig(input_bins={"logmel": 12}, strategies=("spsmf",), **TINY)
    with pytest.raises(ValueError, match="does not fit"):
        build_model(cfg)


def test_parts_built_alone_assemble_into_the_fused_model():
    cfg = ModelConfig(
        inputs=("logmel", "cqt"),
        input_bins=BINS_1A,
        fusion="spsmr",
        strategies=("spsmf", "spsmt"),
        num_bands=2,
        band_width=32,
        **TINY,
    )
    parts = model_parts(cfg)
    assert [p.name for p in parts] == [
        "logmel_band0",
        "logmel_band1",
        "cqt_band0",
        "cqt_band1",
        "logmel",
        "cqt",
    ]
    assert sum(p.weight for p in parts) == pytest.approx(1.0)
    x = random_inputs(cfg)
    part_models, fused = {}, 0.0
    for i, p in enumerate(parts):
        keras.utils.set_random_seed(i)  # each part different, as after separate runs
        part_models[p.name] = model = build_model(model_part(cfg, p.name))
        out = run(model, {n: x[n] for n in p.config.inputs})
        assert set(out) == ({"probs", "frames"} if p.kind == "frames" else {"probs"})
        fused = fused + p.weight * out["probs"]
    assembled = run(assemble_model(cfg, part_models), x)
    np.testing.assert_allclose(assembled["probs"], fused, atol=1e-6)
    with pytest.raises(ValueError, match="no trained model"):
        assemble_model(cfg, {k: v for k, v in part_models.items() if k != "cqt"})


def test_loss_outputs_contract():
    def outputs(**kwargs):
        return loss_outputs(build_model(ModelConfig(input_bins=BINS_1A, **TINY, **kwargs)))

    assert outputs() == {"probs": "clip"}
    assert outputs(strategies=("spsmt",)) == {"frames": "frames"}
    assert outputs(inputs=("logmel", "cqt"), fusion="spsmr") == {
        "logmel_probs": "clip",
        "cqt_probs": "clip",
    }
    assert outputs(
        inputs=("logmel", "cqt"),
        fusion="ef",
        strategies=("spsmf", "spsmt"),
        num_bands=2,
        band_width=40,
    ) == {"ef_band0_probs": "clip", "ef_band1_probs": "clip", "ef_frames": "frames"}


@pytest.mark.slow
def test_one_training_step_with_loss_outputs():
    cfg = ModelConfig(  # one band part ('clip') and one SPSMT part ('frames')
        strategies=("spsmf", "spsmt"), num_bands=1, band_width=40, input_bins=BINS_1A, **TINY
    )
    model = build_model(cfg)
    kinds = loss_outputs(model)
    assert kinds == {"logmel_band0_probs": "clip", "logmel_frames": "frames"}
    losses = {
        name: framewise_categorical_crossentropy if kind == "frames" else "categorical_crossentropy"
        for name, kind in kinds.items()
    }
    model.compile(optimizer="adam", loss=losses)
    x = random_inputs(cfg, batch=4)
    y = keras.utils.to_categorical([0, 1, 2, 3], cfg.num_classes)
    history = model.fit(x, {name: y for name in kinds}, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_model_part_flag_builds_one_part(monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = model_config_from_args(
        ["--flagfile=configs/1a_spsmr_spsmf.flags", "--model_part=cqt_band2"]
    )
    assert (cfg.fusion, cfg.inputs, cfg.strategies, cfg.band) == ("single", ("cqt",), ("spsmf",), 2)
    assert cfg.input_bins == {"cqt": 64}
    with pytest.raises(ValueError, match="no part"):
        model_config_from_args(["--flagfile=configs/1a_spsmr.flags", "--model_part=cqt_band2"])


def test_loaded_model_via_helper(tmp_path):
    cfg = ModelConfig(input_bins=BINS_1A, inputs=REPS, fusion="ef", **TINY)
    model = build_model(cfg)
    model.save(tmp_path / "ef.keras")
    x = random_inputs(cfg)
    np.testing.assert_array_equal(
        run(load_model(tmp_path / "ef.keras"), x)["probs"], run(model, x)["probs"]
    )


REPS_1A = ("logmel", "cqt", "gamma", "mfcc")
# The paper's fusion weights, written out: eq. 3 (SPSMR) averages the four representations'
# CNNs, eq. 4 (SPSMF) the five band CNNs of a spectrogram, eq. 5 (SPSMT) the frames inside one
# CNN (one part); SPSMR + SPSMF + SPSMT averages the SPSMF system (4 x 5 band CNNs: 1/2 * 1/4 *
# 1/5 = 1/40 each) and the SPSMT system (4 frame CNNs: 1/2 * 1/4 = 1/8 each).
PAPER_WEIGHTS = {
    "1a_logmel": {"logmel": ("clip", 1.0)},
    "1a_logmel_spsmt": {"logmel": ("frames", 1.0)},
    "1a_logmel_spsmf": {f"logmel_band{k}": ("clip", 0.2) for k in range(5)},
    "1a_spsmr": {r: ("clip", 0.25) for r in REPS_1A},
    "1a_spsmr_spsmt": {r: ("frames", 0.25) for r in REPS_1A},
    "1a_spsmr_spsmf": {f"{r}_band{k}": ("clip", 0.05) for r in REPS_1A for k in range(5)},
    "1a_spsmr_spsmf_spsmt": {
        **{f"{r}_band{k}": ("clip", 0.025) for r in REPS_1A for k in range(5)},
        **{r: ("frames", 0.125) for r in REPS_1A},
    },
    "1a_ef": {"ef": ("clip", 1.0)},
    "1b_ef_spsmt": {"ef": ("frames", 1.0)},
}


@pytest.mark.parametrize("row", sorted(PAPER_WEIGHTS))
def test_part_weights_are_the_papers_numbers(row, monkeypatch):
    """Every part of a paper row, in output order, with the weight the paper gives it."""
    parts = model_parts(row_config(row, monkeypatch))
    assert [p.name for p in parts] == list(PAPER_WEIGHTS[row])
    for p in parts:
        kind, weight = PAPER_WEIGHTS[row][p.name]
        assert (p.kind, p.weight) == (kind, pytest.approx(weight, abs=1e-12)), p.name


def test_ef_with_both_strategies_averages_two_systems():
    """EF + SPSMF + SPSMT: the 5 EF band CNNs at 1/2 * 1/5 and the EF frame CNN at 1/2."""
    cfg = ModelConfig(
        inputs=REPS_1A, input_bins=BINS_1A, fusion="ef", strategies=("spsmt", "spsmf")
    )
    weights = {p.name: p.weight for p in model_parts(cfg)}
    assert weights == {**{f"ef_band{k}": pytest.approx(0.1) for k in range(5)}, "ef": 0.5}


def test_fusion_weights_of_separate_runs_are_the_papers_numbers():
    """The 24 separately trained runs of SPSMR + SPSMF + SPSMT (each written out as the config
    its run records) are weighted 1/40 per band run and 1/8 per SPSMT run; SPSMR's four plain
    runs 1/4 each."""
    bands = [
        ModelConfig(inputs=(r,), input_bins={r: BINS_1A[r]}, strategies=("spsmf",), band=k)
        for r in REPS_1A
        for k in range(5)
    ]
    frames = [
        ModelConfig(inputs=(r,), input_bins={r: BINS_1A[r]}, strategies=("spsmt",)) for r in REPS_1A
    ]
    weights = fusion_weights_of_parts(frames[:2] + bands + frames[2:])
    assert weights == pytest.approx([0.125] * 2 + [0.025] * 20 + [0.125] * 2, abs=1e-12)
    plain = [ModelConfig(inputs=(r,), input_bins={r: BINS_1A[r]}) for r in REPS_1A]
    assert fusion_weights_of_parts(plain) == pytest.approx([0.25] * 4, abs=1e-12)
    assert fusion_weights_of_parts(bands[:5]) == pytest.approx([0.2] * 5, abs=1e-12)
    with pytest.raises(ValueError, match="not exactly the 24 parts"):
        fusion_weights_of_parts(bands + frames[:3])
