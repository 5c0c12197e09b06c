"""asc_keras.features."""
