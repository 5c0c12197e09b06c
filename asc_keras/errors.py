"""The one base class of every failure asc-keras expects and reports in one line.

Each package error also keeps the built-in base it had (ValueError for bad input, OSError for
the disk, RuntimeError for a step that could not finish), so `except ValueError` in a user's
code keeps working; `asc_keras.cli` catches `AscError` (with ValueError and OSError for bad
flags and files) and prints the message as one `error: ...` line with exit code 1.
"""


class AscError(Exception):
    """A failure asc-keras expects: bad input, a refused folder, a run that cannot finish."""
