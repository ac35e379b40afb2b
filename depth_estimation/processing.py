"""Pre- and post-processing around a static-shape depth network (numpy + OpenCV, no torch).

Pre: RGB uint8 (H, W, 3) -> letterbox resize into the network input (h, w), reflection padding,
normalisation -> float32 (1, 3, h, w). Post: depth (h, w) -> crop the padding -> resize to (H, W).
A model trained on frames resized to its input whatever their aspect ratio (FastDepth: 4:3 NYU
crops at 224 x 224) says so with `keep_aspect_ratio=False`: the frame is then stretched to the
input and the depth stretched back, without padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """Where an image sits in the network input: resized to (height, width) at (top, left)."""

    source_height: int
    source_width: int
    height: int
    width: int
    top: int
    left: int

    @classmethod
    def fit(cls, source_size: tuple[int, int], network_size: tuple[int, int],
            keep_aspect_ratio: bool = True) -> Letterbox:
        """Largest resize of `source_size` (H, W) keeping its aspect ratio in `network_size`
        (or, with `keep_aspect_ratio=False`, the whole network input)."""
        source_height, source_width = source_size
        network_height, network_width = network_size
        if source_height <= 0 or source_width <= 0:
            raise ValueError(f'empty image {source_width}x{source_height}')
        if not keep_aspect_ratio:
            return cls(source_height, source_width, network_height, network_width, 0, 0)
        scale = min(network_height / source_height, network_width / source_width)
        height = min(network_height, max(1, round(source_height * scale)))
        width = min(network_width, max(1, round(source_width * scale)))
        top = (network_height - height) // 2
        left = (network_width - width) // 2
        return cls(source_height, source_width, height, width, top, left)


class Preprocessor:
    """Image <-> network tensor conversion for one network input size and normalisation."""

    def __init__(self, input_size: tuple[int, int], mean: tuple[float, float, float],
                 std: tuple[float, float, float], keep_aspect_ratio: bool = True) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.keep_aspect_ratio = bool(keep_aspect_ratio)
        std_array = np.asarray(std, dtype=np.float32)
        # (x / 255 - mean) / std == x * scale + offset
        self._scale = (1.0 / (255.0 * std_array)).reshape(1, 1, 3)
        self._offset = (-np.asarray(mean, dtype=np.float32) / std_array).reshape(1, 1, 3)
        self._letterboxes: dict[tuple[int, int], Letterbox] = {}

    @classmethod
    def matching(cls, model: Any) -> Preprocessor:
        """The preprocessing of a model config or artifact metadata (input size, normalisation,
        whether the frame keeps its aspect ratio)."""
        return cls(model.input_size, model.mean, model.std, model.keep_aspect_ratio)

    def letterbox(self, source_size: tuple[int, int]) -> Letterbox:
        box = self._letterboxes.get(source_size)
        if box is None:
            box = self._letterboxes[source_size] = Letterbox.fit(source_size, self.input_size,
                                                                 self.keep_aspect_ratio)
        return box

    def prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """RGB uint8 (H, W, 3) -> normalised float32 (1, 3, h, w) and where the image lies."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f'expected an RGB image of shape (H, W, 3), got {rgb.shape}')
        if rgb.dtype != np.uint8:
            raise ValueError(f'expected uint8 RGB, got {rgb.dtype}')
        box = self.letterbox(rgb.shape[:2])
        if (box.height, box.width) != rgb.shape[:2]:
            shrinking = box.height < rgb.shape[0]
            rgb = cv2.resize(rgb, (box.width, box.height),
                             interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        network_height, network_width = self.input_size
        bottom = network_height - box.height - box.top
        right = network_width - box.width - box.left
        if box.top or bottom or box.left or right:
            rgb = cv2.copyMakeBorder(rgb, box.top, bottom, box.left, right, cv2.BORDER_REFLECT_101)
        normalised = rgb.astype(np.float32) * self._scale + self._offset  # (h, w, 3)
        tensor = np.ascontiguousarray(normalised.transpose(2, 0, 1))[np.newaxis]  # (1, 3, h, w)
        return tensor, box

    @staticmethod
    def restore(network_depth: np.ndarray, box: Letterbox) -> np.ndarray:
        """Network depth (h, w) or (1, 1, h, w) -> float32 depth (H, W) of the source image."""
        depth = np.asarray(network_depth, dtype=np.float32).reshape(network_depth.shape[-2:])
        depth = depth[box.top:box.top + box.height, box.left:box.left + box.width]
        if depth.shape != (box.source_height, box.source_width):
            depth = cv2.resize(depth, (box.source_width, box.source_height),
                               interpolation=cv2.INTER_LINEAR)
        return depth
