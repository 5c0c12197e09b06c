"""Classify audio files with a trained or exported model; prints the scene and probabilities.

    python predict.py --model=EXPORT/model.tflite FILE.wav [FILE2.wav ...]
    python predict.py --model=EXPORT/model_int8.tflite | EXPORT/saved_model | EXPORT
        | EXPORT/model_audio.tflite | RUN (a model_dir) | RUN/model.keras  FILE.wav ...

Each file is read with asc_keras.audio.load_clip and turned into features by
asc_keras.features.compute_features with the feature settings stored with the model
(export_config.json of an export, config.json of a run): the very code the training features
came from. Exported models hold the normalization; a model_dir's normalization.json is applied
here. Waveform-in models get the clip itself. Exit status 1 when any file could not be read.
"""

import sys

from absl import app

from asc_keras import flags as flags_lib
from asc_keras import startup


def main(argv):
    files = argv[1:]
    if not files:
        raise app.UsageError("give one or more audio files")
    from asc_keras.audio import AudioError
    from asc_keras.export import inference

    try:
        model = flags_lib.predict_model()
        classifier = inference.load_classifier(model)
    except (ValueError, KeyError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    predictions, failed = [], 0
    for path in files:
        try:
            predictions.append(classifier.classify(path))
        except AudioError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    if predictions:
        print(inference.format_predictions(predictions, classifier.classes))
    return 1 if failed else 0


if __name__ == "__main__":
    flags_lib.define_all()
    startup.begin(sys.argv, required=("model",))  # before TensorFlow loads
    app.run(main, argv=flags_lib.cli_argv(sys.argv))
