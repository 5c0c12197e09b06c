"""Score trained models on a DCASE split: metrics, figures, a printed table, a submission file.

    python evaluate.py --model_dir=RUN[,RUN2,...] --data_dir=DIR [--features_dir=F]
        [--split=evaluate|train|test] [--batch_size=N] [--out_dir=OUT]
        [--tflite=EXPORT/model.tflite[,EXPORT/model_int8.tflite] | --saved_model=EXPORT]
        [--submission=FILE]

- One model_dir: its `model.keras` (normalized features in) is scored.
- Several model_dirs: their probabilities are averaged (decision fusion, paper eq. 3), e.g. four
  single-representation runs make SPSMR. They must share the feature settings.
- `--tflite` / `--saved_model`: the model_dir's exported artifacts (raw features in) are scored
  instead; with several TFLite files each is reported with its change against the first.
  `--saved_model` takes the export folder (its `saved_model/` is used) or the SavedModel itself.

Features of the split are precomputed first when missing (with the runs' feature settings).
Writes metrics.json, confusion.png, devices.png, predictions.tsv and report.txt into --out_dir
(default `<first model_dir>/eval_<split>`, or `eval_<split>_tflite` / `eval_<split>_saved_model`;
one subfolder per TFLite file when several are compared). `--split=test` scores nothing (no
labels) and is meant for `--submission`. Prints the table and the folder it wrote. Accepts
any flagfile, e.g. `--flagfile=RUN/flags.txt`.
"""

import sys

from absl import app

from asc_keras import flags as flags_lib
from asc_keras import startup


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    startup.quiet_python_logs()
    from asc_keras.data import precompute
    from asc_keras.evaluation import evaluator
    from asc_keras.oom import OutOfMemoryError

    try:
        eval_cfg = flags_lib.eval_config()
        data_cfg = flags_lib.data_config()
        evaluator.run(eval_cfg, data_cfg)
    except precompute.PrecomputeIncomplete as e:
        print(e)
        return 1
    except (ValueError, KeyError, OSError, OutOfMemoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    flags_lib.define_all()
    startup.begin(sys.argv, required=("model_dir", "data_dir"))  # before TensorFlow loads
    app.run(main, argv=flags_lib.cli_argv(sys.argv))
