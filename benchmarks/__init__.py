"""fer-edge bench: accuracy, latency and size of TFLite models."""
