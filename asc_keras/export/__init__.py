"""Export and deployment: SavedModel, TFLite float32 and int8, audio-in models, size rules.

- `exporter.run(export_cfg, ...)`: what `export.py` does, as a short list of stages (export,
  check every artifact against the Keras model by output name, report, refuse to overwrite,
  fail on the task's size rule); `errors`: its failures.
- `artifacts`: writes the SavedModels and TFLite files (the converter reads a temporary
  SavedModel of the `rewrite` graph); `checks`: parity of every artifact with Keras;
  `samples`: the calibration and parity data; `staging`: the staging folder and its publication.
- `serving`: normalization + trained network as one raw-features-in (or waveform-in) model.
- `savedmodel`, `tflite`: the writers; `calibration`: the seeded, class- and device-stratified
  int8 calibration sample of the training split; `verify`: the parity measures (TFLite files
  run through `asc_keras.inference.tflite_runner`); `report`: the table and
  `export_report.json`.
"""
