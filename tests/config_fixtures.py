"""What every flagfile configures, as plain JSON: the fixtures that pin flag behaviour.

`tests/fixtures/configs/*.json` were written by this module before the configuration was
redesigned; `test_config_fixtures.py` recomputes them and must find them equal, so a flag whose
default, type or meaning drifts is a red test. Regenerate (only for an intended change) with
`python -m tests.config_fixtures`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from unittest import mock

from absl import flags

from asc_keras import flags as flags_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "configs")

# Paths every config needs; the same strings in the fixtures on every machine.
PATHS = (
    "--data_dir=/data/set",
    "--features_dir=/cache/features",
    "--model_dir=/runs/run",
    "--export_dir=/exports/run",
)
# Override sets a user types on top of a flagfile.
OVERRIDES = {
    "plain": (),
    "tiny": (
        "--width=0.25",
        "--train_steps=3",
        "--batch_size=4",
        "--seed=2",
        "--precision=mixed_bfloat16",
        "--steps_per_loop=5",
        "--mixup_alpha=0",
        "--fusion_weights=3",
        "--split=test",
        "--export_int8=false",
    ),
}


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def configs_of(path: str, extra: tuple[str, ...]) -> dict:
    """Every typed config a flagfile plus `extra` flags yields, and the flags.txt it records."""
    fv = flags_lib.flagfile_values(path, PATHS + extra)
    feature_cfg = flags_lib.feature_config(fv, log=lambda _: None)

    def export_config():
        with mock.patch.object(flags, "FLAGS", fv):
            return flags_lib.export_config()

    makers = {
        "feature": lambda: feature_cfg,
        "data": lambda: flags_lib.data_config(fv),
        "model": lambda: flags_lib.model_config(feature_cfg, fv),
        "train": lambda: flags_lib.train_config(fv),
        "eval": lambda: flags_lib.eval_config(fv),
        "export": export_config,
    }
    out = {}
    for key, make in makers.items():
        try:
            out[key] = _plain(make())
        except ValueError as e:  # a refused combination is behaviour too
            out[key] = {"error": str(e)}
    out["flags_txt"] = flags_lib.resolved_flags(fv).splitlines()
    return out


def flagfiles() -> list[str]:
    return sorted(name[: -len(".flags")] for name in os.listdir(CONFIGS) if name.endswith(".flags"))


def main() -> None:
    os.makedirs(FIXTURES, exist_ok=True)
    for name in flagfiles():
        record = {
            key: configs_of(os.path.join(CONFIGS, f"{name}.flags"), extra)
            for key, extra in OVERRIDES.items()
        }
        with open(os.path.join(FIXTURES, f"{name}.json"), "w") as f:
            json.dump(record, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
