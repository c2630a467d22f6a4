"""fer-edge analytics: runs read back (the JSONL the device writes) into reports."""
