"""A features folder names the library versions that computed it, and features of other versions
are recomputed in place (a writable folder) or refused in one line (where they cannot be)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
from importlib import metadata

import pytest

from asc_keras.config import DataConfig, FeatureConfig
from asc_keras.data import library_versions, manifest, precompute
from asc_keras.features import FEATURE_CODE_VERSION

CFG = FeatureConfig(clip_seconds=1.0, representations=("logmel",))
OTHER_LIBROSA = "0.0.1"


def _data_cfg(data_dir, features_dir):
    return DataConfig(
        data_dir=data_dir,
        features_dir=str(features_dir),
        task="1a",
        num_workers=1,
        clips_per_shard=2,
    )


def _run(data_cfg, **kw) -> tuple[str, list[str]]:
    lines = []
    folder = precompute.ensure_features(CFG, data_cfg, progress=False, log=lines.append, **kw)
    return folder, lines


def _files(folder) -> dict[str, tuple[str, int]]:
    """`{file name: (sha256, inode)}` of the folder's shards, sidecars and manifest."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*"))):
        with open(path, "rb") as f:
            out[os.path.basename(path)] = (
                hashlib.sha256(f.read()).hexdigest(),
                os.stat(path).st_ino,
            )
    return out


def _edit_json(path, change) -> None:
    with open(path) as f:
        d = json.load(f)
    change(d)
    with open(path, "w") as f:
        json.dump(d, f)


def _claim_librosa(d, version=OTHER_LIBROSA):
    d["library_versions"]["librosa"] = version


def _manifest_path(folder):
    return os.path.join(folder, manifest.MANIFEST_NAME)


def test_manifest_and_sidecars_record_the_feature_library_versions(small_1a_dir, tmp_path):
    folder, _ = _run(_data_cfg(small_1a_dir, tmp_path))
    with open(_manifest_path(folder)) as f:
        recorded = json.load(f)
    versions = recorded["library_versions"]
    assert sorted(versions) == ["gammatone", "librosa", "numpy", "scipy", "soxr"]
    assert "tensorflow" not in versions  # computes no feature
    for name in ("librosa", "numpy", "scipy", "soxr", "gammatone"):
        assert versions[name] == metadata.version(name)
    assert recorded["feature_code_version"] == FEATURE_CODE_VERSION
    sidecars = glob.glob(os.path.join(folder, "*.tfrecord.json"))
    assert len(sidecars) == 3  # 4 train clips, 2 evaluate clips, 2 a shard
    for path in sidecars:
        with open(path) as f:
            assert json.load(f)["versions"] == versions
    m = manifest.load_manifest(folder)
    assert m.library_versions == versions
    m.check_compatible(CFG, "1a")  # this environment's own features


def test_a_manifest_claiming_another_librosa_is_recomputed_to_fresh_bytes(small_1a_dir, tmp_path):
    fresh, _ = _run(_data_cfg(small_1a_dir, tmp_path / "fresh"))
    folder, _ = _run(_data_cfg(small_1a_dir, tmp_path / "shared"))
    before = _files(folder)
    _edit_json(_manifest_path(folder), _claim_librosa)

    _, lines = _run(_data_cfg(small_1a_dir, tmp_path / "shared"))

    here = metadata.version("librosa")
    redo = [ln for ln in lines if "recomputing" in ln]
    assert len(redo) == 3, lines
    assert all(f"librosa {OTHER_LIBROSA}" in ln and f"librosa {here}" in ln for ln in redo)
    after = _files(folder)
    assert {k: h for k, (h, _) in after.items()} == {k: h for k, (h, _) in _files(fresh).items()}
    assert {k: h for k, (h, _) in after.items()} == {k: h for k, (h, _) in before.items()}
    rewritten = [k for k in after if k.endswith(".tfrecord") and after[k][1] != before[k][1]]
    assert len(rewritten) == 3  # every shard written anew (renamed into place)
    assert _run(_data_cfg(small_1a_dir, tmp_path / "shared"))[1] == []  # settled now


def test_a_manifest_without_versions_counts_as_unknown_and_is_recomputed(small_1a_dir, tmp_path):
    folder, _ = _run(_data_cfg(small_1a_dir, tmp_path))
    before = _files(folder)
    _edit_json(_manifest_path(folder), lambda d: d.pop("library_versions"))
    with pytest.raises(manifest.StaleFeaturesError, match="unknown library versions"):
        manifest.load_manifest(folder).check_compatible(CFG, "1a")

    _, lines = _run(_data_cfg(small_1a_dir, tmp_path))

    redo = [ln for ln in lines if "recomputing" in ln]
    assert len(redo) == 3 and all("unknown library versions" in ln for ln in redo), lines
    assert _files(folder).keys() == before.keys()
    assert [h for h, _ in _files(folder).values()] == [h for h, _ in before.values()]


def test_one_sidecar_of_another_version_recomputes_every_split(small_1a_dir, tmp_path):
    folder, _ = _run(_data_cfg(small_1a_dir, tmp_path))
    before = _files(folder)
    side = os.path.join(folder, "evaluate-00000-of-00001.tfrecord.json")
    _edit_json(side, lambda d: d["versions"].update(numpy="1.0.0"))

    _, lines = _run(_data_cfg(small_1a_dir, tmp_path), splits=("evaluate",))

    assert sum("recomputing" in ln and "numpy 1.0.0" in ln for ln in lines) == 3, lines
    after = _files(folder)
    assert all(after[k][1] != before[k][1] for k in after if k.endswith(".tfrecord"))
    assert [h for h, _ in after.values()] == [h for h, _ in before.values()]
    assert manifest.load_manifest(folder).splits["train"].num_examples == 4


def test_a_read_only_cache_of_another_version_is_refused_in_one_line(
    small_1a_dir, tmp_path, monkeypatch
):
    folder, _ = _run(_data_cfg(small_1a_dir, tmp_path))
    _edit_json(_manifest_path(folder), _claim_librosa)
    before = _files(folder)
    real_access = os.access

    def read_only(path, mode, *args, **kwargs):
        if os.path.abspath(path) == os.path.abspath(folder) and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", read_only)
    with pytest.raises(manifest.StaleFeaturesError) as e:
        _run(_data_cfg(small_1a_dir, tmp_path))
    text = str(e.value)
    here = library_versions.current()["librosa"]
    assert "\n" not in text and text.startswith(f"{folder}: ")
    assert f"librosa {OTHER_LIBROSA}" in text and f"librosa {here}" in text
    assert "read-only" in text
    assert _files(folder) == before  # nothing written, nothing removed


def test_reading_features_of_another_version_is_refused(small_1a_dir, tmp_path):
    folder, _ = _run(_data_cfg(small_1a_dir, tmp_path))
    _edit_json(_manifest_path(folder), _claim_librosa)
    m = manifest.load_manifest(folder)
    assert m.library_versions["librosa"] == OTHER_LIBROSA
    with pytest.raises(manifest.StaleFeaturesError) as e:
        m.check_compatible(CFG, "1a")
    text = str(e.value)
    assert "\n" not in text and _manifest_path(folder) in text
    assert f"librosa {OTHER_LIBROSA}" in text
    assert f"librosa {metadata.version('librosa')}" in text
    assert "numpy" not in text  # only the libraries that differ
