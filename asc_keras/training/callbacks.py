"""What the training loop reports: TensorBoard summaries, console lines, and the NaN guard.

The device loop (`loop`) finds a non-finite loss and stops at it; the host then calls
`check_finite` on that step's losses, so the error names the exact step whatever the loop length.

TensorBoard (`<model_dir>/train`, `<model_dir>/eval`):
- train: `loss` (total, mean since the last log), `loss/<output>` per trained output (with a
  teacher also `loss/ce` and `loss/kd`, the distillation loss's two terms),
  `learning_rate`, `steps_per_second`;
- eval: `accuracy` (macro over classes, the DCASE metric), `log_loss` (mean over clips),
  `macro_accuracy_device_a` and `log_loss_device_a` (the same two on device a's clips),
  `micro_accuracy_per_device/<device>` (share of that device's clips right), and the
  `confusion_matrix` image. One tag per quantity, named by what it is.

`check_finite(losses, step=..., checkpoint_step=...)` raises `NonFiniteLossError` naming the step
and the checkpoint kept (or that there is none) instead of letting a NaN run on (Keras'
TerminateOnNaN only stops quietly). `interrupted(step, checkpoint_step)` is the one line of a run
stopped by Ctrl-C: "interrupted at step N; checkpoint at step M; rerun to resume".
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping

from asc_keras.errors import AscError


class NonFiniteLossError(AscError, FloatingPointError):
    """A training step produced a NaN or infinite loss."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (SIGINT); the message is the one line to print."""


def check_finite(
    losses: Mapping[str, float], *, step: int, checkpoint_step: int | None = None
) -> None:
    """Raise `NonFiniteLossError` (one line naming the step and the checkpoint kept, if any)
    if any loss is NaN or infinite."""
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        shown = ", ".join(f"{k}={v}" for k, v in bad.items())
        kept = (
            "no checkpoint was written yet"
            if checkpoint_step is None
            else f"the checkpoint at step {checkpoint_step} is kept"
        )
        raise NonFiniteLossError(
            f"training step {step}: non-finite loss ({shown}); {kept}: lower --learning_rate "
            "or check the features"
        )


def interrupted(step: int, checkpoint_step: int | None) -> TrainingInterrupted:
    """The one-line `TrainingInterrupted` of a run stopped at `step`."""
    if checkpoint_step is None:
        return TrainingInterrupted(
            f"interrupted at step {step}; no checkpoint yet; rerun to start again"
        )
    return TrainingInterrupted(
        f"interrupted at step {step}; checkpoint at step {checkpoint_step}; rerun to resume"
    )


class LossAverager:
    """Running means of the step losses between two logs."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0
        self.start = time.perf_counter()

    def add(self, losses: Mapping[str, float]) -> None:
        self.add_sums(losses, 1)

    def add_sums(self, sums: Mapping[str, float], steps: int) -> None:
        """Add the loss sums of `steps` steps (one device loop)."""
        for k, v in sums.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += steps

    def means(self) -> dict[str, float]:
        return {k: v / max(1, self.count) for k, v in self.sums.items()}

    def steps_per_second(self) -> float:
        return self.count / max(1e-9, time.perf_counter() - self.start)


class Summaries:
    """TensorBoard writers of a run; no-ops on non-chief workers.

    Args:
      model_dir: the run folder (event files go to `train/` and `eval/`).
      enabled: False on workers that must not write.
    """

    def __init__(self, model_dir: str, *, enabled: bool = True):
        import tensorflow as tf

        self._tf = tf
        if enabled:
            self.train = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
            self.eval = tf.summary.create_file_writer(os.path.join(model_dir, "eval"))
        else:
            self.train = self.eval = tf.summary.create_noop_writer()

    def log_train(
        self,
        step: int,
        losses: Mapping[str, float],
        *,
        learning_rate: float,
        steps_per_second: float,
    ) -> None:
        tf = self._tf
        with self.train.as_default(step=step):
            for name, value in losses.items():
                tf.summary.scalar("loss" if name == "total" else f"loss/{name}", value)
            tf.summary.scalar("learning_rate", learning_rate)
            tf.summary.scalar("steps_per_second", steps_per_second)
        self.train.flush()

    def log_eval(self, step: int, metrics: Mapping, *, confusion_png: bytes | None) -> None:
        """Scalars of `compute_metrics` output, plus the confusion matrix PNG as an image."""
        tf = self._tf
        with self.eval.as_default(step=step):
            tags = {
                "all": ("accuracy", "log_loss"),
                "device_a": ("macro_accuracy_device_a", "log_loss_device_a"),
            }
            for subset, names in tags.items():
                entry = metrics.get(subset)
                if not entry:
                    continue
                for key, tag in zip(("accuracy", "log_loss"), names, strict=True):
                    if entry.get(key) is not None:
                        tf.summary.scalar(tag, entry[key])
            for device, entry in (metrics.get("all") or {}).get("device_wise", {}).items():
                if entry.get("accuracy") is not None:
                    tf.summary.scalar(f"micro_accuracy_per_device/{device}", entry["accuracy"])
            if confusion_png:
                image = tf.image.decode_png(confusion_png, channels=4)[None]  # [1, H, W, 4]
                tf.summary.image("confusion_matrix", image)
        self.eval.flush()

    def close(self) -> None:
        for w in {id(self.train): self.train, id(self.eval): self.eval}.values():
            w.close()


def format_train_line(
    step: int,
    total_steps: int,
    losses: Mapping[str, float],
    *,
    learning_rate: float,
    steps_per_second: float,
) -> str:
    parts = [f"step {step}/{total_steps}", f"loss {losses.get('total', float('nan')):.4f}"]
    if 2 < len(losses) <= 7:  # per-output losses, when there are a few
        parts += [f"{k} {v:.4f}" for k, v in losses.items() if k != "total"]
    parts += [f"lr {learning_rate:.3g}", f"{steps_per_second:.2f} steps/s"]
    return "  ".join(parts)


Log = Callable[[str], None]
