"""tf.distribute strategies for training: one device, all local devices, or several machines.

`make_strategy(name)`:
- 'default': one device: `OneDeviceStrategy` on the first GPU when there is one (so that the
  input is prefetched into its memory), TensorFlow's default strategy on a CPU-only machine;
- 'mirrored': `MirroredStrategy` over the local GPUs (the CPU when there are none);
- 'multi_worker': `MultiWorkerMirroredStrategy`; the cluster and this worker's role come from the
  `TF_CONFIG` environment variable. Create it before any other TensorFlow work in the process.

Only the chief writes the run's files; `worker_dir(model_dir, strategy)` gives the other workers
a scratch folder for the checkpoints they must also save (they take part in the save).

`distribute_dataset(strategy, dataset)` / `distribute_dataset_fn(strategy, fn)` distribute the
training input with `input_options()`: batches are prefetched onto each replica's device (two per
replica), so the accelerator does not wait on the host copy.
"""

from __future__ import annotations

import json
import os


def make_strategy(name: str):
    """A `tf.distribute.Strategy` by name (see the module docstring)."""
    import tensorflow as tf

    if name == "default":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.OneDeviceStrategy(gpus[0].name)
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "--distribution=multi_worker needs the TF_CONFIG environment "
                "variable (cluster spec and this worker's task)"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown distribution {name!r}; expected default, mirrored or multi_worker")


def task_info(strategy) -> tuple[str | None, int]:
    """`(task type, task id)` of this process; `(None, 0)` outside a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files (always true on one machine)."""
    task_type, task_id = task_info(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_dir(model_dir: str, strategy) -> str:
    """`model_dir` for the chief, a per-worker scratch folder inside it for the others."""
    if is_chief(strategy):
        return model_dir
    task_type, task_id = task_info(strategy)
    return os.path.join(model_dir, f"workertemp_{task_type}_{task_id}")


def input_options():
    """`tf.distribute.InputOptions`: prefetch two batches per replica onto its device."""
    import tensorflow as tf

    return tf.distribute.InputOptions(
        experimental_fetch_to_device=True, experimental_per_replica_buffer_size=2
    )


def distribute_dataset(strategy, dataset):
    """`strategy.experimental_distribute_dataset` with `input_options()`."""
    return strategy.experimental_distribute_dataset(dataset, options=input_options())


def distribute_dataset_fn(strategy, dataset_fn):
    """`strategy.distribute_datasets_from_function` with `input_options()`."""
    return strategy.distribute_datasets_from_function(dataset_fn, options=input_options())
