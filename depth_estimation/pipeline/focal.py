"""Focal-length compensation of metric depth (numpy; measured in docs/refinement.md).

A network trained with focal length f_train reads an image from a camera with f_actual as if each
object were at Z * f_train / f_actual; multiplying the depth by f_actual / f_train undoes that to
first order (the scale, not what another field of view does to the content). Both focal lengths
are sqrt(fx * fy) *at the network input*: the letterbox resize of depth_estimation.processing
scales each camera's focal length by its own resize factor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from depth_estimation.geometry import Intrinsics
from depth_estimation.processing import Letterbox


@dataclass(frozen=True)
class TrainingCamera:
    """The camera a model was trained with: focal lengths in pixels at width x height."""

    name: str
    fx: float
    fy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not (self.fx > 0 and self.fy > 0 and math.isfinite(self.fx * self.fy)):
            raise ValueError(f'training focal lengths must be positive, got {self.fx}, {self.fy}')
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'training image size must be positive, got '
                             f'{self.width}x{self.height}')

    def intrinsics(self) -> Intrinsics:
        """As intrinsics with a centred principal point (only the focal lengths matter here)."""
        return Intrinsics(self.fx, self.fy, (self.width - 1) / 2.0, (self.height - 1) / 2.0,
                          self.width, self.height)


# Training cameras of the official models and of our demo model (focal lengths from
# ../shared/data/MANIFEST.md; NYU v2 and KITTI calibrations as the BTS / ZoeDepth data use them).
TRAINING_CAMERAS = {
    'nyu': TrainingCamera('nyu', 518.8579, 519.46961, 640, 480),  # ZoeD_N
    'kitti': TrainingCamera('kitti', 707.0493, 707.0493, 1242, 375),  # ZoeD_K
    'sevenscenes': TrainingCamera('sevenscenes', 585.0, 585.0, 640, 480),
}


def network_focal(intrinsics: Intrinsics, network_size: tuple[int, int],
                  keep_aspect_ratio: bool = True) -> float:
    """sqrt(fx * fy) in pixels of the network input (H, W), after the resize the model's
    preprocessing makes (letterbox, or stretch when it does not keep the aspect ratio)."""
    box = Letterbox.fit((intrinsics.height, intrinsics.width), network_size, keep_aspect_ratio)
    fx = intrinsics.fx * box.width / intrinsics.width
    fy = intrinsics.fy * box.height / intrinsics.height
    return math.sqrt(fx * fy)


def focal_scale(intrinsics: Intrinsics, training: TrainingCamera,
                network_size: tuple[int, int], keep_aspect_ratio: bool = True) -> float:
    """Factor to multiply predicted depth by: f_actual / f_train, both at the network input."""
    return (network_focal(intrinsics, network_size, keep_aspect_ratio)
            / network_focal(training.intrinsics(), network_size, keep_aspect_ratio))


def compensate_focal(depth: np.ndarray, intrinsics: Intrinsics, training: TrainingCamera,
                     network_size: tuple[int, int], keep_aspect_ratio: bool = True) -> np.ndarray:
    """Predicted depth (H, W) corrected for the camera's focal length, float32 (NaN/Inf kept)."""
    factor = focal_scale(intrinsics, training, network_size, keep_aspect_ratio)
    return (np.asarray(depth, dtype=np.float32) * np.float32(factor)).astype(np.float32)


def training_camera(name_or_values: object) -> TrainingCamera:
    """A known camera by name ('nyu', 'kitti', 'sevenscenes') or a mapping with fx, fy, width,
    height (e.g. from a model's metadata)."""
    if isinstance(name_or_values, str):
        try:
            return TRAINING_CAMERAS[name_or_values]
        except KeyError:
            raise KeyError(f'unknown training camera {name_or_values!r}; known: '
                           f"{', '.join(sorted(TRAINING_CAMERAS))}") from None
    if isinstance(name_or_values, Mapping):
        missing = {'fx', 'width', 'height'} - set(name_or_values)
        if missing:
            raise ValueError(f'training camera needs fx, width, height; missing {sorted(missing)}')
        values = name_or_values
        return TrainingCamera(str(values.get('name', 'custom')), float(values['fx']),
                              float(values.get('fy', values['fx'])), int(values['width']),
                              int(values['height']))
    raise TypeError(f'expected a camera name or a mapping, got {type(name_or_values).__name__}')
