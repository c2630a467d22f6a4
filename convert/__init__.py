"""fer-edge conversion: pruning, QAT, PTQ and TFLite export (needs the train extra)."""
