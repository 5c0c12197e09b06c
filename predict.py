"""Classify audio files with a trained or exported model; prints the scene and probabilities.

    python predict.py --model=EXPORT/model.tflite FILE.wav [FILE2.wav ...]
    python predict.py --model=EXPORT/model_int8.tflite | EXPORT/saved_model | EXPORT
        | EXPORT/model_audio.tflite | RUN (a model_dir) | RUN/model.keras  FILE.wav ...
    python predict.py --model=EXPORT LONG.wav [--window_seconds=10 --hop_seconds=5]
        [--timeline_csv=timeline.csv]

Each file is read with asc_keras.audio.load_clip and turned into features by
asc_keras.features.compute_features with the feature settings stored with the model
(export_config.json of an export, config.json of a run): the very code the training features
came from. Exported models hold the normalization; a model_dir's normalization.json is applied
here. Waveform-in models get the clip itself.

A file longer than the model's clip (or any file when --window_seconds is given) is classified
window by window, streamed from disk (asc_keras.inference.streaming): a timeline (start, end,
scene, top probability) and the overall scene (mean of the window probabilities) are printed,
and --timeline_csv writes every window. Exit status 1 when any file could not be read.

    python predict.py --model=GENERAL --device_models=DIR FILE.wav ... [--clip_device=b]

With per-device models (DCASE 2025; DIR holds one `<device>/` run or export folder each), a file
whose device (the TAU file name's last field, or --clip_device) has a model is classified by it,
every other file by the general --model: both tables are printed, the general model's and the
per-device one (with each file's device and the model used); a long file's timeline uses the
model chosen for it.
"""

import sys

from asc_keras import cli
from asc_keras import flags as flags_lib


def main(argv):
    files = argv[1:]
    from asc_keras.audio import AudioError
    from asc_keras.inference import classify, device_models, loader, streaming

    model = flags_lib.predict_model()
    window, hop, csv_path = flags_lib.predict_windows()
    device_dir, device = flags_lib.predict_device_models()
    classifier = loader.load_classifier(model)
    per_device = device_models.load_classifiers(device_dir) if device_dir else {}
    clip = classifier.feature_config.clip_seconds
    predictions, rows, chosen, failed = [], [], [], 0
    for path in files:
        clip_device, name, own = device_models.choose(classifier, per_device, path, device=device)
        try:
            if window is None and hop is None and streaming.duration(path) <= clip * 1.1:
                predictions.append(classifier.classify(path))
                if device_dir:
                    chosen.append((path, clip_device, name, own.classify(path)))
                continue
            items = list(streaming.timeline(own, path, window_seconds=window, hop_seconds=hop))
            print(streaming.format_timeline(path, items, classifier.classes))
            rows += [(path, w) for w in items]
        except AudioError as e:  # the other files are still classified
            print(cli.error_line(e), file=sys.stderr)
            failed += 1
    if predictions:
        print(
            ("general model:\n" if device_dir else "")
            + classify.format_predictions(predictions, classifier.classes)
        )
    if chosen:
        print(f"per-device models ({device_dir}):")
        print(device_models.format_choices(chosen, classifier.classes))
    if csv_path and rows:
        streaming.write_timeline_csv(csv_path, rows, classifier.classes)
        print(f"timeline: {csv_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    cli.main(
        main,
        groups=(flags_lib.define_predict_flags,),
        required=("model",),
        also_shown=("device_models",),
        doc=__doc__,
        positional="audio files",
    )
