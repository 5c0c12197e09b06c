"""The versions of the libraries that compute features, as a features folder records them.

Features are only reproducible bit for bit with the same libraries: decoding and resampling
(`soxr`, `numpy`), the spectrograms (`librosa`, with `scipy`'s windows and filter design under
its CQT and mel filters, and `numpy`'s FFT) and the Gammatone weights (`gammatone`). TensorFlow
computes no feature (it only writes the records), so its version is not part of them. The
feature code's own version is `asc_keras.features.FEATURE_CODE_VERSION`, kept beside these.

Each shard's sidecar and the manifest hold `current()`'s mapping; `difference` says, in one
phrase, how a recorded mapping differs from this environment's (a record without versions, made
before they were recorded, reads as unknown versions).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import metadata

FEATURE_LIBRARIES = ("gammatone", "librosa", "numpy", "scipy", "soxr")
NOT_INSTALLED = "not installed"


@functools.lru_cache(maxsize=1)
def _installed() -> tuple[tuple[str, str], ...]:
    out = []
    for name in FEATURE_LIBRARIES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, NOT_INSTALLED))
    return tuple(out)


def current() -> dict[str, str]:
    """`{library: version}` of this environment's feature libraries (read once per process)."""
    return dict(_installed())


def describe(versions: Mapping[str, str] | None, names=None) -> str:
    """`"librosa 0.11.0, numpy 2.4.6"` (the libraries `names`, default all), or `"unknown
    versions"` for a record without them."""
    if versions is None:
        return "unknown versions"
    names = sorted(versions) if names is None else names
    return ", ".join(f"{n} {versions.get(n, 'unknown')}" for n in names)


def difference(recorded: Mapping[str, str] | None, here: Mapping[str, str]) -> str | None:
    """None when `recorded` equals `here`; else one phrase naming both sides' versions of the
    libraries that differ, e.g. `"made with librosa 0.10.2; this environment has librosa
    0.11.0"`."""
    if recorded is None:
        return (
            "made with unknown library versions (recorded before versions were); this "
            f"environment has {describe(here)}"
        )
    if not isinstance(recorded, Mapping):
        recorded = {}
    recorded = {str(k): str(v) for k, v in recorded.items()}
    if recorded == dict(here):
        return None
    names = sorted(n for n in set(recorded) | set(here) if recorded.get(n) != here.get(n))
    return f"made with {describe(recorded, names)}; this environment has {describe(here, names)}"
