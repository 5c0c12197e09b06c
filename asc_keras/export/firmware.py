"""The microcontroller export's firmware files: the model as a C array and the feature parameters.

`write_firmware(out_dir, model, *, arena_bytes, inputs, outputs, feature_cfg, normalization)`
writes, next to `micro/model.tflite` (`micro.py`), each atomically and byte-identical on rerun:

- `model_data.cc` / `model_data.h`: `alignas(16) const unsigned char g_model_data[]` holding the
  file's bytes and `const unsigned int g_model_data_len` (what TFLM's hello_world makes with
  `xxd -i`), and in the header `kTensorArenaSize` (`micro.arena_bytes`), then per input
  (`kInput<Rep>Index`, `...Scale`, `...ZeroPoint`) and per output (`kOutput<Name>...`) the
  TFLM tensor index and the tensor's int8 scale and zero point (`real = scale * (q - zero)`).
- `features.json`: what the device must compute before the model (`features_record`): sample
  rate, clip length, STFT (FFT size, Hann window, hop, centred frames, power 2), per
  representation its transform (mel bands and fmin/fmax, CQT fmin and bins per octave,
  gammatone bands and fmin/fmax), dB as `10 * log10(max(power, 1e-10))`, the normalization
  mean and std per bin, the input layout `[time, freq]` and its int8 quantization, plus the
  run's `feature_config` verbatim.
- `features.h`: the same numbers as C constants (`kSampleRate`, `kNumFrames`, per
  representation `k<Rep>Bins`, `k<Rep>Mean[]`, `k<Rep>Std[]`, ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from asc_keras import atomic
from asc_keras.config import FeatureConfig
from asc_keras.export import serving

MODEL_CC = "model_data.cc"
MODEL_H = "model_data.h"
FEATURES_JSON = "features.json"
FEATURES_H = "features.h"
FILES = (MODEL_CC, MODEL_H, FEATURES_JSON, FEATURES_H)
BYTES_PER_LINE = 12
DB_FORMULA = "10 * log10(max(power, 1e-10))"
_BANNER = "// Written by asc-keras `export.py --micro` from micro/model.tflite; do not edit.\n"


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


def _float(x: float) -> str:
    """A float32 C literal that reads back to exactly `np.float32(x)`."""
    text = f"{float(np.float32(x)):.9g}"
    if "e" not in text and "." not in text and "inf" not in text and "nan" not in text:
        text += ".0"
    return f"{text}f"


def c_array_source(model: bytes) -> str:
    """model_data.cc: the bytes as an aligned `const unsigned char` array and its length."""
    rows = [
        "  " + ", ".join(f"0x{b:02x}" for b in model[i : i + BYTES_PER_LINE]) + ","
        for i in range(0, len(model), BYTES_PER_LINE)
    ]
    return (
        _BANNER
        + f'#include "{MODEL_H}"\n\n'
        + "alignas(16) const unsigned char g_model_data[] = {\n"
        + "\n".join(rows)
        + "\n};\n"
        + f"const unsigned int g_model_data_len = {len(model)};\n"
    )


def _tensor_lines(prefix: str, rows: Sequence[Mapping]) -> list[str]:
    lines = []
    for r in rows:
        name = f"k{prefix}{_camel(r['name'])}"
        shape = " x ".join(str(s) for s in r["shape"])
        lines += [
            f"// {prefix.lower()} {r['name']!r}: {r['dtype']} [{shape}]",
            f"constexpr int {name}Index = {r['index']};",
            f"constexpr float {name}Scale = {_float(r['scale'])};",
            f"constexpr int {name}ZeroPoint = {r['zero_point']};",
        ]
    return lines


def c_array_header(
    model: bytes, *, arena_bytes: int, inputs: Sequence[Mapping], outputs: Sequence[Mapping]
) -> str:
    """model_data.h: the array's declaration, the arena size, the tensors' int8 parameters."""
    body = [
        "#ifndef ASC_KERAS_MODEL_DATA_H_",
        "#define ASC_KERAS_MODEL_DATA_H_",
        "",
        f"// {len(model)} bytes; pass it to tflite::GetModel(g_model_data).",
        "extern const unsigned char g_model_data[];",
        "extern const unsigned int g_model_data_len;",
        "",
        "// The smallest tensor arena TFLM (reference kernels, 64-bit build) prepared the model",
        "// in; declare it as alignas(16) uint8_t tensor_arena[kTensorArenaSize].",
        f"constexpr int kTensorArenaSize = {int(arena_bytes)};",
        "",
        "// int8 tensors: real = scale * (q - zero_point); q = round(real / scale) + zero_point.",
        f"constexpr int kNumInputs = {len(inputs)};",
        f"constexpr int kNumOutputs = {len(outputs)};",
        *_tensor_lines("Input", inputs),
        *_tensor_lines("Output", outputs),
        "",
        "#endif  // ASC_KERAS_MODEL_DATA_H_",
    ]
    return _BANNER + "\n".join(body) + "\n"


def features_record(
    feature_cfg: FeatureConfig, normalization: Mapping, inputs: Sequence[Mapping]
) -> dict:
    """The content of features.json (see the module docstring)."""
    cfg = feature_cfg
    transforms = {
        "logmel": {
            "bins": cfg.logmel_bins,
            "fmin": cfg.logmel_fmin,
            "fmax": cfg.logmel_fmax,
            "filterbank": "librosa.filters.mel (Slaney mel scale, Slaney area norm) on power",
        },
        "cqt": {
            "bins": cfg.cqt_bins,
            "fmin": cfg.cqt_fmin,
            "bins_per_octave": cfg.cqt_bins_per_octave,
            "transform": "librosa.cqt (Hann wavelets, L1 norm, hop as the STFT's); power |C|^2",
        },
        "gamma": {
            "bins": cfg.gamma_bins,
            "fmin": cfg.gamma_fmin,
            "fmax": cfg.gamma_fmax,
            "filterbank": "gammatone.fftweight.fft_weights (width 1.0) on power",
        },
        "mfcc": {
            "bins": cfg.mfcc_bins,
            "mels": cfg.mfcc_mels,
            "transform": "orthonormal DCT-II of the dB mel power clipped 80 dB below its max",
        },
    }
    reps = {}
    for d in inputs:
        rep = d["name"]
        mean, std = serving.normalization_arrays(normalization, rep)
        reps[rep] = {
            **transforms[rep],
            "db": DB_FORMULA,
            "top_db": cfg.top_db,
            "shape": [cfg.num_frames, cfg.bins(rep)],
            "normalization": {
                "mean": np.asarray(mean, np.float32).astype(np.float64).tolist(),
                "std": np.asarray(std, np.float32).astype(np.float64).tolist(),
                "formula": "(x - mean) / std per frequency bin",
            },
            "quantization": {
                "dtype": d["dtype"],
                "scale": d["scale"],
                "zero_point": d["zero_point"],
                "tflm_input_index": d["index"],
                "formula": "clip(round(normalized / scale) + zero_point, -128, 127)",
            },
        }
    return {
        "sample_rate": cfg.sample_rate,
        "clip_seconds": cfg.clip_seconds,
        "num_samples": cfg.num_samples,
        "num_frames": cfg.num_frames,
        "stft": {
            "n_fft": cfg.n_fft,
            "window": "hann",
            "win_length": cfg.n_fft,
            "hop_length": cfg.hop_length,
            "center": True,
            "pad_mode": "constant",
            "power": 2,
        },
        "layout": "[time, freq]",
        "representations": reps,
        "feature_config": cfg.to_dict(),
    }


def _float_array(name: str, values: Sequence[float]) -> list[str]:
    rows = [
        "  " + ", ".join(_float(v) for v in values[i : i + 6]) + ","
        for i in range(0, len(values), 6)
    ]
    return [f"static const float {name}[{len(values)}] = {{", *rows, "};"]


def features_header(record: Mapping) -> str:
    """features.h: the numbers of features.json as C constants."""
    stft = record["stft"]
    body = [
        "#ifndef ASC_KERAS_FEATURES_H_",
        "#define ASC_KERAS_FEATURES_H_",
        "",
        "// Features the model expects: [time, freq] per input, from a Hann-windowed, centred",
        f"// STFT power spectrum, dB = {DB_FORMULA}, then (x - mean) / std per bin, then int8.",
        f"static const int kSampleRate = {record['sample_rate']};",
        f"static const int kNumSamples = {record['num_samples']};",
        f"static const int kFftSize = {stft['n_fft']};",
        f"static const int kHopLength = {stft['hop_length']};",
        f"static const int kNumFrames = {record['num_frames']};",
    ]
    for rep, r in record["representations"].items():
        c = _camel(rep)
        body += ["", f"// {rep}"]
        body.append(f"static const int k{c}Bins = {r['bins']};")
        for key in ("fmin", "fmax"):
            if key in r:
                body.append(f"static const float k{c}{_camel(key)} = {_float(r[key])};")
        if "bins_per_octave" in r:
            body.append(f"static const int k{c}BinsPerOctave = {r['bins_per_octave']};")
        q = r["quantization"]
        body += [
            f"static const int k{c}InputIndex = {q['tflm_input_index']};",
            f"static const float k{c}InputScale = {_float(q['scale'])};",
            f"static const int k{c}InputZeroPoint = {q['zero_point']};",
            *_float_array(f"k{c}Mean", r["normalization"]["mean"]),
            *_float_array(f"k{c}Std", r["normalization"]["std"]),
        ]
    body += ["", "#endif  // ASC_KERAS_FEATURES_H_"]
    return _BANNER.replace("do not edit", "see features.json") + "\n".join(body) + "\n"


def write_firmware(
    out_dir: str,
    model: bytes,
    *,
    arena_bytes: int,
    inputs: Sequence[Mapping],
    outputs: Sequence[Mapping],
    feature_cfg: FeatureConfig,
    normalization: Mapping,
) -> list[str]:
    """Write the four files into `out_dir` (see the module docstring); returns their names."""
    record = features_record(feature_cfg, normalization, inputs)
    texts = {
        MODEL_CC: c_array_source(model),
        MODEL_H: c_array_header(model, arena_bytes=arena_bytes, inputs=inputs, outputs=outputs),
        FEATURES_JSON: atomic.dumps_json(record) + "\n",
        FEATURES_H: features_header(record),
    }
    for name, text in texts.items():
        atomic.write_text(os.path.join(out_dir, name), text)
    return list(FILES)
