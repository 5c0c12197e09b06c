"""The Apache Beam engine of precompute: missing shards computed by a Beam pipeline.

`precompute.ensure_features` plans the shards, verifies the finished ones and writes the
manifest for both engines; with `DataConfig.engine == "beam"` it hands the pending shards to
`write_shards` here instead of to its worker processes. The pipeline:

    Create(pending ShardPlans) -> Reshuffle -> ParDo(write one shard)  --errors--> ToList --+
                                                    | train shard names                     |
    Create(finished train shard names) ------------ Flatten -> read sidecar partial sums    |
                                -> CombineGlobally(train statistics, in shard order) ------ result

- One element is one shard: a worker computes its clips with the local engine's own shard
  writer (`shard_writer.write_shards`, which calls `shard_writer.extract`, the function the local
  worker processes call, one BLAS thread as there) and writes the shard, renamed into place, and
  its sidecar. Shards, sidecars and hence the manifest are byte-identical to the local engine's
  with `num_workers >= 2` (one BLAS thread per worker there too). Features never cross the
  shuffle: only plans go in and shard names come out.
- The train split's per-bin normalization statistics are combined by `_TrainStatsFn` from the
  shards' partial sums (Chan's formula, merged in shard order whatever order the runner combines
  in), the freshly written shards' and the finished ones' alike.
- A bad clip (strict run) stops its shard only: that shard is not written (no partial file), the
  others are, and `write_shards` raises the one-line error of the first failing shard in plan
  order, naming the file. `skip_bad_files` records skipped clips in the sidecars as locally.
- The pipeline's outcome (errors, statistics) comes back to this process as one small JSON file
  in the features folder, read and removed here. The data and features folders must therefore
  be one filesystem seen at the same paths by this process and every Beam worker: the local disk
  with the DirectRunner, a shared mount (NFS, ...) on a Flink or Spark cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import uuid
from collections.abc import Sequence

import numpy as np

from asc_keras.config import DataConfig, FeatureConfig
from asc_keras.data import dcase, shard_writer, shards
from asc_keras.errors import AscError

try:
    import apache_beam as beam
except ImportError:  # the optional extra; write_shards says how to install it
    beam = None

INSTALL_HINT = "pip install -e '.[beam]'"


class BeamNotInstalled(AscError, ImportError, ValueError):
    """`--engine=beam` without apache-beam (a ValueError too: the mains print it as one line)."""


def require_beam() -> None:
    """Raise `BeamNotInstalled` (one line, with the install command) when Beam is missing."""
    if beam is None:
        raise BeamNotInstalled(
            f"--engine=beam needs Apache Beam, which is not installed: {INSTALL_HINT}"
        )


def pipeline_args(data_cfg: DataConfig) -> list[str]:
    """The Beam pipeline options of `data_cfg`: its `beam_pipeline_options`, split like a shell
    line, or by default the DirectRunner with `num_workers` processes (workers log warnings
    only)."""
    if data_cfg.beam_pipeline_options.strip():
        return shlex.split(data_cfg.beam_pipeline_options)
    mode = "multi_processing" if data_cfg.num_workers > 1 else "in_memory"
    return [
        "--runner=DirectRunner",
        f"--direct_num_workers={data_cfg.num_workers}",
        f"--direct_running_mode={mode}",
        "--default_sdk_harness_log_level=WARNING",
    ]


# --- pipeline stages (run on Beam workers) -------------------------------------------------------

_DoFn = beam.DoFn if beam is not None else object
_CombineFn = beam.CombineFn if beam is not None else object


class _WriteShardFn(_DoFn):
    """`(order, ShardPlan)` -> the shard's name once it and its sidecar are written; a strict
    run's bad clip gives `(order, one-line error)` on the `errors` output instead."""

    def __init__(self, folder: str, feature_cfg: FeatureConfig, data_cfg: DataConfig):
        self._folder = folder
        self._feature_cfg = feature_cfg
        self._data_cfg = dataclasses.replace(data_cfg, num_workers=1)  # clips in this process

    def setup(self):
        """librosa's one-off compilation, before the first clip (as `shard_writer.init_worker`)."""
        from threadpoolctl import threadpool_limits

        from asc_keras.features import compute_features

        with threadpool_limits(limits=1):
            compute_features(np.zeros(self._feature_cfg.num_samples, np.float32), self._feature_cfg)

    def process(self, element):
        from threadpoolctl import threadpool_limits

        order, plan = element
        # One BLAS thread, as in the local worker processes: the same bytes, and the runner's
        # processes already fill the cores.
        with threadpool_limits(limits=1):
            try:
                shard_writer.write_shards(
                    self._folder, [plan], self._feature_cfg, self._data_cfg, progress=False
                )
            except dcase.DatasetError as e:
                yield beam.pvalue.TaggedOutput("errors", (order, str(e)))
                return
        yield plan.name


def _read_partial_stats(name: str, folder: str) -> tuple[str, dict]:
    """`(shard name, {rep: RunningStats dict})` from a finished train shard's sidecar."""
    with open(os.path.join(folder, name + ".json")) as f:
        return name, json.load(f)["stats"]


class _TrainStatsFn(_CombineFn):
    """Per-bin statistics of the train split from its shards' partial sums.

    The accumulator keeps each shard's partial sums by shard name; the output merges them in
    shard order, exactly as `precompute` merges the sidecars for the manifest, so the result has
    the same bits whatever order the runner adds and merges in. Output: `{rep: RunningStats
    dict}`.
    """

    def __init__(self, feature_cfg: FeatureConfig):
        self._feature_cfg = feature_cfg

    def create_accumulator(self):
        return {}

    def add_input(self, accumulator, element):
        name, stats = element
        accumulator[name] = stats
        return accumulator

    def merge_accumulators(self, accumulators):
        out = {}
        for acc in accumulators:
            out.update(acc)
        return out

    def extract_output(self, accumulator):
        from asc_keras.features.normalization import RunningStats

        reps = self._feature_cfg.representations
        totals = {r: RunningStats(self._feature_cfg.bins(r)) for r in reps}
        for name in sorted(accumulator):  # shard names sort in shard order
            for rep, d in accumulator[name].items():
                totals[rep].merge(RunningStats.from_dict(d))
        return {r: s.to_dict() for r, s in totals.items()}


def _write_result(_, path: str, errors, stats) -> None:
    """The pipeline's outcome for the launching process: `{"errors", "stats"}` as JSON."""
    from asc_keras import atomic

    atomic.write_json(path, {"errors": sorted(errors), "stats": stats[0] if stats else None})


# --- launching process ---------------------------------------------------------------------------


def write_shards(
    folder: str,
    plans: Sequence[shards.ShardPlan],
    feature_cfg: FeatureConfig,
    data_cfg: DataConfig,
    *,
    train: Sequence[shards.ShardPlan] = (),
    finished: frozenset[str] | set[str] = frozenset(),
    log=print,
):
    """Compute and write the pending shards `plans` with a Beam pipeline; wait for it.

    Args:
      folder: the features folder (seen at this path by every Beam worker).
      plans: the shards to compute, in plan order.
      feature_cfg, data_cfg: the settings; `data_cfg.beam_pipeline_options` picks the runner.
      train: every shard of the train split; when each is in `plans` or `finished`, the split's
        normalization statistics are combined in the pipeline.
      finished: names of the shards already complete and verified.
      log: one-line progress messages.

    Returns:
      `{rep: RunningStats}` of the train split, or None when the train split is not complete.

    Raises:
      BeamNotInstalled: apache-beam is missing.
      DatasetError: a bad clip in a strict run: the first failing shard's one-line error (naming
        the file); every other shard is written.
    """
    require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    from asc_keras.features.normalization import RunningStats

    pending = {p.name for p in plans}
    with_stats = bool(train) and all(p.name in pending or p.name in finished for p in train)
    done_train = [p.name for p in train if p.name not in pending] if with_stats else []
    result_path = os.path.join(folder, f".beam-result-{uuid.uuid4().hex}.json")
    args = pipeline_args(data_cfg)
    log(f"precompute: Beam pipeline ({' '.join(args)}) over {len(plans)} shard(s)")
    try:
        with beam.Pipeline(options=PipelineOptions(args)) as p:
            written = (
                p
                | "Plans" >> beam.Create(list(enumerate(plans)))
                | "Spread" >> beam.Reshuffle()
                | "WriteShards"
                >> beam.ParDo(_WriteShardFn(folder, feature_cfg, data_cfg)).with_outputs(
                    "errors", main="names"
                )
            )
            errors = written.errors | "Errors" >> beam.combiners.ToList()
            if with_stats:
                new_train = written.names | "TrainOnly" >> beam.Filter(
                    lambda name: name.startswith("train-")
                )
                old_train = p | "Finished" >> beam.Create(done_train)
                stats = (
                    (new_train, old_train)
                    | "AllTrain" >> beam.Flatten()
                    | "PartialSums" >> beam.Map(_read_partial_stats, folder)
                    | "TrainStats" >> beam.CombineGlobally(_TrainStatsFn(feature_cfg))
                )
            else:
                stats = p | "NoStats" >> beam.Create([])
            (
                p
                | "Once" >> beam.Create([None])
                | "Result"
                >> beam.Map(
                    _write_result,
                    result_path,
                    errors=beam.pvalue.AsSingleton(errors),
                    stats=beam.pvalue.AsList(stats),
                )
            )
        with open(result_path) as f:
            result = json.load(f)
    finally:
        if os.path.exists(result_path):
            os.remove(result_path)
    if result["errors"]:
        first = result["errors"][0][1]
        more = len(result["errors"]) - 1
        raise dcase.DatasetError(
            first + (f" ({more} more shard(s) stopped on bad files)" if more else "")
        )
    if result["stats"] is None:
        return None
    return {r: RunningStats.from_dict(d) for r, d in result["stats"].items()}
