"""`main(script_main, ...)`: how every script starts, parses its flags and reports failures.

Each script's `if __name__ == "__main__":` is one call, e.g.

    cli.main(main, groups=(flags_lib.define_train_flags, ...), required=("data_dir",),
             doc=__doc__)

and `main(argv)` only builds configs from the parsed flags and calls the library. In order:

1. every asc-keras flag is defined (`flags.define_all`: one flagfile is accepted by all scripts);
2. native logging is made quiet before TensorFlow loads (`quiet.setup`);
3. `--help` (`-h`, `-?`, `--helpshort`) prints the docstring and the flags of the script's
   `groups` and exits 0; `--helpfull` prints every flag and exits 0 (`usage`);
4. flagfiles are expanded and the flags parsed; `required` flags are checked together, so a
   command that lacks two of them says so once;
5. `main(argv)` runs, argv holding the positional arguments after the script's name.

Every expected failure - an `AscError` (see `asc_keras.errors`), a ValueError, KeyError or
OSError (bad input, a missing file), a bad flag, a bad flagfile or unexpected arguments - is one
line `error: <message>` on stderr and exit status 1 in every script. Ctrl-C is its message
(training's says at which step it stopped) and exit status 130. Any other exception is a bug
and shows its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from absl import flags

from asc_keras.cli import quiet, usage
from asc_keras.errors import AscError

EXPECTED = (AscError, ValueError, KeyError, OSError)
FAILED = 1
INTERRUPTED = 130


def error_line(e: BaseException) -> str:
    """`error: <message>` for an expected failure (a KeyError's message without its quotes)."""
    if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
        return f"error: {e.args[0]}"
    return f"error: {e}"


def fail(message: str) -> NoReturn:
    """Print `error: <message>` on stderr and exit with status 1."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(FAILED)


def _parse(fv: flags.FlagValues) -> Callable[[list[str]], list[str]]:
    def parse(argv: list[str]) -> list[str]:
        try:
            return fv(argv)
        except flags.Error as e:
            message = str(e)
            if usage.MISSING in message:  # without absl's "flags a=None, b=None: " before it
                message = message[message.index(usage.MISSING) :]
            fail(f"{message} (see --help)")

    return parse


def _guarded(
    script_main: Callable[[list[str]], int | None], positional: str, fv: flags.FlagValues
) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        quiet.quiet_python_logs(fv)
        extra = list(argv[1:])
        if positional and not extra:
            fail(f"give one or more {positional} (see --help)")
        if not positional and extra:
            fail(f"unexpected arguments: {' '.join(extra)} (see --help)")
        try:
            code = script_main(list(argv))
        except KeyboardInterrupt as e:  # training's TrainingInterrupted names the step
            print(str(e) or "interrupted", file=sys.stderr)
            return INTERRUPTED
        except EXPECTED as e:
            print(error_line(e), file=sys.stderr)
            return FAILED
        return 0 if code is None else int(code)

    return run


def main(
    script_main: Callable[[list[str]], int | None],
    *,
    groups: Sequence[usage.Group] = (),
    required: Sequence[str] = (),
    doc: str | None = None,
    positional: str = "",
    also_shown: Sequence[str] = (),
    define: usage.Group | None = None,
    note: str = "",
    argv: Sequence[str] | None = None,
) -> NoReturn:
    """Run a script (see the module docstring); never returns.

    Args:
        script_main: `main(argv) -> exit status or None (0)`, called with the parsed flags in
            absl's FLAGS; argv is the script name then the positional arguments.
        groups: The flag groups the script uses (`flags.define_*_flags`): what `--help` lists.
        required: Flags that must have a value after parsing (listed by `--help` too).
        doc: The script's docstring, the head of `--help`.
        positional: What the positional arguments are (e.g. "audio files"): at least one is
            required; without it, positional arguments are refused.
        also_shown: Flags outside `groups` that `--help` lists too.
        define: Defines the script's flags in a FlagValues (default `flags.define_all`).
        note: A line `--help` prints after the flags.
        argv: The command line (default `sys.argv`).

    Raises:
        SystemExit: Always, with the script's exit status.
    """
    from absl import app

    argv = list(sys.argv if argv is None else argv)
    fv = flags.FLAGS
    if define is None:
        from asc_keras import flags as flags_lib

        define = flags_lib.define_all
    define(fv)
    quiet.setup(argv)  # before TensorFlow loads
    args = argv[1:]
    if any(a in usage.FULL_HELP for a in args):
        app.usage(shorthelp=False, writeto_stdout=True, exitcode=0)
    if any(a in usage.SHORT_HELP for a in args):
        parts = usage.sections(groups, (*required, *also_shown))
        print(usage.help_text(doc or "", parts, fv, note=note), end="")
        raise SystemExit(0)
    usage.require(required, fv)
    from asc_keras import flags as flags_lib

    try:
        expanded = flags_lib.expand_flagfiles(argv)
    except ValueError as e:
        fail(str(e))
    app.run(_guarded(script_main, positional, fv), argv=expanded, flags_parser=_parse(fv))
    raise SystemExit(0)  # app.run exits; not reached
