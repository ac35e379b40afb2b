"""What the pipeline makes of one image (`DepthFrame`), or why it makes none (`SkippedFrame`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from depth_estimation.geometry import Intrinsics
from depth_estimation.pipeline.laserscan import ScanGeometry


class SkippedFrame(ValueError):
    """A frame the pipeline does not answer; `kind` names the problem (for counters and logs)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class DepthFrame:
    """One processed image: depth with its ranges applied, and the products made from it."""

    rgb: np.ndarray  # (H, W, 3) uint8, the input image
    depth: np.ndarray  # (H, W) float32 metres; NaN invalid, -Inf too close, +Inf too far
    depth_range: tuple[float, float]  # (min, max) metres applied to `depth`
    intrinsics: Optional[Intrinsics]  # at the depth size; None without calibration/parameters
    intrinsics_source: str  # 'camera_info', 'parameters' or 'none'
    settings: Any  # the PipelineSettings (or NodeSettings) the frame was made with
    refinements: tuple[str, ...] = ()  # corrections applied: 'temporal', 'focal', 'anchoring'
    confidence: Optional[np.ndarray] = None  # (H, W) float32 in [0, 1], from a confidence model
    # (h, w, 3) metres of the decimated, confidence-masked cloud (publish_points and intrinsics)
    points: Optional[np.ndarray] = None
    points_rgb: Optional[np.ndarray] = None  # (h, w, 3) uint8 colours of `points` (points_rgb)
    scan_ranges: Optional[np.ndarray] = None  # (W,) metres (publish_scan and intrinsics)
    scan_geometry: Optional[ScanGeometry] = None  # angles and range limits of `scan_ranges`
    # Products that could not be made for this frame: (product, reason), e.g. a scan_height
    # taller than the image
    problems: tuple[tuple[str, str], ...] = ()
    inference_seconds: float = 0.0  # the backend's time for this image
    valid_share: float = 1.0  # fraction of `depth` pixels that hold a measurement (finite)
    # Set on the first frame of a new image size (the per-size state was reset): what changed
    size_change: str = ''


__all__ = ['DepthFrame', 'SkippedFrame']
