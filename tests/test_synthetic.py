"""Tests of asc_keras.data.synthetic: official layout, audio format, splits, determinism, and
that the synthetic scenes and devices are learnable by a cheap numpy nearest-centroid rule.

Every set here is tiny (clips of 0.5-1 s, a few dozen files) so the module runs in seconds.
"""

from __future__ import annotations

import hashlib
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asc_keras import labels, tasks
from asc_keras.data import synthetic

REPO = pathlib.Path(__file__).resolve().parents[1]
CLIP_SECONDS = 1.0
NAME = re.compile(r"^audio/([a-z_]+)-([a-z]+)-(\d+)-(\d+)-([a-z0-9]+)\.wav$")


def _read_tsv(path: pathlib.Path) -> tuple[list[str], list[list[str]]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and "\r" not in text and "," not in text
    lines = text.rstrip("\n").split("\n")
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, synthetic.DatasetSummary]:
    root = tmp_path_factory.mktemp("synthetic")
    return {
        "1a": synthetic.generate(
            root / "1a",
            task="1a",
            clips_per_class=3,
            clips_per_location=1,
            clip_seconds=CLIP_SECONDS,
            seed=0,
        ),
        "1b": synthetic.generate(
            root / "1b",
            task="1b",
            clips_per_class=6,
            clips_per_location=1,
            clip_seconds=CLIP_SECONDS,
            seed=0,
        ),
    }


def _log_band_spectrum(path: pathlib.Path) -> np.ndarray:
    """Mean over frames of the log power in 32 log-spaced bands (channels averaged)."""
    x, _ = sf.read(path, dtype="float32")
    if x.ndim == 2:
        x = x.mean(axis=1)
    frame = 1024
    frames = x[: len(x) // frame * frame].reshape(-1, frame) * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    edges = np.unique(np.geomspace(1, frame // 2 + 1, 33).astype(int))
    return 10.0 * np.log10(np.add.reduceat(power, edges[:-1], axis=1) + 1e-12).mean(axis=0)


@pytest.mark.parametrize("task", ["1a", "1b"])
def test_layout_is_official(sets, task):
    summary = sets[task]
    root = summary.root
    header, meta = _read_tsv(root / "meta.csv")
    assert header == ["filename", "scene_label", "identifier", "source_label"]
    train_header, train = _read_tsv(root / "evaluation_setup" / "fold1_train.csv")
    eval_header, evaluate = _read_tsv(root / "evaluation_setup" / "fold1_evaluate.csv")
    test_header, test = _read_tsv(root / "evaluation_setup" / "fold1_test.csv")
    assert train_header == eval_header == ["filename", "scene_label"]
    assert test_header == ["filename"]
    assert all(len(r) == 4 for r in meta) and all(len(r) == 2 for r in train + evaluate)
    assert [r[0] for r in test] == [r[0] for r in evaluate]
    assert sorted(map(tuple, train + evaluate)) == sorted((r[0], r[1]) for r in meta)
    assert [r[0] for r in meta] == sorted(r[0] for r in meta)
    assert (len(train), len(evaluate)) == (summary.num_train, summary.num_evaluate)
    for filename, _, identifier, device in meta:
        match = NAME.match(filename)
        assert match, filename
        scene, city, location, _, name_device = match.groups()
        assert scene in labels.SCENES_1A and city in labels.CITIES
        assert identifier == f"{city}-{location}" and device == name_device
        assert labels.parse_filename(filename).identifier == identifier
        assert (root / filename).is_file()
    assert len(list((root / "audio").iterdir())) == len(meta)
    assert "synthetic" in (root / "README.txt").read_text().lower()


@pytest.mark.parametrize("task", ["1a", "1b"])
def test_wav_format(sets, task):
    summary = sets[task]
    expected = (synthetic.SAMPLE_RATES[task], synthetic.CHANNELS[task])
    assert (summary.sample_rate, summary.channels) == expected
    correlations = []
    for path in sorted((summary.root / "audio").glob("*.wav"))[::5]:
        info = sf.info(path)
        assert (info.format, info.subtype) == ("WAV", "PCM_24")
        assert (info.samplerate, info.channels) == expected
        assert info.frames == round(CLIP_SECONDS * info.samplerate)
        x, _ = sf.read(path)
        assert 1e-4 < np.max(np.abs(x)) < 1.0
        if task == "1b":
            correlations.append(np.corrcoef(x[:, 0], x[:, 1])[0, 1])
    if task == "1b":  # binaural-ish: correlated, never identical channels
        assert np.mean(correlations) > 0.2 and max(correlations) < 0.99, correlations


def test_1a_devices_and_labels(sets):
    _, meta = _read_tsv(sets["1a"].root / "meta.csv")
    _, train = _read_tsv(sets["1a"].root / "evaluation_setup" / "fold1_train.csv")
    device = {r[0]: r[3] for r in meta}
    train_devices = [device[f] for f, _ in train]
    eval_devices = [device[r[0]] for r in meta if r[0] not in dict(train)]
    assert not set(labels.DEVICES_1A_EVAL_ONLY) & set(train_devices)
    assert set(train_devices) == set(labels.DEVICES_1A) - set(labels.DEVICES_1A_EVAL_ONLY)
    assert max(set(train_devices), key=train_devices.count) == "a"
    assert train_devices.count("a") > len(train_devices) / 2
    counts = {d: eval_devices.count(d) for d in labels.DEVICES_1A}
    assert len(set(counts.values())) == 1 and counts["a"] > 0  # parallel: every device each
    assert all(label == NAME.match(f).group(1) for f, label, _, _ in meta)
    assert sets["1a"].devices == labels.DEVICES_1A


def test_1b_labels_are_the_three_classes(sets):
    _, meta = _read_tsv(sets["1b"].root / "meta.csv")
    for filename, label, _, device in meta:
        assert label in labels.CLASSES_1B
        assert label == labels.SCENE_TO_1B[NAME.match(filename).group(1)]
        assert device == "a"
    assert {r[1] for r in meta} == set(labels.CLASSES_1B)
    assert sets["1b"].classes == labels.CLASSES_1B


@pytest.mark.parametrize("task", ["1a", "1b"])
def test_locations_never_cross_the_split(sets, task):
    root = sets[task].root
    _, meta = _read_tsv(root / "meta.csv")
    _, train = _read_tsv(root / "evaluation_setup" / "fold1_train.csv")
    _, evaluate = _read_tsv(root / "evaluation_setup" / "fold1_evaluate.csv")
    ident = {r[0]: r[2] for r in meta}
    train_ids = {ident[f] for f, _ in train}
    eval_ids = {ident[f] for f, _ in evaluate}
    assert not train_ids & eval_ids
    assert 0.2 <= len(eval_ids) / len(train_ids | eval_ids) <= 0.45
    for cls in labels.classes(task):  # every class on both sides
        assert cls in {lab for _, lab in train} and cls in {lab for _, lab in evaluate}
    assert sets[task].num_locations == len(train_ids | eval_ids)


def _digest(root: pathlib.Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    kwargs = dict(task="1b", clips_per_class=4, clips_per_location=1, clip_seconds=0.5)
    first = _digest(synthetic.generate(tmp_path / "x", seed=3, **kwargs).root)
    again = _digest(synthetic.generate(tmp_path / "y", seed=3, **kwargs).root)
    other = _digest(synthetic.generate(tmp_path / "z", seed=4, **kwargs).root)
    assert first == again
    audio = [k for k in first if k.startswith("audio")]
    assert len(audio) == 12
    differing = [k for k in audio if first[k] != other.get(k)]
    assert len(differing) == len(audio)


def test_1b_scenes_are_learnable_by_nearest_centroid(tmp_path):
    summary = synthetic.generate(
        tmp_path,
        task="1b",
        clips_per_class=24,
        clips_per_location=1,
        clip_seconds=CLIP_SECONDS,
        seed=0,
    )
    _, train = _read_tsv(summary.root / "evaluation_setup" / "fold1_train.csv")
    _, evaluate = _read_tsv(summary.root / "evaluation_setup" / "fold1_evaluate.csv")
    x_train = np.stack([_log_band_spectrum(summary.root / f) for f, _ in train])
    x_eval = np.stack([_log_band_spectrum(summary.root / f) for f, _ in evaluate])
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    x_train, x_eval = (x_train - mean) / std, (x_eval - mean) / std
    y_train = np.array([lab for _, lab in train])
    y_eval = np.array([lab for _, lab in evaluate])
    classes = np.array(labels.CLASSES_1B)
    centroids = np.stack([x_train[y_train == c].mean(axis=0) for c in classes])
    predicted = classes[np.argmin(((x_eval[:, None] - centroids[None]) ** 2).sum(-1), axis=1)]
    accuracy = float(np.mean(predicted == y_eval))
    assert accuracy >= 0.6, accuracy  # chance is 1/3


def test_1a_devices_colour_the_same_segments(sets):
    root = sets["1a"].root
    _, evaluate = _read_tsv(root / "evaluation_setup" / "fold1_evaluate.csv")
    by_device: dict[str, list[np.ndarray]] = {}
    for filename, _ in evaluate:  # sorted, so the devices of one segment line up
        by_device.setdefault(NAME.match(filename).group(5), []).append(
            _log_band_spectrum(root / filename)
        )
    spectra = {d: np.mean(v, axis=0) for d, v in by_device.items()}
    assert set(spectra) == set(labels.DEVICES_1A)
    # Parallel recordings of the same segments: what differs is the device alone.
    for i, d1 in enumerate(labels.DEVICES_1A):
        for d2 in labels.DEVICES_1A[i + 1 :]:
            rms_db = np.sqrt(np.mean((spectra[d1] - spectra[d2]) ** 2))
            assert rms_db > 1.0, (d1, d2, rms_db)
    # Each segment's colouring relative to device a points to its own device's mean colouring.
    offsets = {d: spectra[d] - spectra["a"] for d in labels.DEVICES_1A}
    hits = []
    for d in labels.DEVICES_1A:
        for seg, ref in zip(by_device[d], by_device["a"], strict=True):
            distance = {o: np.sum((seg - ref - offsets[o]) ** 2) for o in labels.DEVICES_1A}
            hits.append(min(distance, key=distance.get) == d)
    assert np.mean(hits) > 0.8  # chance is 1/9


def test_unlabeled_eval_folder(tmp_path):
    key = tmp_path / "answers.csv"
    summary = synthetic.make_unlabeled_eval(
        tmp_path / "eval", task="1a", num_clips=5, clip_seconds=0.5, seed=7, answer_key=key
    )
    root = summary.root
    header, rows = _read_tsv(root / "evaluation_setup" / "fold1_test.csv")
    assert header == ["filename"] and rows == [[f"audio/{i}.wav"] for i in range(5)]
    assert sorted(p.name for p in (root / "audio").iterdir()) == [f"{i}.wav" for i in range(5)]
    assert not (root / "meta.csv").exists()
    info = sf.info(root / "audio" / "0.wav")
    assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_24")
    key_header, key_rows = _read_tsv(key)
    assert key_header == ["filename", "scene_label"]
    assert [r[0] for r in key_rows] == [r[0] for r in rows]
    assert all(r[1] in labels.SCENES_1A for r in key_rows)
    assert summary.num_evaluate == 5 and summary.num_train == 0


def test_refuses_to_mix_with_existing_files_and_bad_sizes(tmp_path):
    kwargs = dict(task="1b", clips_per_class=2, clips_per_location=1, clip_seconds=0.25)
    synthetic.generate(tmp_path, **kwargs)
    with pytest.raises(FileExistsError):
        synthetic.generate(tmp_path, **kwargs)
    (tmp_path / "meta.csv").unlink()  # as if interrupted: README.txt is written first
    summary = synthetic.generate(tmp_path, overwrite=True, seed=1, **kwargs)
    _, meta = _read_tsv(tmp_path / "meta.csv")
    assert len(list((tmp_path / "audio").iterdir())) == len(meta) == summary.num_files == 6
    foreign = tmp_path / "real"
    foreign.mkdir()
    (foreign / "meta.csv").write_text("filename\n")
    with pytest.raises(FileExistsError, match="refusing"):
        synthetic.generate(foreign, overwrite=True, **kwargs)
    assert (foreign / "meta.csv").read_text() == "filename\n"
    with pytest.raises(ValueError, match="task"):
        synthetic.generate(tmp_path / "t", task="1c")
    with pytest.raises(ValueError, match="location"):
        synthetic.generate(tmp_path / "u", task="1a", clips_per_class=2, clips_per_location=2)
    assert not (tmp_path / "t").exists() and not (tmp_path / "u").exists()


def test_command_line_prints_one_summary_line(tmp_path):
    out = tmp_path / "cli"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "asc_keras.data.synthetic",
            "--task=1b",
            f"--out={out}",
            "--clips_per_class=2",
            "--clips_per_location=1",
            "--clip_seconds=0.25",
            "--seed=2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "6 files" in lines[0] and str(out) in lines[0]
    assert (out / "evaluation_setup" / "fold1_test.csv").is_file()


def test_tau2022_writes_the_2024_split_setup(tmp_path):
    """split_setup/split{5..100}.csv as the official subsets: nested, whole recordings, every
    scene present, split100 the whole train fold, test.csv the evaluate fold."""
    from asc_keras.data import dcase

    synthetic.generate(
        tmp_path, task="tau2022", clips_per_class=10, clip_seconds=0.1, num_cities=3, seed=1
    )

    def names(rel):
        with open(tmp_path / rel) as f:
            lines = f.read().splitlines()
        assert lines[0].split("\t")[0] == "filename"
        return [line.split("\t")[0] for line in lines[1:]]

    train = names("evaluation_setup/fold1_train.csv")
    splits = {p: names(f"split_setup/split{p}.csv") for p in (5, 10, 25, 50, 100)}
    assert splits[100] == train and names("split_setup/test.csv") == names(
        "evaluation_setup/fold1_evaluate.csv"
    )
    for small, large in ((5, 10), (10, 25), (25, 50), (50, 100)):
        assert set(splits[small]) <= set(splits[large])
    assert len(splits[5]) < len(splits[50]) < len(splits[100])
    for p, clips in splits.items():
        assert clips == sorted(clips)
        assert {c.split("/")[-1].split("-")[0] for c in clips} == set(tasks.SCENES_10), p
        recordings = {}
        for c in train:
            f = c[:-4].split("-")
            recordings.setdefault("-".join(f[:4] + f[5:]), set()).add(c)
        for clips_of in recordings.values():
            assert clips_of <= set(clips) or not clips_of & set(clips)  # whole recordings
    table = dcase.read_dataset(
        str(tmp_path), tasks.get("tau2022"), splits=("train",), train_csv="split_setup/split25.csv"
    )
    assert len(table["train"]) == len(splits[25])
