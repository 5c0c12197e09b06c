"""TrainConfig: how a model is trained (paper section 4.2) and where the run lives."""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType

from asc_keras.config.settings import setting, shared

DISTRIBUTIONS = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
ADAM_UPDATES = ("pytorch", "keras")  # asc_keras.training.optimizer.ADAM_CLASSES

# Values of fields that a run recorded before the field existed had (Keras's own defaults).
LEGACY_TRAIN_FIELDS = MappingProxyType(
    {"adam_epsilon": 1e-7, "recalibrate_bn": 0, "adam_update": "keras", "qat_from": ""}
)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (paper section 4.2) and where the run lives.

    `batch_size` is the global batch (split across replicas). The learning rate is
    `learning_rate * lr_decay_rate ** floor(step / lr_decay_steps)`. `shuffle_buffer` 0 means
    the whole training split. `eval_every` 0 validates only at the end. `adam_epsilon` is
    PyTorch's Adam default (Keras has 1e-7); `adam_update` "pytorch" is PyTorch's Adam update,
    as the authors ran it, "keras" Keras's (epsilon added before the bias correction), which
    runs recorded before the choice existed used. `recalibrate_bn` > 0 replaces every BatchNorm
    layer's moving statistics, after the last step, by their plain average over that many clean
    (un-mixed) training batches, before the final evaluation and the saved model.
    `steps_per_loop` is how many steps run inside one `tf.function` call between two visits of
    the host (0: `auto_steps_per_loop`); a loop also ends at every log, checkpoint and
    validation step and at `train_steps`, so it changes speed, never the result. `precision`
    is the Keras dtype policy (`PRECISIONS`); it is part of the run (a checkpoint resumes only
    under the precision that wrote it). `qat_from` names a finished run whose final weights a
    quantization-aware run starts from (`asc_keras.quantize`; '' = a float run from scratch).
    """

    model_dir: str = shared("model_dir", "")
    train_steps: int = setting(12000, "Training iterations.", lower_bound=1)
    batch_size: int = shared("batch_size", 64)
    learning_rate: float = setting(1e-3, "Initial Adam learning rate.", lower_bound=0.0)
    adam_epsilon: float = setting(
        1e-8, "Adam epsilon (PyTorch's default; Keras has 1e-7).", lower_bound=0.0
    )
    adam_update: str = setting(
        "pytorch",
        "Adam's update: pytorch (m_hat / (sqrt(v_hat) + epsilon), as the authors ran it) or keras "
        "(keras.optimizers.Adam, epsilon added before the bias correction: what runs recorded "
        "before this flag used; pass it to resume one).",
        choices=ADAM_UPDATES,
    )
    lr_decay_rate: float = setting(
        0.91,
        "Staircase decay factor of the learning rate.",
        lower_bound=0.0,
        upper_bound=1.0,
    )
    lr_decay_steps: int = setting(200, "Steps between learning rate decays.", lower_bound=1)
    mixup_alpha: float = setting(0.2, "Mixup Beta parameter; 0 disables mixup.", lower_bound=0.0)
    shuffle_buffer: int = setting(
        0, "Example shuffle buffer; 0 = the whole training split.", lower_bound=0
    )
    cache_examples: bool = setting(
        True, "Keep the parsed training examples in memory after the first epoch."
    )
    seed: int = setting(0, "Seed of the weights, data order, mixup and dropout.", lower_bound=0)
    eval_every: int = setting(
        1000,
        "Validate on the evaluate split every this many steps (0: only at the end).",
        lower_bound=0,
    )
    eval_batch_size: int = setting(64, "Clips per validation batch.", lower_bound=1)
    checkpoint_every: int = setting(200, "Steps between checkpoints.", lower_bound=1)
    keep_checkpoints: int = setting(3, "Checkpoints kept.", lower_bound=1)
    log_every: int = setting(50, "Steps between TensorBoard loss summaries.", lower_bound=1)
    distribution: str = setting(
        "default",
        "tf.distribute strategy: default (one device), mirrored (all local GPUs) or multi_worker "
        "(MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG).",
        choices=DISTRIBUTIONS,
    )
    precision: str = setting(
        "float32",
        "Keras dtype policy: float32, mixed_float16 (dynamic loss scaling) or mixed_bfloat16 (no "
        "loss scaling); weights, outputs and losses stay float32. Part of the run: a checkpoint "
        "resumes only under the same precision.",
        choices=PRECISIONS,
    )
    steps_per_loop: int = setting(
        0,
        "Training steps per tf.function call (host work only between loops; a loop also ends at "
        "every log, checkpoint and validation step). 0: the greatest common divisor of "
        "--log_every, --checkpoint_every and --eval_every, at most 100.",
        lower_bound=0,
    )
    jit_compile: bool = setting(False, "XLA-compile the training step.")
    deterministic: bool = setting(
        False,
        "Deterministic ops (tf.config.experimental.enable_op_determinism): bitwise repeatable "
        "runs, slower.",
    )
    recalibrate_bn: int = setting(
        0,
        "After the last step, set every BatchNorm layer's moving mean and variance to their "
        "plain average over this many clean (un-mixed) training batches (0: keep the moving "
        "averages).",
        lower_bound=0,
    )
    qat_from: str = setting(
        "",
        "Quantization-aware training: fine-tune the final weights of this finished float run "
        "(same model config: pass --flagfile=RUN/flags.txt) with int8 fake quantization as "
        "the TFLite converter quantizes ('' = off).",
    )

    # Fields a resumed run may change; every other field must match the checkpointed run.
    RESUMABLE_CHANGES = (
        "model_dir",
        "train_steps",
        "eval_every",
        "eval_batch_size",
        "checkpoint_every",
        "keep_checkpoints",
        "log_every",
        "distribution",
        "steps_per_loop",
        "jit_compile",
        "deterministic",
        "recalibrate_bn",
    )
    MAX_AUTO_STEPS_PER_LOOP = 100

    def __post_init__(self):
        for name in (
            "train_steps",
            "batch_size",
            "lr_decay_steps",
            "eval_batch_size",
            "checkpoint_every",
            "keep_checkpoints",
            "log_every",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("shuffle_buffer", "eval_every", "seed", "recalibrate_bn", "steps_per_loop"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.learning_rate > 0 or not 0 < self.lr_decay_rate <= 1:
            raise ValueError(
                f"need learning_rate > 0 and 0 < lr_decay_rate <= 1, got "
                f"{self.learning_rate}, {self.lr_decay_rate}"
            )
        if self.mixup_alpha < 0:
            raise ValueError(f"mixup_alpha must be >= 0, got {self.mixup_alpha}")
        if not self.adam_epsilon > 0:
            raise ValueError(f"adam_epsilon must be positive, got {self.adam_epsilon}")
        if self.adam_update not in ADAM_UPDATES:
            raise ValueError(f"adam_update must be one of {ADAM_UPDATES}, got {self.adam_update!r}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def mixed_precision(self) -> bool:
        """Whether a mixed (16-bit compute, float32 weights) policy is used."""
        return self.precision != "float32"

    @property
    def loss_scaling(self) -> bool:
        """float16 needs dynamic loss scaling; bfloat16 has float32's exponent range."""
        return self.precision == "mixed_float16"

    @property
    def auto_steps_per_loop(self) -> int:
        """`steps_per_loop`, or when 0 the greatest common divisor of the log, checkpoint and
        validation cadences, capped at `MAX_AUTO_STEPS_PER_LOOP` (50 for the defaults)."""
        if self.steps_per_loop:
            return self.steps_per_loop
        k = math.gcd(self.log_every, self.checkpoint_every, self.eval_every)
        return max(1, min(k, self.MAX_AUTO_STEPS_PER_LOOP))

    def learning_rate_at(self, step: int) -> float:
        """The staircase learning rate after `step` optimizer updates."""
        return self.learning_rate * self.lr_decay_rate ** (step // self.lr_decay_steps)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
