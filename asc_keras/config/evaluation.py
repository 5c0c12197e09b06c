"""EvalConfig: what `evaluate.py` scores and where it writes."""

from __future__ import annotations

import dataclasses

from asc_keras.config.settings import setting, shared

EVAL_SPLITS = ("train", "evaluate", "test")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What `evaluate.py` scores and where it writes.

    `model_dirs` are training runs (`--model_dir`, comma-separated); several are fused (mean of
    probabilities, e.g. four single-representation runs = SPSMR). `tflite` (one or more files,
    each scored on its own and compared with the first, e.g. float vs int8) or `saved_model`
    evaluates exported artifacts of the one model_dir instead of its `model.keras`. `out_dir`
    defaults to `<model_dirs[0]>/eval_<split>` (`eval_<split>_tflite` / `_saved_model` for
    exports); `submission` writes a DCASE submission file.
    """

    model_dirs: tuple[str, ...] = shared("model_dir", ())
    split: str = setting(
        "evaluate",
        "Split to evaluate: evaluate (fold1_evaluate.csv), train, or test (unlabeled: "
        "fold1_test.csv or a challenge evaluation folder; no metrics, use --submission).",
        choices=EVAL_SPLITS,
    )
    batch_size: int = shared("batch_size", 64)
    out_dir: str = setting(
        "",
        "Evaluation output folder; default <first model_dir>/eval_<split> (exports: "
        "eval_<split>_tflite, eval_<split>_saved_model).",
        flag_default=None,
    )
    tflite: tuple[str, ...] = setting(
        (),
        "Evaluate these TFLite files (raw features in) instead of model.keras; with several "
        "(e.g. float,int8) each is scored and the change against the first is reported.",
    )
    saved_model: str = setting(
        "",
        "Evaluate this SavedModel folder (raw features in) instead of model.keras.",
        flag_default=None,
    )
    submission: str = setting(
        "",
        "Also write a DCASE submission file (filename, scene_label, class probabilities).",
        flag_default=None,
    )
    device_models: str = setting(
        "",
        "A folder of per-device models, <device>/ each (a training run, an export folder or a "
        "SavedModel): a clip whose device has one is classified by it, every other clip by the "
        "general model (--model_dir; predict.py: --model); both are reported.",
        flag_default=None,
    )
    # Separately trained parts of SPSMR + SPSMF + SPSMT average two systems: 1/40 for each of
    # the 20 band runs and 1/8 for each of the 4 SPSMT runs.
    fusion_weights: tuple[float, ...] = setting(
        (),
        "One weight per --model_dir for the fusion (default: equal weights, the paper's mean).",
    )

    def __post_init__(self):
        object.__setattr__(self, "model_dirs", tuple(self.model_dirs))
        object.__setattr__(self, "tflite", tuple(self.tflite))
        object.__setattr__(self, "fusion_weights", tuple(float(w) for w in self.fusion_weights))
        if self.fusion_weights and (
            len(self.fusion_weights) != len(self.model_dirs)
            or min(self.fusion_weights) < 0
            or sum(self.fusion_weights) <= 0
        ):
            raise ValueError(
                f"fusion_weights needs {len(self.model_dirs)} non-negative weights "
                f"(one per model_dir), got {list(self.fusion_weights)}"
            )
        if not self.model_dirs:
            raise ValueError("at least one model_dir is required")
        if self.split not in EVAL_SPLITS:
            raise ValueError(f"split must be one of {EVAL_SPLITS}, got {self.split!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.tflite and self.saved_model:
            raise ValueError("give either tflite files or a saved_model, not both")
        if (self.tflite or self.saved_model) and len(self.model_dirs) != 1:
            raise ValueError(
                "exported artifacts are evaluated with exactly one model_dir "
                f"(for its config and data), got {len(self.model_dirs)}"
            )
