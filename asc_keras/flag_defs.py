"""Flags derived from config fields: one absl flag per `setting(...)` field, configs built back.

- `define_group(fv, cls, extra)`: define in FlagValues `fv` the flag of every setting field of
  config dataclass `cls` (name, kind, default, bounds, choices and help from the field's
  `Setting`), and of the script options `extra` (`asc_keras.config.options`); a flag several
  groups share is defined once.
- `build(cls, f, **resolved)`: the config dataclass `cls` from parsed flags `f`.
- `given(f, name)`: whether --name was given.

`asc_keras.flags` calls these on absl's FLAGS (or a caller's FlagValues); nothing here reads
FLAGS itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from absl import flags

from asc_keras.config import settings as settings_lib

DEFINERS = {
    "string": flags.DEFINE_string,
    "integer": flags.DEFINE_integer,
    "float": flags.DEFINE_float,
    "bool": flags.DEFINE_bool,
    "list": flags.DEFINE_list,
}


def define(fv: flags.FlagValues, name: str, spec: settings_lib.Setting, kind: str, default):
    """Define flag `name` in `fv` from `spec`, unless `fv` has it (a flag shared by groups)."""
    if name in fv:
        return
    default = list(default) if isinstance(default, tuple) else default
    if kind == "enum":
        flags.DEFINE_enum(name, default, list(spec.choices), spec.help, flag_values=fv)
        return
    bounds = {"lower_bound": spec.lower_bound, "upper_bound": spec.upper_bound}
    bounds = {k: v for k, v in bounds.items() if v is not None}
    DEFINERS[kind](name, default, spec.help, flag_values=fv, **bounds)
    if kind == "list" and spec.choices:
        flags.register_validator(
            name,
            lambda values, known=spec.choices: all(v in known for v in values),
            message=f"--{name} takes values from {','.join(spec.choices)}",
            flag_values=fv,
        )


def define_group(
    fv: flags.FlagValues, cls=None, extra: Mapping[str, settings_lib.Setting] = ()
) -> None:
    """Define the flag of every setting field of config dataclass `cls`, and `extra` options."""
    for field in settings_lib.settings(cls) if cls is not None else ():
        spec = settings_lib.setting_of(field)
        name = settings_lib.flag_name(field)
        define(fv, name, spec, settings_lib.kind_of(field), settings_lib.flag_default(field))
    for name, spec in dict(extra).items():
        define(fv, name, spec, spec.kind, spec.flag_default)


def build(cls, f: flags.FlagValues, **resolved):
    """Config dataclass `cls` from the flags of its setting fields; `resolved` values win, an
    unset (None) flag leaves the field's default, a list flag becomes a tuple."""
    kwargs = {}
    for field in settings_lib.settings(cls):
        if field.name in resolved:
            continue
        value = f[settings_lib.flag_name(field)].value
        if value is None:
            continue
        if settings_lib.kind_of(field) == "list":
            value = tuple(settings_lib.item_type(field)(v) for v in value)
        kwargs[field.name] = value
    return cls(**kwargs, **resolved)


def given(f: flags.FlagValues, name: str) -> bool:
    """Whether --name was given (on the command line or in a flagfile)."""
    return name in f and f[name].present and f[name].value is not None
