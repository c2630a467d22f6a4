"""fer-edge training (needs the train extra: TensorFlow, tf-keras)."""
