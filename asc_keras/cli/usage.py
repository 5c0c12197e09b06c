"""What a script says about its flags: `--help` for its own flag groups, required flags checked.

Every script defines every asc-keras flag (`flags.define_all`), so that one flagfile is accepted
by all of them; its `--help` lists only the flags of the groups it uses. A group is a function
that defines flags in a given `absl.flags.FlagValues` (`flags.define_train_flags`, ...): calling
it on a fresh FlagValues names the group's flags. `--helpfull` still prints every flag.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence

from absl import flags

Group = Callable[[flags.FlagValues], None]

SHORT_HELP = ("--help", "-help", "-h", "-?", "--helpshort", "-helpshort")
FULL_HELP = ("--helpfull", "-helpfull")
WIDTH = 100
MISSING = "missing required flag"


def group_flag_names(define: Group) -> list[str]:
    """The names of the flags a group defines, sorted (the group is called on a fresh
    FlagValues; absl's global FLAGS are untouched)."""
    fv = flags.FlagValues()
    define(fv)
    return sorted(fv)


def group_title(define: Group) -> str:
    """`define_train_flags` -> 'train flags'."""
    name = getattr(define, "__name__", "").strip("_")
    name = name.removeprefix("define_").removesuffix("flags").strip("_")
    return f"{name} flags" if name else "flags"


def sections(groups: Sequence[Group], more: Sequence[str] = ()) -> list[tuple[str, list[str]]]:
    """`[(title, flag names)]` of a script's `--help`: one section per group, a flag shared by
    groups shown in the first; `more` (flags outside the groups) in a last 'other flags'."""
    seen: set[str] = set()
    out = []
    for define in groups:
        names = [n for n in group_flag_names(define) if n not in seen]
        seen.update(names)
        if names:
            out.append((group_title(define), names))
    rest = [n for n in dict.fromkeys(more) if n not in seen]
    if rest:
        out.append(("other flags", rest))
    return out


def render_flag(flag: flags.Flag) -> str:
    """One flag as absl's help shows it: `--name: help`, then its default."""
    name = f"--[no]{flag.name}" if isinstance(flag, flags.BooleanFlag) else f"--{flag.name}"
    text = textwrap.fill(
        f"{name}: {flag.help}",
        width=WIDTH,
        initial_indent="  ",
        subsequent_indent="    ",
        break_on_hyphens=False,
    )
    if flag.default is not None:
        text += f"\n    (default: {flag.default_as_str})"
    return text


def help_text(
    doc: str, parts: Sequence[tuple[str, Sequence[str]]], fv: flags.FlagValues, *, note: str = ""
) -> str:
    """A script's `--help`: its docstring, then the flags it uses, section by section.

    Args:
        doc: The script's docstring.
        parts: `[(title, flag names)]` (`sections`); names `fv` does not define are left out.
        fv: Where the flags are defined (their help and defaults).
        note: An extra line after the flags.
    """
    out = [doc.strip()]
    for title, names in parts:
        shown = [render_flag(fv[n]) for n in names if n in fv]
        if shown:
            out.append(f"{title}:\n" + "\n".join(shown))
    out.append("\n".join([*([note] if note else []), "(--helpfull lists every flag, absl's too)"]))
    return "\n\n".join(out) + "\n"


def missing(values: dict, required: Sequence[str]) -> list[str]:
    """The names in `required` whose value is None or empty, in order."""
    return [name for name in required if values.get(name) in (None, "", [], ())]


def require(names: Sequence[str], fv: flags.FlagValues) -> None:
    """Check after parsing (flagfiles included) that `names` have values, all together: a
    command that lacks two says `missing required flags --data_dir, --model_dir` once."""
    names = list(names)
    if not names:
        return

    def check(values):
        absent = missing(values, names)
        if absent:
            raise flags.ValidationError(
                MISSING + ("s " if len(absent) > 1 else " ") + ", ".join(f"--{n}" for n in absent)
            )
        return True

    flags.register_multi_flags_validator(names, check, flag_values=fv)
