"""Running a trained or exported model on features or audio.

- `tflite_runner`: the LiteRT / TensorFlow interpreter of a `.tflite` file, inputs and outputs by
  name, int8 quantize / dequantize, the batch loop.
- `predictors`: one call signature over a Keras model, a SavedModel and a TFLite file.
- `loader`: what a model path is (run, `.keras`, SavedModel, `.tflite`, export folder) and how
  to load it with the feature settings, classes and normalization stored with it.
- `classify`: one clip -> the training features -> probabilities -> scene.
- `streaming`: sliding-window classification of long recordings in bounded memory.

Imports point backwards only (config, features, data, models, runs); evaluation, export and
predict.py build on this package.
"""
