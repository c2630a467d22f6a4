"""One frame's work: detect faces, crop (aligned or box), classify, smooth, give ids.

Kept apart from the loop in :mod:`fer_edge.device.runner`: the loop owns sources, sinks,
signals, pacing and the stage timings; this owns one frame's work, so it can be driven by
anything that holds frames.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from fer_edge.classifier import FaceClassifier
from fer_edge.detect import FaceDetector
from fer_edge.device.smoothing import EmaSmoother
from fer_edge.facecrop import CropOptions, face_crops
from fer_edge.faces import FaceResult
from fer_edge.preprocess import to_gray
from fer_edge.timing import StageTimings

#: The stages :meth:`FacePipeline.process` times (``detect`` per frame, ``classify`` per face,
#: crop included).
PIPELINE_STAGES: tuple[str, ...] = ("detect", "classify")


class FacePipeline:
    """Detect, crop, classify and smooth the faces in a frame; each face gets a stable id."""

    def __init__(
        self,
        detector: FaceDetector,
        classifier: FaceClassifier,
        crop: CropOptions | None = None,
        smoother: EmaSmoother | None = None,
        timings: StageTimings | None = None,
    ):
        """Combine parts that are already set up (no loading happens per frame).

        Args:
            detector: finds face boxes.
            classifier: classifies face crops.
            crop: how faces are cut out (see :func:`fer_edge.facecrop.crop_face`); the
                template defaults to the one the model carries.
            smoother: carries probabilities across frames and gives faces their ids;
                ``None`` tracks ids without smoothing.
            timings: where ``detect`` and ``classify`` samples go (the caller's, e.g. the
                loop's); ``None`` keeps a set of its own in :attr:`timings`.
        """
        self.detector = detector
        self.classifier = classifier
        crop = crop or CropOptions()
        if crop.template is None:
            crop = dataclasses.replace(crop, template=classifier.meta.template)
        self.crop = crop
        # alpha 1 keeps only the newest probabilities: the association (the ids) without smoothing.
        self.smoother = smoother or EmaSmoother(alpha=1.0)
        self.timings = timings if timings is not None else StageTimings(PIPELINE_STAGES)

    def reset(self) -> None:
        """Forget every face: the next frame is unrelated to the last (another photo)."""
        self.smoother.reset()
        reset = getattr(self.detector, "reset", None)
        if reset is not None:  # a tracking detector: the next frame gets a full-frame pass
            reset()

    def process(self, image: np.ndarray) -> list[FaceResult]:
        """Return the classified faces of one frame (BGR, or gray), largest first."""
        t0 = time.perf_counter()
        # Once per frame: the crops are cut from it, and a detector that needs no colour
        # (Haar) detects on it.
        gray = to_gray(image)
        boxes = self.detector.detect(image if self.detector.needs_color else gray)
        self.timings.add("detect", time.perf_counter() - t0)
        probs = []
        for box in boxes:
            t0 = time.perf_counter()
            crops = face_crops(
                gray, box.as_list(), box.landmarks, self.classifier.input_spec, self.crop
            )
            # One crop, or two framings of the same face averaged (crop mode "both").
            probs.append(np.mean([self.classifier.probabilities(c) for c in crops], axis=0))
            self.timings.add("classify", time.perf_counter() - t0)
        probs = self.smoother.update(boxes, probs)
        labels = self.classifier.labels
        return [
            FaceResult.from_probs(b, p, labels, face_id)
            for b, p, face_id in zip(boxes, probs, self.smoother.ids, strict=True)
        ]
