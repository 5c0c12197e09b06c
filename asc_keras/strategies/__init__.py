"""asc_keras.strategies."""
