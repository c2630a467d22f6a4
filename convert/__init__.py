"""fer-edge conversion: pruning, QAT, PTQ and TFLite export (needs the train extra).

Importing this package does not import TensorFlow; :func:`convert` does, when called.
"""

from fer_edge.convert.conversion import convert
from fer_edge.convert.options import PTQ_CHOICES, ConvertOptions, FineTuneOptions
from fer_edge.convert.results import ConvertReport, EdgeTpuResult, ExportedModel

__all__ = [
    "PTQ_CHOICES",
    "ConvertOptions",
    "ConvertReport",
    "EdgeTpuResult",
    "ExportedModel",
    "FineTuneOptions",
    "convert",
]
