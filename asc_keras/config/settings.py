"""One statement per setting: its default, type, bounds, choices and help, on the config field.

A config field made with `setting(default, help, ...)` is a user setting: `asc_keras.flags`
derives one absl flag from it (named after the field unless `flag=` names another) and builds
the config back from the parsed flags. A field with a plain default has no flag. The flag's type
follows the field's annotation (`int`, `float`, `str`, `bool`, `tuple[...]` as a list flag; `str`
with `choices` as an enum flag).

`shared(name, default)` is a field whose flag several configs read (`--model_dir`,
`--batch_size`): its help is written once, in `SHARED`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

KEY = "asc_keras.setting"  # the field metadata key of a `Setting`
KINDS = ("string", "integer", "float", "bool", "enum", "list")


class _FieldDefault:
    def __repr__(self) -> str:
        return "FIELD_DEFAULT"


FIELD_DEFAULT: Any = _FieldDefault()  # `Setting.flag_default`: the field's own default


@dataclasses.dataclass(frozen=True)
class Setting:
    """How one config field is offered as a flag.

    Attributes:
        help: The flag's help text.
        flag: The flag's name; None: the field's name.
        lower_bound, upper_bound: Bounds absl enforces on a numeric flag.
        choices: An enum flag's values; for a list flag, the values each item takes.
        flag_default: The flag's default when it is not the field's: None for a value resolved
            when it is unset (a path, or a default that follows `--task`).
        kind: One of `KINDS`; None: from the field's annotation.
    """

    help: str
    flag: str | None = None
    lower_bound: float | None = None
    upper_bound: float | None = None
    choices: tuple[str, ...] | None = None
    flag_default: Any = FIELD_DEFAULT
    kind: str | None = None

    def __post_init__(self):
        if not self.help:
            raise ValueError("a setting needs a help text")
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


def setting(
    default: Any,
    help: str,  # noqa: A002 - absl's name for it
    *,
    flag: str | None = None,
    lower_bound: float | None = None,
    upper_bound: float | None = None,
    choices: tuple[str, ...] | None = None,
    flag_default: Any = FIELD_DEFAULT,
    kind: str | None = None,
) -> Any:
    """A dataclass field with `default` that is offered as a flag (see `Setting`)."""
    spec = Setting(
        help=help,
        flag=flag,
        lower_bound=lower_bound,
        upper_bound=upper_bound,
        choices=None if choices is None else tuple(choices),
        flag_default=flag_default,
        kind=kind,
    )
    return dataclasses.field(default=default, metadata={KEY: spec})


SHARED: Mapping[str, Setting] = MappingProxyType(
    {
        "model_dir": Setting(
            help="Training run folder (checkpoints, TensorBoard logs, flags.txt, config.json, "
            "normalization.json, model.keras, metrics). train.py and export.py take one; "
            "evaluate.py takes a comma-separated list and fuses the runs (mean of their "
            "probabilities, e.g. four single-representation runs = SPSMR); so does teach.py.",
            flag="model_dir",
            flag_default=None,
            kind="string",
        ),
        "batch_size": Setting(
            help="Clips per batch (training: the global batch, split across replicas; "
            "evaluate.py: clips scored at once).",
            flag="batch_size",
            lower_bound=1,
            kind="integer",
        ),
    }
)


def shared(name: str, default: Any) -> Any:
    """A dataclass field with `default` whose flag is the shared `SHARED[name]`."""
    return dataclasses.field(default=default, metadata={KEY: SHARED[name]})


def setting_of(field: dataclasses.Field) -> Setting | None:
    """The field's `Setting`, or None for a field without a flag."""
    return field.metadata.get(KEY)


def flag_name(field: dataclasses.Field) -> str:
    spec = setting_of(field)
    return (spec.flag if spec is not None else None) or field.name


def _annotation(field: dataclasses.Field) -> str:
    """The field's annotation as compact text (`int`, `float|None`, `tuple[str,...]`)."""
    t = field.type
    text = t if isinstance(t, str) else t.__name__ if isinstance(t, type) else str(t)
    return text.replace(" ", "")


def kind_of(field: dataclasses.Field) -> str:
    """The flag kind of a setting field: stated, else read from its annotation."""
    spec = setting_of(field)
    if spec is not None and spec.kind is not None:
        return spec.kind
    annotation = _annotation(field)
    base = annotation.split("|")[0]
    if base.startswith("tuple"):
        return "list"
    if base in ("int", "float", "bool"):
        return {"int": "integer", "float": "float", "bool": "bool"}[base]
    if base == "str":
        return "enum" if spec is not None and spec.choices else "string"
    raise TypeError(f"field {field.name}: no flag kind for the annotation {field.type!r}")


def item_type(field: dataclasses.Field) -> type:
    """The item type of a `tuple[T, ...]` field (str unless T is float or int)."""
    annotation = _annotation(field)
    return {"tuple[float,...]": float, "tuple[int,...]": int}.get(annotation, str)


def flag_default(field: dataclasses.Field) -> Any:
    """The flag's default value: the setting's `flag_default`, else the field's default (a tuple
    as a list)."""
    spec = setting_of(field)
    if spec is not None and spec.flag_default is not FIELD_DEFAULT:
        return spec.flag_default
    default = field.default
    if default is dataclasses.MISSING:
        raise TypeError(f"setting field {field.name} has no plain default")
    return list(default) if isinstance(default, tuple) else default


def settings(cls) -> tuple[dataclasses.Field, ...]:
    """The fields of config dataclass `cls` that are offered as flags, in field order."""
    return tuple(f for f in dataclasses.fields(cls) if setting_of(f) is not None)
