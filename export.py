"""Export a trained run: SavedModel, TFLite float32 and int8 (and audio-in models), all checked.

    python export.py --model_dir=RUN --export_dir=EXPORT [--overwrite]
        [--data_dir=DIR | --features_dir=FEATURES] [--calibration_examples=200]
        [--calibration_seed=0] [--parity_examples=16] [--noexport_int8] [--noexport_audio]
        [--float_tolerance=1e-5] [--int8_tolerance=0.1] [--audio_tolerance=1e-3] [--micro]
        [--weights=float16] [--float16_tolerance=1e-3]

Writes EXPORT/: saved_model/ (signature serving_default: RAW features in by representation
name, named outputs, normalization inside), model.tflite, model_int8.tflite (int8 in and out,
calibrated on a seeded, class-stratified sample of the training split), audio_saved_model/ and
model_audio.tflite (waveform in, for models whose only input is logmel), with --weights=float16
model_float16.tflite (float16 weights), export_config.json (task, classes, feature settings:
what predict.py needs) and export_report.json; with --micro also micro/ (an int8-in model checked
in TensorFlow Lite for Microcontrollers, its C array and the feature parameters:
docs/exporting-and-deploying.md). Prints a table of sizes and checks, and each TFLite file's
per-op MACs, parameter bytes and peak arena. Exit status 1 when EXPORT exists (without
--overwrite), when a model breaks its task's complexity rule (counted on the Keras model, then on
the int8 / float16 files), when an artifact differs from the Keras model beyond the tolerance or
when --micro meets an operator TFLM lacks (its files are then left in EXPORT.rejected). The
training features are found via --features_dir (a folder holding manifest.json), --data_dir
(computed if missing) or the features folder recorded in RUN/config.json.
"""

from asc_keras import cli
from asc_keras import flags as flags_lib


def main(argv):
    del argv
    from asc_keras.export import exporter

    export_cfg = flags_lib.export_config()
    data_cfg, features_dir = flags_lib.export_data()
    exporter.run(export_cfg, data_cfg=data_cfg, features_dir=features_dir)


if __name__ == "__main__":
    cli.main(
        main,
        groups=(flags_lib.define_export_flags, flags_lib.define_data_flags),
        required=("model_dir", "export_dir"),
        doc=__doc__,
    )
