"""What every script does first: quiet native logging, `--help` that exits 0, all missing flags.

`begin(argv, required=(...))` is called by each script after `flags.define_all()` and before
`app.run` (so before TensorFlow loads):

- `quiet.setup(argv)`: TensorFlow's C++ logging off unless `--verbosity=1` or
  `ASC_KERAS_TF_LOGS=1` (see `asc_keras.quiet`);
- `--help`, `-h`, `-?`, `--helpshort` print the script's docstring and the asc-keras flags to
  stdout and exit 0 (absl exits 1 and lists no flag defined outside the script);
  `--helpfull` prints every flag, absl's included, and exits 0;
- `required` flags are checked together after parsing (flagfiles included), so a command that
  lacks two of them says so once: `FATAL Flags parsing error: missing required flags:
  --data_dir, --model_dir` (absl's wording around it, exit status 1).
"""

from __future__ import annotations

import logging as std_logging
from collections.abc import Sequence

from absl import flags

from asc_keras import quiet

SHORT_HELP = ("--help", "-help", "-h", "-?", "--helpshort", "-helpshort")
FULL_HELP = ("--helpfull", "-helpfull")


def missing(values: dict, required: Sequence[str]) -> list[str]:
    """The names in `required` whose value is None or empty, in order."""
    return [name for name in required if values.get(name) in (None, "", [], ())]


def begin(
    argv: Sequence[str], *, required: Sequence[str] = (), fv: flags.FlagValues | None = None
) -> None:
    """Start-up of a script (see the module docstring).

    Args:
        argv: The command line (`sys.argv`).
        required: Flags that must have a value (after flagfiles are read).
        fv: Where the flags are defined (default absl's FLAGS).

    Raises:
        SystemExit: 0 after printing help.
    """
    from absl import app

    fv = flags.FLAGS if fv is None else fv
    quiet.setup(argv)
    args = list(argv[1:])
    if any(a in FULL_HELP for a in args):
        app.usage(shorthelp=False, writeto_stdout=True, exitcode=0)
    if any(a in SHORT_HELP for a in args):
        import sys

        doc = (getattr(sys.modules.get("__main__"), "__doc__", None) or "").strip()
        print(
            f"{doc}\n\nflags:\n{fv.module_help('asc_keras.flags')}\n\n"
            "(--helpfull also lists absl's own flags)"
        )
        raise SystemExit(0)
    if required:
        names = list(required)

        def check(values):
            absent = missing(values, names)
            if absent:
                raise flags.ValidationError(
                    "missing required flag"
                    + ("s " if len(absent) > 1 else " ")
                    + ", ".join(f"--{n}" for n in absent)
                )
            return True

        flags.register_multi_flags_validator(names, check, flag_values=fv)


class _NoRetracingNotes(std_logging.Filter):
    """Drops TensorFlow's "N out of the last N calls to <function ...> triggered tf.function
    retracing" warning. One process that trains or scores several models (`reproduce.py
    --launch=inline`, `evaluate.py` with many runs) traces each model's functions once; they
    share their Python code, so TensorFlow counts them as one function retracing."""

    def filter(self, record: std_logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


NO_RETRACING_NOTES = _NoRetracingNotes()


def quiet_python_logs(fv: flags.FlagValues | None = None) -> None:
    """After parsing: TensorFlow's Python INFO records (absl logging) and its retracing notes
    (`_NoRetracingNotes`) off unless `--verbosity` was given, so they do not bury the scripts'
    own lines."""
    from absl import logging

    fv = flags.FLAGS if fv is None else fv
    if not fv["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
        std_logging.getLogger("tensorflow").addFilter(NO_RETRACING_NOTES)  # once per instance
