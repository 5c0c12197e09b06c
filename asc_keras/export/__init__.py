"""asc_keras.export."""
