"""One interface for every inference backend: RGB uint8 (H, W, 3) in, float32 metres (H, W) out."""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Any

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


class DepthBackend(abc.ABC):
    """A loaded model. Use as a context manager, or call `close()`.

    `infer(rgb)` takes an RGB uint8 image of any size and returns metric depth (float32 metres) at
    the
    same size; pre- and post-processing are shared by all backends and driven by `metadata`.
    """

    name = 'base'

    def __init__(self, metadata: ArtifactMetadata) -> None:
        self.metadata = metadata
        self.preprocessor = Preprocessor(metadata.input_size, metadata.mean, metadata.std)
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

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        if self._closed:
            raise RuntimeError(f'{self.name} backend is closed')
        start = time.perf_counter()
        tensor, box = self.preprocessor.prepare(rgb)
        prepared = time.perf_counter()
        network_depth = self.run_network(tensor)
        inferred = time.perf_counter()
        depth = self.preprocessor.restore(network_depth, box)
        done = time.perf_counter()
        self.last_timings = Timings(prepared - start, inferred - prepared, done - inferred)
        return depth

    def describe(self) -> dict[str, Any]:
        """Identity of the backend and model, for logs and diagnostics."""
        return {'backend': self.name, 'model': self.metadata.model_name,
                'config_hash': self.metadata.config_hash[:12],
                'input_size': f'{self.metadata.input_height}x{self.metadata.input_width}'}

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> DepthBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
