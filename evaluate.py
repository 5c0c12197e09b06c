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
- `--device_models=DIR` (DCASE 2025): DIR holds one `<device>/` model each (a run, an export
  folder or a SavedModel); each clip of a device with a model is scored by it, every other clip
  by the one --model_dir; the general model alone and the combination are both reported, per
  device too, into `<model_dir>/eval_<split>_per_device/` (`asc_keras.evaluation.per_device`).

Features of the split are precomputed first when missing (with the runs' feature settings).
Writes metrics.json, confusion.png, devices.png, predictions.tsv and report.txt into --out_dir
(default `<first model_dir>/eval_<split>`, or `eval_<split>_tflite` / `eval_<split>_saved_model`;
one subfolder per TFLite file when several are compared). `--split=test` scores nothing (no
labels) and is meant for `--submission`. Prints the table and the folder it wrote. Accepts
any flagfile, e.g. `--flagfile=RUN/flags.txt`.
"""

from asc_keras import cli
from asc_keras import flags as flags_lib


def main(argv):
    del argv
    from asc_keras.evaluation import evaluator, per_device

    cfg = flags_lib.eval_config()
    (per_device.run if cfg.device_models else evaluator.run)(cfg, flags_lib.data_config())


if __name__ == "__main__":
    cli.main(
        main,
        groups=(flags_lib.define_eval_flags, flags_lib.define_data_flags),
        required=("model_dir", "data_dir"),
        doc=__doc__,
    )
