"""Quantization-aware training (QAT): a trained float model as fake-quantized layers that match
TFLite's int8 conversion, the run it starts from, and the ranges its int8 export takes.

- `build`: `qat_model(float_model)`, `deploy_model(qat)`, `activation_ranges(qat)`,
  `fold_batchnorm(...)`;
- `start`: the starting run of `train.py --qat_from=RUN` (its final weights, checked against
  the model config) and its record in config.json;
- `compare`: float, PTQ int8 and QAT int8 accuracy side by side for the export report.

The fake-quantized layers themselves are in `asc_keras.models.qat_layers` (registered, so a QAT
run's `model.keras` loads wherever `asc_keras.models` does).
"""
