"""One interface for every inference backend: RGB uint8 (H, W, 3) in, float32 metres (H, W) out.

Models exported with `depth-estimation export --confidence` have a second output, `confidence`
(float32 in [0, 1], the same shape as the depth); `infer_outputs` returns it beside the depth,
restored to the input image exactly like the depth (same letterbox crop, same bilinear resize), so
pixel (u, v) of both maps describes the same ray. `infer` keeps returning the depth alone and never
pays for the confidence.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from depth_estimation.artifacts import ArtifactMetadata
from depth_estimation.processing import Preprocessor


@dataclass
class Timings:
    """Seconds spent in each stage of the last `infer` call."""

    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0

    @property
    def total(self) -> float:
        return self.preprocess + self.inference + self.postprocess


# The optional second model output (depth_estimation.model.confidence.OUTPUT_NAMES).
CONFIDENCE_NAME = 'confidence'


@dataclass
class DepthResult:
    """What one `infer_outputs` call returns, both at the input image size."""

    depth: np.ndarray  # (H, W) float32 metres
    confidence: Optional[np.ndarray] = None  # (H, W) float32 in [0, 1]; None: not asked or none


class DepthBackend(abc.ABC):
    """A loaded model. Use as a context manager, or call `close()`.

    `infer(rgb)` takes an RGB uint8 image of any size and returns metric depth (float32 metres) at
    the
    same size; pre- and post-processing are shared by all backends and driven by `metadata`.
    """

    name = 'base'

    def __init__(self, metadata: ArtifactMetadata) -> None:
        self.metadata = metadata
        self.preprocessor = Preprocessor.matching(metadata)
        self.last_timings = Timings()
        self._closed = False

    @abc.abstractmethod
    def run_outputs(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """Normalised float32 (1, 3, h, w) at the network size -> every output, by name.

        Outputs are addressed by name (`metadata.output_name` is the depth, (1, 1, h, w)
        metres), so a model with more outputs (e.g. a confidence map) needs no new method.
        """

    def run_network(self, tensor: np.ndarray) -> np.ndarray:
        """Normalised float32 (1, 3, h, w) at the network size -> depth (1, 1, h, w) metres."""
        return self.run_outputs(tensor)[self.metadata.output_name]

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the model's outputs (the depth first); backends list what the model has."""
        return (self.metadata.output_name,)

    @property
    def has_confidence(self) -> bool:
        """Whether the model has a `confidence` output (export --confidence, or a checkpoint)."""
        return CONFIDENCE_NAME in self.output_names

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) -> depth float32 (H, W) metres."""
        return self.infer_outputs(rgb, confidence=False).depth

    def infer_outputs(self, rgb: np.ndarray, confidence: bool = True) -> DepthResult:
        """Depth and, when `confidence` is asked for and the model has it, the confidence map.

        Both come back at the input size through the same `Preprocessor.restore` (crop of the
        letterbox padding, then one bilinear resize), so they stay pixel-aligned; bilinear weights
        are convex, so the confidence stays in [0, 1].
        """
        if self._closed:
            raise RuntimeError(f'{self.name} backend is closed')
        start = time.perf_counter()
        tensor, box = self.preprocessor.prepare(rgb)
        prepared = time.perf_counter()
        network_confidence = None
        if confidence and self.has_confidence:
            outputs = self.run_outputs(tensor)
            network_depth = outputs[self.metadata.output_name]  # (1, 1, h, w) metres
            network_confidence = outputs[CONFIDENCE_NAME]  # (1, 1, h, w) in [0, 1]
        else:
            network_depth = self.run_network(tensor)
        inferred = time.perf_counter()
        depth = self.preprocessor.restore(network_depth, box)
        restored_confidence = (None if network_confidence is None
                               else self.preprocessor.restore(network_confidence, box))
        done = time.perf_counter()
        self.last_timings = Timings(prepared - start, inferred - prepared, done - inferred)
        return DepthResult(depth, restored_confidence)

    def describe(self) -> dict[str, Any]:
        """Identity of the backend and model, for logs and diagnostics."""
        return {'backend': self.name, 'model': self.metadata.model_name,
                'config_hash': self.metadata.config_hash[:12],
                'input_size': f'{self.metadata.input_height}x{self.metadata.input_width}',
                'outputs': ','.join(self.output_names)}

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> DepthBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
