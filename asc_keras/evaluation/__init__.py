"""asc_keras.evaluation."""
