"""asc_keras.training."""
