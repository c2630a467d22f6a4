"""One frame's work: detect faces, crop (aligned or box), classify, smooth, give ids.

Kept apart from the loop in :mod:`fer_edge.device.runner`: the loop owns sources, sinks,
signals and pacing; this owns one frame's work, so it can be driven by anything that holds
frames.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict, deque

import numpy as np

from fer_edge.classifier import FaceClassifier
from fer_edge.device.detect import FaceDetector
from fer_edge.device.sinks import FaceResult
from fer_edge.device.smoothing import EmaSmoother
from fer_edge.facecrop import CropOptions, face_crops

#: Timing samples kept per stage: the latest ones, so a service running for days keeps a
#: fixed memory footprint (about 1 MB) and reports recent timings.
MAX_SAMPLES = 20_000


class FacePipeline:
    """Detect, crop, classify and smooth the faces in a frame; each face gets a stable id."""

    def __init__(
        self,
        detector: FaceDetector,
        classifier: FaceClassifier,
        crop: CropOptions | None = None,
        smoother: EmaSmoother | None = None,
    ):
        """Combine parts that are already set up (no loading happens per frame).

        Args:
            detector: finds face boxes.
            classifier: classifies face crops.
            crop: how faces are cut out (see :func:`fer_edge.facecrop.crop_face`); the
                template defaults to the one the model carries.
            smoother: carries probabilities across frames and gives faces their ids;
                ``None`` tracks ids without smoothing.
        """
        self.detector = detector
        self.classifier = classifier
        crop = crop or CropOptions()
        if crop.template is None:
            crop = dataclasses.replace(crop, template=classifier.meta.template)
        self.crop = crop
        # alpha 1 keeps only the newest probabilities: the association (the ids) without smoothing.
        self.smoother = smoother or EmaSmoother(alpha=1.0)
        #: Seconds per call: ``detect`` per frame, ``classify`` per face (crop included); the
        #: latest :data:`MAX_SAMPLES` of each.
        self.samples: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=MAX_SAMPLES))

    def process(self, image: np.ndarray) -> list[FaceResult]:
        """Return the classified faces of one BGR frame, largest first."""
        t0 = time.perf_counter()
        boxes = self.detector.detect(image)
        self.samples["detect"].append(time.perf_counter() - t0)
        probs = []
        for box in boxes:
            t0 = time.perf_counter()
            crops = face_crops(
                image, box.as_list(), box.landmarks, self.classifier.input_spec, self.crop
            )
            # One crop, or two framings of the same face averaged (crop mode "both").
            probs.append(np.mean([self.classifier.probabilities(c) for c in crops], axis=0))
            self.samples["classify"].append(time.perf_counter() - t0)
        probs = self.smoother.update(boxes, probs)
        labels = self.classifier.labels
        return [
            FaceResult.from_probs(b, p, labels, face_id)
            for b, p, face_id in zip(boxes, probs, self.smoother.ids, strict=True)
        ]
