"""Export and deployment: SavedModel, TFLite float32 and int8, audio-in models, size rules.

- `run.run(export_cfg, ...)`: what `export.py` does (export, check every artifact against the
  Keras model by output name, report, refuse to overwrite, fail on the 1B 500 KB rule).
- `serving`: normalization + trained network as one raw-features-in (or waveform-in) model.
- `savedmodel`, `tflite`: the writers; `calibration`: the seeded, class-stratified int8
  calibration sample of the training split; `verify`: runners and parity checks (LiteRT and
  TensorFlow's TFLite interpreter); `report`: the table and `export_report.json`.
- `inference`: what `predict.py` does (audio file -> training features -> scene).
"""
