"""fer-edge: facial-expression recognition from workstation to Raspberry Pi and Edge TPU."""

__version__ = "0.1.0"
