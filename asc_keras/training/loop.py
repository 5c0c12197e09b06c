"""The device side of training: K steps per `tf.function` call, batched validation, pre-flight.

- `make_train_loop(strategy, model, optimizer, loss_kinds, step_var, *, global_batch,
  jit_compile)` -> `loop(iterator, num_steps)`: one `tf.function` that runs up to `num_steps`
  training steps (each `strategy.run` of forward, one categorical cross-entropy per loss output
  cast to float32, backward, update) on batches `({rep: [B, T, F]}, labels float32 [B, C])` from
  a (distributed) iterator, sums the global mean losses on the device, and stops early at the
  first non-finite loss. With `distill` (`training.distill`) the labels are `[B, 2C]` (one-hot
  and teacher soft targets) and each output's loss is the distillation loss; its unweighted
  terms `ce` and `kd` are summed and logged beside the total. It returns a `LoopResult` of
  tensors; the host reads it once per loop.
  `num_steps` is a tensor, so loops of any length share one trace. With `single_step=True`
  (`--steps_per_loop=1`) every call runs one step in a `tf.function` without the loop, which
  the largest joint models (24 CNNs) trace and optimize in about two thirds of the time.
- `make_train_step(...)` -> `train_step(features, labels)`: one step through the one-step
  loop, for benchmarks and tests.
- `next_loop_end(step, total, steps_per_loop, cadences)`: where the loop that starts at `step`
  ends: after `steps_per_loop` steps, at the next multiple of every cadence (log, checkpoint,
  validation) or at `total`, whichever comes first. The host's work thus happens at exactly the
  same steps whatever K is, and since every step draws one batch from a pipeline that is a pure
  function of the seed and the step, K changes speed but not the weights.
- `make_predict_all(model)` -> `predict_all(dataset)`: the whole evaluate split predicted in one
  `tf.function` call: float32 probabilities `[N, C]`, labels int64 `[N]`, file names and devices
  (strings `[N]`) stacked on the device and read by the host once per validation.
- `preflight_determinism(strategy, model, loss_kinds, batch_size)`: one forward and backward
  pass on zeros under op determinism, the variables it touches restored afterwards, so that an
  op without a deterministic kernel (on GPUs, e.g. the bilinear resize gradient of EF and MF in
  some TensorFlow versions) stops the run with one line before its first step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from asc_keras.errors import AscError
from asc_keras.training import distill as distill_lib


class LoopResult(NamedTuple):
    """What one loop call returns (tensors; `numpy()` on the host).

    `loss_sums`: {output or 'total': float32 sum over the finite steps of the global mean loss};
    `steps`: int64, steps run (the non-finite one included); `finite`: bool, False when the last
    step's loss was NaN or infinite; `last_losses`: {name: float32} of the last step run.
    """

    loss_sums: Mapping
    steps: object
    finite: object
    last_losses: Mapping


class DeterminismError(AscError, ValueError):
    """`--deterministic` asked for an op that has no deterministic kernel on this device."""


def _replica_step(
    model,
    optimizer,
    loss_kinds: Mapping[str, str],
    *,
    global_batch: int,
    apply: bool = True,
    distill=None,
):
    import keras
    import tensorflow as tf

    from asc_keras.models.losses import framewise_categorical_crossentropy

    def mean(per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)

    def replica_step(features, labels):
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            losses, terms = {}, {distill_lib.CE: [], distill_lib.KD: []}
            if distill is not None:
                labels, targets = distill_lib.split_targets(labels, distill.num_classes)
            for name, kind in loss_kinds.items():
                y_pred = tf.cast(outputs[name], tf.float32)  # [b, C] or [b, T', C]
                if distill is not None:
                    ce, kd = distill_lib.kd_terms(
                        kind, labels, targets, y_pred, temperature=distill.temperature
                    )  # [b], [b]
                    per_example = distill.kd_lambda * ce + (1.0 - distill.kd_lambda) * kd
                    terms[distill_lib.CE].append(mean(ce))
                    terms[distill_lib.KD].append(mean(kd))
                elif kind == "frames":
                    per_example = framewise_categorical_crossentropy(labels, y_pred)  # [b]
                else:
                    per_example = keras.losses.categorical_crossentropy(labels, y_pred)  # [b]
                losses[name] = mean(per_example)
            total = tf.add_n(list(losses.values()))
            if model.losses:
                total += tf.nn.scale_regularization_loss(
                    tf.add_n([tf.cast(x, tf.float32) for x in model.losses])
                )
            scaled = optimizer.scale_loss(total) if apply else total
        grads = tape.gradient(scaled, model.trainable_variables)
        if apply:
            optimizer.apply(grads, model.trainable_variables)
        losses["total"] = total
        if distill is not None:  # the unweighted terms, summed over the outputs
            losses.update({k: tf.add_n(v) for k, v in terms.items()})
        if not apply:
            losses["grad_norm"] = tf.linalg.global_norm(
                [tf.cast(g, tf.float32) for g in grads if g is not None]
            )
        return losses

    return replica_step


def make_train_loop(
    strategy,
    model,
    optimizer,
    loss_kinds: Mapping[str, str],
    step_var,
    *,
    global_batch: int,
    jit_compile: bool,
    single_step: bool = False,
    distill=None,
):
    """The K-step training function `loop(iterator, num_steps) -> LoopResult` (module doc).

    Args:
      strategy: the `tf.distribute` strategy the model and optimizer were built under.
      model: the Keras model; `loss_kinds` `{output name: 'clip' | 'frames'}` names its trained
        outputs (`strategies.loss_outputs`).
      optimizer: built on `model.trainable_variables` (a `LossScaleOptimizer` scales the loss).
      step_var: int64 variable incremented once per step (checkpointed with the run).
      global_batch: the global batch size (losses are global means).
      jit_compile: XLA-compile each replica step.
      single_step: every call runs exactly one step (`--steps_per_loop=1`): a `tf.function`
        without the loop around the step (module doc); same kernels, same weights.
      distill: a `distill.Distillation` (labels are then `[B, 2C]`: one-hot, teacher soft
        targets): the distillation loss, and its two terms `ce` and `kd` among the losses.
    """
    import tensorflow as tf

    replica_step = _replica_step(
        model, optimizer, loss_kinds, global_batch=global_batch, distill=distill
    )
    replica_fn = tf.function(replica_step, jit_compile=True) if jit_compile else replica_step
    names = [*loss_kinds, "total"] + ([distill_lib.CE, distill_lib.KD] if distill else [])

    def zeros():
        return {k: tf.constant(0.0, tf.float32) for k in names}

    def step(features, labels):
        """One step on every replica: `({name: global mean loss}, all finite)`."""
        per_replica = strategy.run(replica_fn, args=(features, labels))
        last = {
            k: strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica[k], axis=None) for k in names
        }
        step_var.assign_add(1)
        return last, tf.reduce_all(tf.stack([tf.math.is_finite(v) for v in last.values()]))

    @tf.function
    def loop(iterator, num_steps):
        sums, last = zeros(), zeros()
        done = tf.constant(0, tf.int64)
        finite = tf.constant(True)
        for _ in tf.range(tf.cast(num_steps, tf.int64)):
            batch = iterator.get_next_as_optional()
            if not batch.has_value():
                break
            last, finite = step(*batch.get_value())
            done += 1
            if not finite:
                break
            sums = {k: sums[k] + last[k] for k in names}
        return LoopResult(loss_sums=sums, steps=done, finite=finite, last_losses=last)

    @tf.function
    def one_step(iterator):
        last, finite = step(*iterator.get_next())  # OutOfRangeError at the end of the data
        sums = {k: tf.where(finite, last[k], 0.0) for k in names}  # finite steps only
        return LoopResult(
            loss_sums=sums, steps=tf.constant(1, tf.int64), finite=finite, last_losses=last
        )

    def run_loop(iterator, num_steps: int) -> LoopResult:
        if not single_step:
            return loop(iterator, tf.constant(num_steps, tf.int64))
        if num_steps != 1:
            raise ValueError(f"a single-step training function asked for {num_steps} steps")
        try:
            return one_step(iterator)
        except tf.errors.OutOfRangeError:
            return LoopResult(
                loss_sums=zeros(),
                steps=tf.constant(0, tf.int64),
                finite=tf.constant(True),
                last_losses=zeros(),
            )

    return run_loop


def make_train_step(
    strategy,
    model,
    optimizer,
    loss_kinds: Mapping[str, str],
    step_var,
    *,
    global_batch: int,
    jit_compile: bool,
    distill=None,
):
    """One step as a function of a batch: `(features, labels) -> {output: loss, 'total': loss}`
    (global means), through the one-step loop (for benchmarks and tests)."""
    import tensorflow as tf

    train_loop = make_train_loop(
        strategy,
        model,
        optimizer,
        loss_kinds,
        step_var,
        global_batch=global_batch,
        jit_compile=jit_compile,
        single_step=True,
        distill=distill,
    )

    def train_step(features, labels):
        batches = iter(tf.data.Dataset.from_tensors((features, labels)))
        return train_loop(batches, 1).last_losses

    return train_step


def next_loop_end(step: int, total: int, steps_per_loop: int, cadences: Iterable[int]) -> int:
    """The step at which the loop starting at `step` ends (see the module docstring)."""
    end = min(total, step + max(1, steps_per_loop))
    for every in cadences:
        if every > 0:
            end = min(end, (step // every + 1) * every)
    return end


def make_predict_all(model):
    """`predict_all(dataset) -> (probs float32 [N, C], label int64 [N], filename [N], device
    [N], batches int32)` over a dataset of `({rep: [B, T, F]}, {'label', 'filename',
    'device', ...})` batches, stacked on the device in one call."""
    import tensorflow as tf

    num_classes = int(model.outputs[0].shape[-1]) if len(model.outputs) == 1 else None

    @tf.function
    def predict_all(dataset):
        probs = tf.TensorArray(
            tf.float32,
            size=0,
            dynamic_size=True,
            infer_shape=False,
            element_shape=tf.TensorShape([None, num_classes]),
        )
        labels = tf.TensorArray(
            tf.int64,
            size=0,
            dynamic_size=True,
            infer_shape=False,
            element_shape=tf.TensorShape([None]),
        )
        files = tf.TensorArray(
            tf.string,
            size=0,
            dynamic_size=True,
            infer_shape=False,
            element_shape=tf.TensorShape([None]),
        )
        devices = tf.TensorArray(
            tf.string,
            size=0,
            dynamic_size=True,
            infer_shape=False,
            element_shape=tf.TensorShape([None]),
        )
        i = tf.constant(0)
        for features, meta in dataset:
            probs = probs.write(i, tf.cast(model(features, training=False)["probs"], tf.float32))
            labels = labels.write(i, tf.cast(meta["label"], tf.int64))
            files = files.write(i, meta["filename"])
            devices = devices.write(i, meta["device"])
            i += 1
        return probs.concat(), labels.concat(), files.concat(), devices.concat(), i

    return predict_all


def preflight_determinism(
    strategy, model, loss_kinds: Mapping[str, str], *, batch_size: int, distill=None
) -> None:
    """Run one forward and backward pass on zeros (no update) and restore every model variable.

    Raises:
      DeterminismError: an op of the training step has no deterministic kernel here; one line.
    """
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    per_replica = max(1, batch_size // replicas)
    features = {t.name: tf.zeros((per_replica, *t.shape[1:]), tf.float32) for t in model.inputs}
    num_classes = int(model.outputs[0].shape[-1])
    width = num_classes * (2 if distill is not None else 1)
    labels = tf.fill((per_replica, width), 1.0 / num_classes)
    probe = _replica_step(
        model,
        None,
        loss_kinds,
        global_batch=per_replica * replicas,
        apply=False,
        distill=distill,
    )
    saved = [v.numpy() for v in model.variables]
    try:
        tf.function(lambda f, y: strategy.run(probe, args=(f, y)))(features, labels)
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError) as e:
        first = " ".join(str(e.message).split())[:300]
        raise DeterminismError(
            f"--deterministic: the training step uses an op without a deterministic kernel on "
            f"this device ({first}); drop --deterministic or train on another device"
        ) from None
    finally:
        for v, value in zip(model.variables, saved, strict=True):
            v.assign(value)
