"""SavedModel export with one named signature, `serving_default`, via `keras.export.ExportArchive`.

Input: a functional `keras.Model` with named inputs (`{name: [batch, ...]}`, e.g. the raw
features `{rep: float32 [batch, T, F]}` of `serving.feature_serving_model`, or `waveform`
`[batch, num_samples]`) and dict outputs (`{'probs': [batch, classes], ...}`). Output: a
SavedModel folder whose `serving_default` signature takes those inputs by name (batch size
free) and returns the outputs by name. Names survive TFLite conversion (`tflite.py`), so every
artifact is checked and fed by name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SIGNATURE = "serving_default"


def input_specs(model, *, batch_size: int | None = None) -> dict:
    """`{name: tf.TensorSpec([batch_size, ...], float32, name)}` of the model's inputs (None:
    batch size free)."""
    import tensorflow as tf

    return {
        t.name: tf.TensorSpec([batch_size, *t.shape[1:]], tf.float32, name=t.name)
        for t in model.inputs
    }


def export_saved_model(
    model, path: str, *, signature: str = SIGNATURE, batch_size: int | None = None
) -> str:
    """Write `model` as a SavedModel with one signature.

    Args:
        model: Functional model with named inputs and a dict of named outputs.
        path: The SavedModel folder to create (must not exist or be empty).
        signature: Signature key.
        batch_size: A fixed batch size (None: free; the microcontroller file is converted
            from batch 1, where every shape is known).

    Returns:
        `path`.
    """
    import keras

    specs = input_specs(model, batch_size=batch_size)

    def serve(features):
        outputs = model(features, training=False)
        return dict(outputs) if isinstance(outputs, Mapping) else {"probs": outputs}

    # No `archive.track(model)`: the endpoint's traced function already captures every variable
    # it uses, and tracking the model as well stores each weight twice (keras-team/keras#23553:
    # the Keras variable wrappers and the raw tf.Variables are saved separately, 2x the size).
    archive = keras.export.ExportArchive()
    archive.add_endpoint(signature, serve, input_signature=[specs])
    archive.write_out(os.fspath(path), verbose=False)
    return path


def signature_io(path: str, *, signature: str = SIGNATURE) -> tuple[dict, dict]:
    """`({input: shape list}, {output: shape list})` of a SavedModel signature (None = free)."""
    import tensorflow as tf

    fn = tf.saved_model.load(path).signatures[signature]
    inputs = {k: v.shape.as_list() for k, v in fn.structured_input_signature[1].items()}
    outputs = {k: v.shape.as_list() for k, v in fn.structured_outputs.items()}
    return inputs, outputs
