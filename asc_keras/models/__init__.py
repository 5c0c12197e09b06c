"""asc_keras.models."""
