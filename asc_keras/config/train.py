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
# A run recorded before knowledge distillation existed had no teacher; its kd_lambda and
# kd_temperature read as today's defaults, which have no effect without a teacher.
LEGACY_TRAIN_FIELDS = MappingProxyType(
    {
        "adam_epsilon": 1e-7,
        "recalibrate_bn": 0,
        "adam_update": "keras",
        "teacher": "",
        "kd_lambda": 0.02,
        "kd_temperature": 2.0,
        "dir_p": 0.0,
        "freq_mixstyle_p": 0.0,
        "freq_mixstyle_alpha": 0.3,
        "init_from": "",
        "train_devices": [],  # as config.json holds it (a list)
        "warmup_steps": 0,
        "qat_from": "",
    }
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
    under the precision that wrote it). `teacher` is a teacher logits file (`teach.py`, or a
    CSV/NPZ made elsewhere; "" = no distillation): the loss becomes `kd_lambda * CE + (1 -
    kd_lambda) * kd_temperature^2 * KL(teacher_T || student_T)` (`training.distill`).
    `freq_mixstyle_p` > 0 applies Freq-MixStyle (`asc_keras.data.mixstyle`) to a training batch
    with that probability. `init_from` (a run folder) starts the weights from that run's
    `model.keras` (same model config); with `train_devices` only those recording devices'
    training clips are used (per-device fine-tuning, DCASE 2025). `warmup_steps` > 0 multiplies
    the learning rate of update `step` (from 0) by `min(1, (step + 1) / warmup_steps)`: a linear
    warm-up.
    `qat_from` names a finished run whose final weights a quantization-aware run starts from
    (`asc_keras.quantize`; '' = a float run from scratch).
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
    dir_p: float = setting(
        0.0,
        "DIR augmentation: probability that a device-a training example is replaced by one of "
        "its impulse-response copies (--dir_folder, --dir_copies), per example and epoch; 0: off.",
        lower_bound=0.0,
        upper_bound=1.0,
    )
    teacher: str = setting(
        "",
        "Knowledge distillation: a teacher logits file (teach.py's NPZ, or a CSV/NPZ of clip "
        "name -> logits made elsewhere) with an entry for every training clip; empty: off. "
        "teach.py: a file made elsewhere to check and convert.",
        flag_default=None,
    )
    kd_lambda: float = setting(
        0.02,
        "Weight of the label cross-entropy in the distillation loss (the KD term gets 1 - it).",
        lower_bound=0.0,
        upper_bound=1.0,
    )
    kd_temperature: float = setting(
        2.0,
        "Distillation temperature T (both softmaxes divided by T; KL times T^2).",
        lower_bound=0.0,
    )
    freq_mixstyle_p: float = setting(
        0.0,
        "Freq-MixStyle probability per training batch (the DCASE 2024/25 baselines use 0.4; "
        "0: off).",
        lower_bound=0.0,
        upper_bound=1.0,
    )
    freq_mixstyle_alpha: float = setting(
        0.3, "Freq-MixStyle's Beta(alpha, alpha) mixing weight parameter.", lower_bound=0.0
    )
    init_from: str = setting(
        "",
        "Start from the final weights (model.keras) of this training run folder, e.g. to "
        "fine-tune it per device; the model flags must match its config.json.",
        flag_default=None,
    )
    train_devices: tuple[str, ...] = setting(
        (),
        "Train only on the training clips of these recording devices (e.g. b; the records' "
        "device field). Not reproduce.py's --devices (GPUs).",
    )
    warmup_steps: int = setting(
        0,
        "Linear learning-rate warm-up: update t (0, 1, ...) uses min(1, (t + 1) / warmup_steps) "
        "times the staircase rate (0: no warm-up).",
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
        "teacher",  # a path: the run record's teacher sha256 must match
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
        for name in (
            "shuffle_buffer",
            "eval_every",
            "seed",
            "recalibrate_bn",
            "steps_per_loop",
            "warmup_steps",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.learning_rate > 0 or not 0 < self.lr_decay_rate <= 1:
            raise ValueError(
                f"need learning_rate > 0 and 0 < lr_decay_rate <= 1, got "
                f"{self.learning_rate}, {self.lr_decay_rate}"
            )
        if not 0.0 <= self.dir_p <= 1.0:
            raise ValueError(f"dir_p must be in [0, 1], got {self.dir_p}")
        object.__setattr__(self, "train_devices", tuple(self.train_devices))
        if not 0 <= self.freq_mixstyle_p <= 1 or not self.freq_mixstyle_alpha > 0:
            raise ValueError(
                f"need 0 <= freq_mixstyle_p <= 1 and freq_mixstyle_alpha > 0, got "
                f"{self.freq_mixstyle_p}, {self.freq_mixstyle_alpha}"
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
        if not 0 <= self.kd_lambda <= 1 or not self.kd_temperature > 0:
            raise ValueError(
                f"need 0 <= kd_lambda <= 1 and kd_temperature > 0, got {self.kd_lambda}, "
                f"{self.kd_temperature}"
            )

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
        """The learning rate of update `step` (0, 1, ...): staircase, times the warm-up."""
        rate = self.learning_rate * self.lr_decay_rate ** (step // self.lr_decay_steps)
        if self.warmup_steps:
            rate *= min(1.0, (step + 1) / self.warmup_steps)
        return rate

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["train_devices"] = list(self.train_devices)
        return d
