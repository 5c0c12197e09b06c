"""Typed, frozen configuration for every stage of asc-keras.

One dataclass per stage, one module each; every builder and `run()` takes them explicitly. Each
user setting (default, type, bounds, help) is stated once, on its field (`settings.setting`);
`asc_keras.flags` derives the flags from the fields and builds the configs from parsed flags.
Derived values are properties.

Axis convention everywhere: features are `[time, freq]`, batches `[batch, time, freq, channels]`.
"""

from asc_keras.config.data import ENGINES, FINGERPRINTS, TASKS, DataConfig
from asc_keras.config.evaluation import EVAL_SPLITS, EvalConfig
from asc_keras.config.export import ExportConfig
from asc_keras.config.features import (
    FEATURE_DTYPES,
    REPRESENTATIONS,
    FeatureConfig,
    check_representations,
)
from asc_keras.config.model import (
    BACKBONES,
    FUSIONS,
    LEGACY_MODEL_FIELDS,
    SPSMF_FUSIONS,
    STRATEGIES,
    ModelConfig,
    frozen_mapping,
)
from asc_keras.config.settings import SHARED, Setting, setting, shared
from asc_keras.config.train import (
    ADAM_UPDATES,
    DISTRIBUTIONS,
    LEGACY_TRAIN_FIELDS,
    PRECISIONS,
    TrainConfig,
)

# Every config dataclass, in pipeline order.
CONFIGS = (FeatureConfig, DataConfig, ModelConfig, TrainConfig, EvalConfig, ExportConfig)

__all__ = [
    "ADAM_UPDATES",
    "BACKBONES",
    "CONFIGS",
    "DISTRIBUTIONS",
    "ENGINES",
    "EVAL_SPLITS",
    "FEATURE_DTYPES",
    "FINGERPRINTS",
    "FUSIONS",
    "LEGACY_MODEL_FIELDS",
    "LEGACY_TRAIN_FIELDS",
    "PRECISIONS",
    "REPRESENTATIONS",
    "SHARED",
    "SPSMF_FUSIONS",
    "STRATEGIES",
    "TASKS",
    "DataConfig",
    "EvalConfig",
    "ExportConfig",
    "FeatureConfig",
    "ModelConfig",
    "Setting",
    "TrainConfig",
    "check_representations",
    "frozen_mapping",
    "setting",
    "shared",
]
