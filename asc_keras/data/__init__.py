"""asc_keras.data."""
