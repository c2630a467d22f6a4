"""fer-edge device runtime: never imports TensorFlow."""
