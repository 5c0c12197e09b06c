"""librosa's CQT filter basis built once per setting instead of on every call.

`librosa.cqt` rebuilds its frequency-domain filter basis (wavelets, FFT, sparsify) for every
octave on every call: for a 1 s TAU 2022 clip that was about 70 % of the CQT's time and most of
the time of predict.py's sliding windows (`bench/streaming_bench.py`). librosa caches it only
through its on-disk joblib cache (`LIBROSA_CACHE_DIR`), off by default.

`reused_filters()` is a context manager: while it is open, librosa's filter-basis function is
replaced by one that returns a COPY of the basis it built for the same arguments before
(`librosa.vqt` scales the basis in place afterwards, so every call gets its own copy). Same
function, same arguments, same values: the CQT is bit-identical to librosa's own
(`tests/test_cqt_filters.py`). When this librosa has no such function the context does nothing.
Input: nothing; effect: faster `librosa.cqt` / `librosa.vqt` inside the block.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import threading

import numpy as np

FILTER_FUNCTION = "__vqt_filter_fft"  # librosa.core.constantq's basis builder (librosa 0.10, 0.11)
MAX_BASES = 64  # filter bases kept (one per octave and setting; 6 per 64-bin CQT setting)

_BASES: collections.OrderedDict = collections.OrderedDict()  # key -> (basis, n_fft, lengths)


def _key(args, kwargs) -> tuple:
    def hashable(v):
        if isinstance(v, np.ndarray):
            return (v.dtype.str, v.shape, v.tobytes())
        if isinstance(v, (list, tuple)):
            return tuple(hashable(x) for x in v)
        return v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)

    return tuple(hashable(a) for a in args) + tuple(
        (k, hashable(v)) for k, v in sorted(kwargs.items())
    )


def _cached(build):
    def basis(*args, **kwargs):
        key = _key(args, kwargs)
        with _LOCK:
            kept = _BASES.get(key)
        if kept is None:
            kept = build(*args, **kwargs)
            with _LOCK:
                _BASES[key] = kept
                while len(_BASES) > MAX_BASES:
                    _BASES.popitem(last=False)
        fft_basis, n_fft, lengths = kept
        return fft_basis.copy(), n_fft, np.array(lengths, copy=True)

    return basis


_LOCK = threading.Lock()
_OPEN = {"blocks": 0, "build": None}  # blocks open in this process; librosa's own function


@contextlib.contextmanager
def reused_filters():
    """Within the block, `librosa.cqt` reuses filter bases built for the same setting.

    Blocks may nest and overlap across threads: librosa's function is replaced when the first
    opens and put back when the last closes.
    """
    module = importlib.import_module("librosa.core.constantq")
    with _LOCK:
        if _OPEN["blocks"] == 0:
            _OPEN["build"] = getattr(module, FILTER_FUNCTION, None)
            if _OPEN["build"] is not None:
                setattr(module, FILTER_FUNCTION, _cached(_OPEN["build"]))
        _OPEN["blocks"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _OPEN["blocks"] -= 1
            if _OPEN["blocks"] == 0 and _OPEN["build"] is not None:
                setattr(module, FILTER_FUNCTION, _OPEN["build"])
