"""The command-line layer every script shares: start-up, flags, help and one-line failures.

- `entry.main(script_main, groups=..., required=..., doc=__doc__)`: what each script's
  `if __name__ == "__main__":` calls (flag definitions, quiet logs, `--help`, parsing, the one
  `error: ...` line and exit status 1 of every expected failure, Ctrl-C's exit status 130);
- `usage`: each script's `--help` from its flag groups, required flags checked together;
- `quiet`: native TensorFlow / LiteRT logging off the terminal unless asked (`--verbosity=1`,
  `ASC_KERAS_TF_LOGS=1`).

Importing it loads neither TensorFlow nor Keras, so `--help` is quick.
"""

from asc_keras.cli.entry import error_line, fail, main

__all__ = ["error_line", "fail", "main"]
