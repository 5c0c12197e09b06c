"""Quiet by default: TensorFlow's and LiteRT's C++ logging kept off the terminal.

`asc_keras.cli.main` calls `setup(sys.argv)` first thing, before TensorFlow loads, and
`quiet_python_logs()` after the flags are parsed. Unless the user asks for it, native log lines
never reach the terminal: TensorFlow's and absl's C++ logging
(`I0000 ... port.cc] oneDNN custom operations are on ...`, `WARNING: All log messages before
absl::InitializeLog() ...`, CUDA probing on machines without a GPU), the TFLite converter's
(`fully_quantize: 0, ...`, MLIR pass notes) and LiteRT's (`INFO: Created TensorFlow Lite
XNNPACK delegate ...`).

How: `TF_CPP_MIN_LOG_LEVEL=2` (what TensorFlow honours), and, because absl's C++ logging before
its initialization and the converter print regardless, file descriptor 2 (what C++ code writes
to) becomes a pipe read by a thread that drops the lines of those known forms and passes every
other line on; Python's own `sys.stderr` (absl logging, tqdm progress bars, tracebacks, our
`error:` lines) writes straight to the terminal, unfiltered and unbuffered as before. A fatal
C++ line (`F0000 ...`, `Check failed`) is always passed on.

Apache Beam (prepare's `--engine=beam`) is kept quiet the same way: its Python WARNING and
INFO records (`apitools not found ...`, the DirectRunner's relayed worker notes) are dropped
below ERROR, and the notes its SDK worker processes write to file descriptor 2 are dropped by
the pump.

TensorFlow's Python INFO records and its "triggered tf.function retracing" notes are dropped
too (`quiet_python_logs`), so they do not bury the scripts' own lines.

Ask for the logs with `--verbosity=1` (absl's flag, also `-v 1`) or the environment variable
`ASC_KERAS_TF_LOGS=1`; `TF_CPP_MIN_LOG_LEVEL`, when the user set it, is left as it is.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Sequence

ENV_SHOW_LOGS = "ASC_KERAS_TF_LOGS"
# Native lines dropped when quiet: absl/glog-style INFO, WARNING and ERROR lines of C++ files
# (absl's Python logging, `... train.py:30] ...`, is kept), absl's
# pre-initialization notice, the CPU feature notice, the TFLite converter's and LiteRT's notes.
NOISE = re.compile(
    r"^(?:[IWE]\d{4} [\d:. ]+\d+ [\w\-]+\.(?:cc|cpp|h):\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\)"
    r"|To enable the following instructions:"
    r"|fully_quantize: \d"
    r"|INFO: (?:Created TensorFlow Lite|Initialized TensorFlow Lite|TfLite)"
    r"|WARNING: Attempting to use a delegate"
    r"|Estimated count of arithmetic ops:"
    r"|loc\(|\s*(?:tf|tfl)\.\w+\(|error: 'tf\.|See instructions: https://www\.tensorflow"
    # Apache Beam's SDK worker processes (precompute --engine=beam), Python's basic format:
    r"|(?:INFO|WARNING):apache_beam[\w.]*:|WARNING:root:apitools not found"
    r"|INFO:__main__:Logging handler created\.|WARNING:__main__:No semi_persistent_directory"
    r")"
)
BEAM_PACKAGE = f"{os.sep}apache_beam{os.sep}"


def _below_error_outside_beam(record) -> bool:
    """A logging filter: False for Beam's records below ERROR (its modules log some through the
    root logger, so the `apache_beam` logger's level does not reach them)."""
    return record.levelno >= logging.ERROR or BEAM_PACKAGE not in (record.pathname or "")


def _quiet_beam_python_logs() -> None:
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    root = logging.getLogger()
    if _below_error_outside_beam not in root.filters:
        root.addFilter(_below_error_outside_beam)


def wants_logs(argv: Sequence[str], environ=None) -> bool:
    """Whether the user asked for TensorFlow's logs (`--verbosity>=1`, `-v N`, the env var)."""
    environ = os.environ if environ is None else environ
    if environ.get(ENV_SHOW_LOGS, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    args = list(argv[1:])
    for i, arg in enumerate(args):
        value = None
        for name in ("--verbosity", "-verbosity", "--v", "-v"):
            if arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
            elif arg == name and i + 1 < len(args):
                value = args[i + 1]
        if value is not None:
            try:
                if int(value) >= 1:
                    return True
            except ValueError:
                pass
    return False


def is_noise(line: str) -> bool:
    """Whether a native stderr line is TensorFlow/LiteRT logging dropped when quiet."""
    return bool(NOISE.match(line.lstrip("\r")))


def _pump(read_fd: int, out_fd: int) -> None:
    """Copy lines from `read_fd` to `out_fd`, dropping `is_noise` lines, until EOF."""
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = [ln for ln in lines if not is_noise(ln.decode("utf-8", "replace"))]
        if kept:
            os.write(out_fd, b"\n".join(kept) + b"\n")
    if pending and not is_noise(pending.decode("utf-8", "replace")):
        os.write(out_fd, pending)
    os.close(read_fd)


def setup(argv: Sequence[str]) -> bool:
    """Silence native logging unless asked (see the module docstring); call before TensorFlow.

    Args:
        argv: The command line (`sys.argv`), read for `--verbosity` / `-v`.

    Returns:
        True when logging was silenced, False when the user asked for it (nothing changed).
    """
    if wants_logs(argv):
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _quiet_beam_python_logs()
    try:
        sys.stderr.flush()
        terminal = os.dup(2)  # the real stderr, for Python and for the lines passed on
        read_fd, write_fd = os.pipe()
    except OSError:  # no usable file descriptor 2 (an embedded interpreter): env var only
        return True
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stderr = io.TextIOWrapper(
        os.fdopen(terminal, "wb", buffering=0, closefd=False),
        encoding=sys.stderr.encoding or "utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )
    pump = threading.Thread(
        target=_pump, args=(read_fd, terminal), name="asc_keras-quiet", daemon=True
    )
    pump.start()

    def finish():
        try:
            sys.stderr.flush()
            os.dup2(terminal, 2)  # closes the pipe's write end held by fd 2: the pump sees EOF
        except OSError:
            return
        pump.join(timeout=2.0)

    atexit.register(finish)
    return True


class _NoRetracingNotes(logging.Filter):
    """Drops TensorFlow's "N out of the last N calls to <function ...> triggered tf.function
    retracing" warning. One process that trains or scores several models (`reproduce.py
    --launch=inline`, `evaluate.py` with many runs) traces each model's functions once; they
    share their Python code, so TensorFlow counts them as one function retracing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


NO_RETRACING_NOTES = _NoRetracingNotes()


def quiet_python_logs(fv=None) -> None:
    """After parsing: TensorFlow's Python INFO records (absl logging) and its retracing notes
    (`_NoRetracingNotes`) off unless `--verbosity` was given.

    Args:
        fv: The parsed `absl.flags.FlagValues` (default absl's FLAGS).
    """
    from absl import flags
    from absl import logging as absl_logging

    fv = flags.FLAGS if fv is None else fv
    if not fv["verbosity"].present:
        absl_logging.set_verbosity(absl_logging.WARNING)
        logging.getLogger("tensorflow").addFilter(NO_RETRACING_NOTES)  # once per instance
