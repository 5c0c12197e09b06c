"""Benchmark: TFLite latency per 10 s clip on one thread, file sizes, int8 accuracy change.

    python bench/tflite_bench.py [--runs=200] [--warmup=20] [--num_threads=1]
    python bench/tflite_bench.py --model_dir=RUN (--data_dir=DIR | --features_dir=F)
        [--export_dir=EXPORT] [--split=evaluate] [--batch_size=64]
    python bench/tflite_bench.py --layers [--tau2022] [--runs=100]
    python bench/tflite_bench.py --floor [--variants=xnnpack,builtin,latest] [--runs=40]

Without --model_dir: the full-size `1b_ef_spsmt` network (paper Table 4, EF of Log-Mel, CQT and
Gamma + SPSMT, inputs 3 x [862, 64]) is built UNTRAINED and exported with stand-in
normalization statistics, its int8 model calibrated on synthetic features (latency and size do
not depend on the weights' values; accuracy is not measured). A full-size `1b_logmel` model is
exported with its waveform-in variant too, to time the in-graph Log-Mel frontend. Each model
is exported twice from the same weights: `baseline` = the layers as trained (the conversion
before `asc_keras.export.rewrite`), `current` = what `export.py` writes now; the two are timed
in alternating rounds and the table ends with the baseline / current latency ratio.

With --model_dir: the trained run is exported (`asc_keras.export.exporter`, into --export_dir or a
temporary folder; an existing --export_dir holding both TFLite files is reused), timed, and the
float and int8 files are both scored on --split (DCASE macro-average accuracy and log loss), so
the table shows the accuracy change of int8.

With --layers: where the time of the int8 full-size `1b_ef_spsmt` file goes. The network as
`export.py` rewrites it is cut after every layer that ends a fused group (each ReLU, pool,
channel stack, frequency-neighbour stack, and the outputs); each cut is exported to its own int8
file (`tflite.convert_int8`, calibrated on N(0, 1) features, i.e. normalized ones) and timed.
The table lists the cumulative latency of every cut, the difference to the previous cut (the
layers in between) and their multiply-accumulates. TFLite fuses BatchNorm and ReLU into the
convolution before them, which is why a convolution is never a cut of its own.

With --tau2022 (--layers): the same for the TAU 2022 system of `configs/tau2022_ef_spsmt.flags`
(width 0.5, 1 s clips, 87 frames, 10 classes).

With --floor: the int8 1B EF + SPSMT file (10 s) and the int8 TAU 2022 file (1 s), both untrained
and exported both ways, against their floor: MACs / the best int8 convolution rate measured in
the same run (`PEAK_CONVS`: single int8 CONV_2D files, timed with the same runner). Every file
runs under each interpreter setting of --variants (`OPTION_VARIANTS`: XNNPACK, TFLite's own
kernels without XNNPACK, XNNPACK's latest features). Latency there is the median CPU time of
the calling thread per call (LiteRT on one thread runs in it): on a shared machine the wall
time of a long call includes the waits for a core, which would bias long files against short
reference files.

Latency: the LiteRT interpreter (`ai_edge_litert`) with `num_threads` threads, one clip per call
through the `serving_default` signature runner (inputs set, invoke, outputs read; int8 inputs
already quantized), `warmup` untimed calls, then `rounds` rounds of `runs / rounds` calls per
file, the files taking turns; the median and 90th percentile of all calls and the range of the
round medians (the machine is shared, so rounds spread).
Targets (1B): <= 2 ms per clip for float and int8 on one thread, int8 file <= 150 KB.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

EF_INPUTS = ("logmel", "cqt", "gamma")
TARGET_MS = 2.0
TARGET_INT8_KB = 150.0


@dataclasses.dataclass
class Row:
    model: str
    artifact: str
    kb: float
    path: str
    median_ms: float = float("nan")
    p90_ms: float = float("nan")
    round_ms: tuple[float, float] = (float("nan"), float("nan"))
    accuracy: float | None = None
    log_loss: float | None = None
    options: dict = dataclasses.field(default_factory=dict)  # LiteRT Interpreter keywords
    cpu_ms: float = float("nan")  # median CPU time of the calling thread per call


def _runner(path: str, *, num_threads: int, seed: int = 0, options=None):
    """`(call, feed)`: a `.tflite` signature runner and one quantized stand-in clip."""
    from asc_keras.inference import tflite_runner

    if options:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=path, num_threads=num_threads, **options)
    else:
        interpreter = tflite_runner.make_interpreter(path, num_threads=num_threads)
    runner = interpreter.get_signature_runner("serving_default")
    rng = np.random.default_rng(seed)
    feed = {}
    for name, d in runner.get_input_details().items():
        shape = [1, *d["shape_signature"][1:]]
        x = (
            rng.standard_normal(shape) * (0.1 if name == "waveform" else 10.0)
            - (0 if name == "waveform" else 40.0)
        ).astype(np.float32)
        feed[name] = tflite_runner.quantize(x, d)
    return runner, feed


def _time_rows(rows, *, num_threads: int, warmup: int, runs: int, rounds: int) -> None:
    """Fill every row's latency: `rounds` rounds of `runs / rounds` calls, files taking turns."""
    runners = [_runner(r.path, num_threads=num_threads, options=r.options) for r in rows]
    for runner, feed in runners:
        for _ in range(warmup):
            runner(**feed)
    per_round = max(1, runs // rounds)
    times: list[list[list[float]]] = [[] for _ in rows]
    cpu: list[list[float]] = [[] for _ in rows]  # thread CPU time: one thread runs the file
    for _ in range(rounds):
        for k, (runner, feed) in enumerate(runners):
            chunk = []
            for _ in range(per_round):
                c0, t0 = time.thread_time(), time.perf_counter()
                runner(**feed)
                chunk.append((time.perf_counter() - t0) * 1e3)
                cpu[k].append((time.thread_time() - c0) * 1e3)
            times[k].append(chunk)
    for row, chunks, used in zip(rows, times, cpu, strict=True):
        row.cpu_ms = float(np.median(used))
        flat = np.concatenate(chunks)
        medians = [float(np.median(c)) for c in chunks]
        row.median_ms, row.p90_ms = float(np.median(flat)), float(np.percentile(flat, 90))
        row.round_ms = (min(medians), max(medians))


def _full_size_config(inputs, strategies, *, num_frames=862, num_classes=3, width=1.0):
    from asc_keras.config import ModelConfig

    return ModelConfig(
        backbone="1b",
        inputs=inputs,
        input_bins={r: 64 for r in inputs},
        num_frames=num_frames,
        num_classes=num_classes,
        fusion="ef" if len(inputs) > 1 else "single",
        strategies=strategies,
        width=width,
    )


def _untrained(folder: str, name: str, inputs, strategies, *, audio: bool, tau2022=False):
    """Export an untrained full-size model twice (baseline, current); `tau2022`: the TAU 2022
    system of `configs/tau2022_ef_spsmt.flags` (1 s clips, 87 frames, 10 classes, width 0.5).

    Returns:
        `(size dict, {'baseline' | 'current': (folder, entries)})`.
    """
    from asc_keras.config import FeatureConfig
    from asc_keras.export import artifacts, calibration
    from asc_keras.models.rules import size_summary
    from asc_keras.strategies import build_model

    clip = dict(clip_seconds=1.0, sample_rate=44100) if tau2022 else {}
    feature_cfg = FeatureConfig(logmel_bins=64, representations=tuple(inputs), **clip)
    sizes = dict(num_frames=87, num_classes=10, width=0.5) if tau2022 else {}
    model = build_model(_full_size_config(tuple(inputs), strategies, **sizes))
    normalization = {r: {"mean": np.full(64, -40.0), "std": np.full(64, 12.0)} for r in inputs}
    calib = calibration.synthetic_examples(feature_cfg.shapes, normalization, 32, seed=0)
    exports = {}
    for kind in ("baseline", "current"):
        out = os.path.join(folder, name, kind)
        os.makedirs(out)
        exports[kind] = (
            out,
            artifacts.write_artifacts(
                model,
                normalization,
                out,
                feature_cfg=feature_cfg,
                calibration=calib,
                audio=audio,
                rewrite=kind == "current",
                log=lambda *_: None,
            ),
        )
    return size_summary(model, "tau2022" if tau2022 else "1b"), exports


def _layer_profile(folder: str, timing: dict, *, tau2022: bool = False) -> str:
    """`--layers`: cumulative int8 latency of the rewritten 1B EF + SPSMT network, cut by cut
    (`tau2022`: the TAU 2022 system of `configs/tau2022_ef_spsmt.flags`, 1 s clips)."""
    import keras

    from asc_keras.export import rewrite, savedmodel, tflite
    from asc_keras.models.complexity import layer_macs
    from asc_keras.strategies import build_model

    sizes = dict(num_frames=87, num_classes=10, width=0.5) if tau2022 else {}
    network = rewrite.for_tflite(build_model(_full_size_config(EF_INPUTS, ("spsmt",), **sizes)))
    macs = layer_macs(network)
    ends = (
        keras.layers.ReLU,
        keras.layers.DepthwiseConv2D,
        rewrite.ChannelStack,
        rewrite.FrequencyNeighbours,
    )
    outputs = {id(t) for t in network.outputs}
    cuts = [
        layer for layer in network.layers if isinstance(layer, ends) or id(layer.output) in outputs
    ]
    rng = np.random.default_rng(0)
    shapes = {t.name: tuple(t.shape[1:]) for t in network.inputs}

    def representative():
        for _ in range(16):
            yield {
                n: rng.standard_normal((1, *shape)).astype(np.float32)
                for n, shape in shapes.items()
            }

    rows, group_macs, seen = [], [], set()
    for layer in cuts:
        part = keras.Model(network.inputs, layer.output, name=f"cut_{layer.name}")
        sm_dir = os.path.join(folder, f"cut_{layer.name}")
        savedmodel.export_saved_model(part, sm_dir)
        path = sm_dir + ".tflite"
        with open(path, "wb") as f:
            f.write(tflite.convert_int8(sm_dir, representative))
        in_part = {x.name for x in part.layers}
        between = [n for n in macs if n not in seen and n in in_part]
        seen.update(between)
        rows.append(Row(layer.name, type(layer).__name__, os.path.getsize(path) / 1024, path))
        group_macs.append(sum(macs[n] for n in between))
    _time_rows(rows, **timing)
    lines = [
        f"int8 {'tau2022_ef_spsmt 1 s' if tau2022 else '1b_ef_spsmt'} (untrained, rewritten as "
        f"export.py writes it) cut after each fused group; LiteRT num_threads="
        f"{timing['num_threads']}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} "
        "cores; cpu = median CPU time of the calling thread",
        f"{'cut after':28s} {'layer type':20s} {'cumulative ms':>14s} {'+ms':>7s} "
        f"{'cpu ms':>7s} {'+cpu ms':>8s} {'MACs (M)':>9s} {'GMAC/s':>7s}",
    ]
    before = before_cpu = 0.0
    for r, group in zip(rows, group_macs, strict=True):
        delta, delta_cpu = r.median_ms - before, r.cpu_ms - before_cpu
        rate = f"{group / delta_cpu / 1e6:7.0f}" if group > 1e6 and delta_cpu > 0 else "-"
        lines.append(
            f"{r.model:28s} {r.artifact:20s} {r.median_ms:14.3f} {delta:+7.3f} "
            f"{r.cpu_ms:7.3f} {delta_cpu:+8.3f} {group / 1e6:9.1f} {rate:>7s}"
        )
        before, before_cpu = r.median_ms, r.cpu_ms
    return "\n".join(lines)


# Single int8 CONV_2D files that measure the machine's achievable int8 convolution rate:
# (name, input [t, f, c], filters, kernel). The first is the 1B network's second 7x7
# convolution (after the first 4 x 2 pool of a 10 s clip: 215 frames, 32 bins, 32 channels),
# the convolution that holds most of its MACs; the others are wider channel counts, which
# XNNPACK's int8 kernels run at least as well.
PEAK_CONVS = (
    ("conv7x7 32->32 on [215, 32]", (215, 32, 32), 32, (7, 7)),
    ("conv3x3 64->64 on [108, 16]", (108, 16, 64), 64, (3, 3)),
    ("conv7x7 64->64 on [54, 8]", (54, 8, 64), 64, (7, 7)),
)
# Interpreter settings tried on every file (`ai_edge_litert.interpreter.Interpreter` keywords).
OPTION_VARIANTS = {
    "xnnpack": {},  # the default: XNNPACK delegate
    "builtin": {"experimental_op_resolver_type": "BUILTIN_WITHOUT_DEFAULT"},  # no XNNPACK
    "latest": {"experimental_default_delegate_latest_features": True},  # XNNPACK, newest
}


def _options(variant: dict) -> dict:
    from ai_edge_litert.interpreter import OpResolverType

    out = dict(variant)
    if out.get("experimental_op_resolver_type") == "BUILTIN_WITHOUT_DEFAULT":
        out["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return out


def _peak_conv(folder: str, name: str, shape, filters: int, kernel) -> tuple[str, int]:
    """`(path, MACs)` of one int8 convolution (+ ReLU) file, calibrated on N(0, 1) inputs."""
    import keras

    from asc_keras.export import savedmodel, tflite

    x = keras.Input(shape, name="x")
    y = keras.layers.Conv2D(filters, kernel, padding="same", activation="relu", name="conv")(x)
    model = keras.Model(x, y, name="peak_conv")
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(8):
            yield {"x": rng.standard_normal((1, *shape)).astype(np.float32)}

    sm_dir = os.path.join(folder, name.split()[0] + f"_{shape[-1]}")
    savedmodel.export_saved_model(model, sm_dir)
    path = sm_dir + ".tflite"
    with open(path, "wb") as f:
        f.write(tflite.convert_int8(sm_dir, representative))
    macs = shape[0] * shape[1] * shape[2] * filters * kernel[0] * kernel[1]
    return path, macs


def _floor(folder: str, timing: dict, variants) -> str:
    """`--floor`: int8 latency of the 1B EF + SPSMT and TAU 2022 files against MACs / peak."""
    rows, macs = [], {}
    for name, tau in (("1b_ef_spsmt 10 s", False), ("tau2022_ef_spsmt 1 s", True)):
        size, exports = _untrained(
            folder, name.split()[0], EF_INPUTS, ("spsmt",), audio=False, tau2022=tau
        )
        for kind, (out, _) in exports.items():
            path = os.path.join(out, "model_int8.tflite")
            for v in variants:
                label = f"{name}, {kind}"
                rows.append(Row(label, v, os.path.getsize(path) / 1024, path))
                rows[-1].options = _options(OPTION_VARIANTS[v])
                macs[label] = size["macs"]
    for name, shape, filters, kernel in PEAK_CONVS:
        path, n = _peak_conv(folder, name, shape, filters, kernel)
        for v in variants:
            rows.append(Row(name, v, os.path.getsize(path) / 1024, path))
            rows[-1].options = _options(OPTION_VARIANTS[v])
            macs[name] = n
    _time_rows(rows, **timing)
    peak_rows = [r for r in rows if r.model in dict((p[0], p) for p in PEAK_CONVS)]
    best = max(peak_rows, key=lambda r: macs[r.model] / r.cpu_ms)
    rate = macs[best.model] / best.cpu_ms  # MACs per ms of CPU time
    lines = [
        f"int8, LiteRT num_threads={timing['num_threads']}, one clip per call; load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores. cpu ms = median CPU time of the "
        "calling thread per call (what the ratio uses: on a shared machine the wall time of a "
        "long call includes waits for the core)",
        f"peak int8 convolution rate: {rate / 1e6:.1f} GMAC/s ({best.model}, {best.artifact})",
        f"{'file':38s} {'interpreter':12s} {'MACs (M)':>9s} {'wall ms':>8s} {'cpu ms':>8s} "
        f"{'GMAC/s':>7s} {'floor ms':>9s} {'ratio':>6s}",
    ]
    for r in rows:
        floor_ms = macs[r.model] / rate
        lines.append(
            f"{r.model:38s} {r.artifact:12s} {macs[r.model] / 1e6:9.1f} {r.median_ms:8.3f} "
            f"{r.cpu_ms:8.3f} {macs[r.model] / r.cpu_ms / 1e6:7.1f} "
            f"{floor_ms:9.3f} {r.cpu_ms / floor_ms:5.2f}x"
        )
    return "\n".join(lines)


def _score(path: str, manifest, split: str, batch_size: int, classes):
    from asc_keras.evaluation import evaluator, metrics
    from asc_keras.inference import predictors

    probs, meta = evaluator.predict(
        predictors.TFLitePredictor(path),
        manifest,
        split=split,
        normalization=None,
        batch_size=batch_size,
    )
    m = metrics.compute_metrics(meta["label"], probs, meta["device"], classes)["all"]
    return m["accuracy"], m["log_loss"]


def _format(rows, *, threads: int, note: str, clip_seconds: float) -> str:
    lines = [
        note,
        f"LiteRT, num_threads={threads}, one {clip_seconds:g} s clip per call; "
        f"load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
        f"{'model':43s} {'artifact':20s} {'file KB':>8s} {'median ms':>10s} "
        f"{'p90 ms':>8s} {'rounds ms':>13s} {'accuracy':>9s} {'log loss':>9s}",
    ]
    for r in rows:
        acc = "-" if r.accuracy is None else f"{r.accuracy * 100:.2f}%"
        ll = "-" if r.log_loss is None else f"{r.log_loss:.4f}"
        spread = f"{r.round_ms[0]:.2f}-{r.round_ms[1]:.2f}"
        lines.append(
            f"{r.model:43s} {r.artifact:20s} {r.kb:8.1f} {r.median_ms:10.3f} "
            f"{r.p90_ms:8.3f} {spread:>13s} {acc:>9s} {ll:>9s}"
        )
    return "\n".join(lines)


def _ratios(rows) -> list[str]:
    """`baseline / current` latency of every artifact exported both ways."""
    lines = []
    for r in rows:
        if not r.model.endswith(", current"):
            continue
        base_name = r.model.replace(", current", ", baseline")
        base = [b for b in rows if b.model == base_name and b.artifact == r.artifact]
        if base:
            lines.append(
                f"speed-up {r.model.split(' (')[0]} {r.artifact}: baseline "
                f"{base[0].median_ms:.3f} ms / current {r.median_ms:.3f} ms = "
                f"{base[0].median_ms / r.median_ms:.2f}x"
            )
    return lines


def main(argv=None) -> int:
    from asc_keras.cli import quiet

    quiet.setup(sys.argv)  # before TensorFlow loads: no native log lines unless asked
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_dir", default=None)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--features_dir", default=None)
    parser.add_argument("--export_dir", default=None)
    parser.add_argument("--split", default="evaluate")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--num_threads", type=int, default=1)
    parser.add_argument(
        "--layers",
        action="store_true",
        help="where the int8 1B EF + SPSMT latency goes, layer group by group",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="int8 1B EF + SPSMT and TAU 2022 latency against MACs / the peak int8 conv rate",
    )
    parser.add_argument(
        "--variants",
        default="xnnpack",
        help=f"--floor: comma-separated interpreter settings of {sorted(OPTION_VARIANTS)}",
    )
    parser.add_argument(
        "--tau2022",
        action="store_true",
        help="--layers: profile the TAU 2022 system (configs/tau2022_ef_spsmt.flags, 1 s clips)",
    )
    args = parser.parse_args(argv)
    timing = dict(
        num_threads=args.num_threads, warmup=args.warmup, runs=args.runs, rounds=args.rounds
    )
    if args.floor:
        with tempfile.TemporaryDirectory() as tmp:
            print(_floor(tmp, timing, [v.strip() for v in args.variants.split(",")]))
        return 0
    if args.layers:
        with tempfile.TemporaryDirectory() as tmp:
            print(_layer_profile(tmp, timing, tau2022=args.tau2022))
        return 0

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        clip_seconds = 10.0
        if args.model_dir is None:
            note = (
                "UNTRAINED full-size models (latency and size only; no accuracy without "
                "--model_dir)"
            )
            for name, inputs, strategies, audio in (
                ("1b_ef_spsmt", EF_INPUTS, ("spsmt",), False),
                ("1b_logmel", ("logmel",), (), True),
            ):
                size, exports = _untrained(tmp, name, inputs, strategies, audio=audio)
                for kind, (out, entries) in exports.items():
                    label = f"{name} ({size['dcase_kb']:.0f} KB rule), {kind}"
                    rows += [
                        Row(label, e["name"], e["bytes"] / 1024, os.path.join(out, e["name"]))
                        for e in entries
                        if e["name"].endswith(".tflite") and e["status"] == "ok"
                    ]
            _time_rows(rows, **timing)
        else:
            from asc_keras.config import DataConfig, ExportConfig
            from asc_keras.data.manifest import load_manifest
            from asc_keras.export import artifacts, exporter, samples, serving
            from asc_keras.models.rules import size_summary

            trained = serving.load_run(args.model_dir)
            clip_seconds = trained.feature_config.clip_seconds
            export_dir = args.export_dir or os.path.join(tmp, "export")
            have = all(
                os.path.exists(os.path.join(export_dir, f))
                for f in (artifacts.TFLITE, artifacts.TFLITE_INT8)
            )
            data_cfg = None
            if args.data_dir:
                data_cfg = DataConfig(
                    data_dir=args.data_dir,
                    task=trained.task,
                    features_dir=args.features_dir
                    or os.path.join(os.path.expanduser("~"), ".cache", "asc_keras", "features"),
                )
            if not have:
                exporter.run(
                    ExportConfig(model_dir=args.model_dir, export_dir=export_dir),
                    data_cfg=data_cfg,
                    features_dir=args.features_dir,
                )
            manifest = samples.find_features(
                trained, data_cfg=data_cfg, features_dir=args.features_dir, log=lambda *_: None
            )
            if manifest is not None and args.split not in manifest.splits:
                from asc_keras.data import precompute

                folder = precompute.ensure_features(
                    trained.feature_config, data_cfg, splits=(args.split,), progress=False
                )
                manifest = load_manifest(folder)
            size = size_summary(trained.model, trained.task)
            label = f"{trained.model.name} ({size['dcase_kb']:.0f} KB rule)"
            note = f"trained run {args.model_dir}, scored on split {args.split!r}"
            for name in sorted(os.listdir(export_dir)):
                if not name.endswith(".tflite"):
                    continue
                path = os.path.join(export_dir, name)
                rows.append(Row(label, name, os.path.getsize(path) / 1024, path))
            _time_rows(rows, **timing)
            for row in rows:
                name = row.artifact
                if manifest is not None and name in (artifacts.TFLITE, artifacts.TFLITE_INT8):
                    row.accuracy, row.log_loss = _score(
                        row.path, manifest, args.split, args.batch_size, trained.classes
                    )
    print(_format(rows, threads=args.num_threads, note=note, clip_seconds=clip_seconds))
    for line in _ratios(rows):
        print(line)
    ef = [
        r
        for r in rows
        if r.artifact in ("model.tflite", "model_int8.tflite")
        and not r.model.endswith(", baseline")
    ]
    for r in ef:
        ok = r.median_ms <= TARGET_MS
        print(
            f"target {r.model} {r.artifact}: {r.median_ms:.3f} ms "
            f"{'<=' if ok else '>'} {TARGET_MS} ms"
        )
    for r in (r for r in ef if r.artifact == "model_int8.tflite"):
        print(
            f"target {r.model} int8 file: {r.kb:.1f} KB "
            f"{'<=' if r.kb <= TARGET_INT8_KB else '>'} {TARGET_INT8_KB:.0f} KB"
        )
    scored = {r.artifact: r for r in rows if r.accuracy is not None}
    if {"model.tflite", "model_int8.tflite"} <= set(scored):
        f, q = scored["model.tflite"], scored["model_int8.tflite"]
        print(
            f"int8 vs float: accuracy {100 * (q.accuracy - f.accuracy):+.2f} points, "
            f"log loss {q.log_loss - f.log_loss:+.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
