"""The per-frame depth pipeline without ROS: an RGB image in, a `DepthFrame` out.

    RGB (H, W, 3) -> model depth -> refinement (temporal, focal, anchoring; refinement.py)
        -> REP 117 depth range (ranges.py) -> confidence mask -> cloud points, scan ranges

Settings come with every frame, so run-time changes take effect on the next one.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from depth_estimation.geometry import depth_to_points, Intrinsics
from depth_estimation.inference import open_backend
from depth_estimation.pipeline.frame import DepthFrame, SkippedFrame
from depth_estimation.pipeline.intrinsics import CameraCalibration, decimate, select_intrinsics
from depth_estimation.pipeline.laserscan import depth_to_scan
from depth_estimation.pipeline.ranges import apply_depth_range, limit_far
from depth_estimation.pipeline.refinement import DepthRefiner, SparseSample
from depth_estimation.pipeline.stats import valid_share
from depth_estimation.samples import load_samples

# A model must give depth inside its own range for at least this share of the shipped sample
# frame (a real camera image) to be accepted; a working model covers nearly all of it.
PROBE_MIN_VALID_SHARE = 0.1


class ModelLoadError(RuntimeError):
    """The pipeline cannot start: bad parameters or a model that failed to load."""


class DepthPipeline:
    """A loaded model and the state between frames; `process` turns one image into a DepthFrame.

    Public read-outs: `backend`, `model_range` ((min, max) metres the model reports),
    `has_confidence`, `refiner` (its diagnostics), `image_size` ((W, H) of the last frame),
    `size_changes` (how often it changed; each change resets the per-size state and the frame is
    answered).
    """

    def __init__(self, backend: Any) -> None:
        metadata = backend.metadata
        self.backend = backend
        self.model_range = (float(metadata.min_depth), float(metadata.max_depth))
        self.has_confidence = bool(backend.has_confidence)
        self.refiner = DepthRefiner(metadata.input_size, metadata.extra.get('training_camera'),
                                    metadata.keep_aspect_ratio)
        self.image_size: Optional[tuple[int, int]] = None
        self.size_changes = 0

    @classmethod
    def open(cls, settings: Any) -> DepthPipeline:
        """Load `settings.model_path`, check the settings against it and run one test inference.

        Raises ModelLoadError with the reason (a missing or corrupt artifact, settings the model
        cannot serve, a model without valid depth on the sample frame).
        """
        try:
            backend = open_backend(settings.model_path, settings.backend,
                                   num_threads=settings.num_threads)
        except Exception as error:  # any failure to load is refused with its reason
            raise ModelLoadError(f'cannot load model {settings.model_path!r} with backend '
                                 f'{settings.backend!r}: {type(error).__name__}: {error}'
                                 ) from error
        try:
            pipeline = cls(backend)
            pipeline.probe()
            pipeline.check(settings)
        except Exception as error:
            backend.close()
            raise ModelLoadError(f'model {settings.model_path!r} refused: '
                                 f'{type(error).__name__}: {error}') from error
        return pipeline

    def check(self, settings: Any) -> None:
        """ValueError when the settings ask for what this model cannot give."""
        settings.depth_range(*self.model_range)
        if settings.confidence_threshold > 0 and not self.has_confidence:
            raise ValueError('confidence_threshold needs a model with a confidence output '
                             '(export it with `depth-estimation export --confidence`, or use a '
                             'checkpoint with the torch backend)')
        self.refiner.check(settings)

    def probe(self) -> float:
        """Run the model on the shipped sample frame; ValueError unless it gives valid depth.

        Valid: finite and inside the model's own range (what the node publishes as a measurement
        with the default range), on at least PROBE_MIN_VALID_SHARE of the frame. Returns the share.
        """
        sample = load_samples()[0]
        depth = self.backend.infer(sample.rgb)  # (H, W) metres
        low, high = self.model_range
        share = valid_share(apply_depth_range(depth, low, high))
        if share < PROBE_MIN_VALID_SHARE:
            finite = depth[np.isfinite(depth)]
            seen = (f'{finite.min():.3g} .. {finite.max():.3g} m' if finite.size
                    else 'nothing finite')
            raise ValueError(
                f'the model gives valid depth (finite, within its range {low:g} .. {high:g} m) '
                f'for {share:.1%} of the sample frame {sample.name!r}, at least '
                f'{PROBE_MIN_VALID_SHARE:.0%} needed; its output there: {seen}')
        return share

    def close(self) -> None:
        self.backend.close()

    def reset(self) -> None:
        """Forget the state that belongs to one image size (the one place a new size resets)."""
        self.refiner.reset()  # the temporal state is per pixel, the anchored scale per camera

    def process(self, rgb: np.ndarray, settings: Any,
                calibration: Optional[CameraCalibration] = None,
                sample: Optional[SparseSample] = None,
                stamp: Optional[float] = None) -> DepthFrame:
        """One RGB image (H, W, 3) uint8 -> DepthFrame; SkippedFrame when it is not answered.

        `calibration`: the camera's K and P (else the intrinsics parameters); `sample`: the latest
        anchoring measurement; `stamp`: the image time in seconds (matched against the sample's).
        """
        height, width = rgb.shape[:2]
        size_change = self._check_size((width, height))
        choice = select_intrinsics((width, height), settings, calibration)
        want_confidence = self.has_confidence and (
            settings.confidence_threshold > 0 or settings.publish_confidence)
        result = self.backend.infer_outputs(rgb, confidence=want_confidence)
        if not np.isfinite(result.depth).any():
            raise SkippedFrame('model_output', 'the model returned no finite depth for this image')
        depth = self.refiner.refine(result.depth, choice.intrinsics, settings, sample,
                                    stamp)  # (H, W) metres
        depth_range = settings.depth_range(*self.model_range)
        depth = apply_depth_range(depth, *depth_range, settings.out_of_range)
        obstacle_depth = depth  # what points and scan ranges use
        if result.confidence is not None and settings.confidence_threshold > 0:
            obstacle_depth = np.where(result.confidence >= settings.confidence_threshold,
                                      depth, np.float32(np.nan))  # (H, W) metres
        products, problems = self._products(obstacle_depth, rgb, choice.intrinsics, settings)
        return DepthFrame(rgb=rgb, depth=depth, depth_range=depth_range,
                          intrinsics=choice.intrinsics, intrinsics_source=choice.source,
                          settings=settings, refinements=self._refinements(settings),
                          confidence=result.confidence, problems=problems,
                          inference_seconds=self.backend.last_timings.total,
                          valid_share=valid_share(depth), size_change=size_change, **products)

    def _check_size(self, size: tuple[int, int]) -> str:
        """'' for the stream's size; a new size resets the per-size state and says so."""
        previous, self.image_size = self.image_size, size
        if previous is None or previous == size:
            return ''
        self.reset()
        self.size_changes += 1
        return (f'image size changed from {previous[0]}x{previous[1]} to {size[0]}x{size[1]}: '
                'temporal filter and anchoring scale restart')

    @staticmethod
    def _products(depth: np.ndarray, rgb: np.ndarray, intrinsics: Optional[Intrinsics],
                  settings: Any) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
        """Cloud points and scan ranges of depth (H, W) metres, and the ones that failed."""
        products: dict[str, Any] = {}
        problems = []
        if intrinsics is None:
            return products, ()
        if settings.publish_points:
            stride = settings.points_stride
            kept = depth[::stride, ::stride]  # (h, w) metres
            if settings.points_max_depth > 0:
                kept = limit_far(kept, settings.points_max_depth)
            products['points'] = depth_to_points(kept, decimate(intrinsics, stride))  # (h, w, 3)
            products['points_rgb'] = rgb[::stride, ::stride] if settings.points_rgb else None
        if settings.publish_scan:
            try:
                products['scan_ranges'], products['scan_geometry'] = depth_to_scan(
                    depth, intrinsics, settings.scan_height, settings.scan_range_min,
                    settings.scan_range_max)  # (W,) metres
            except ValueError as error:  # e.g. scan_height taller than this image
                problems.append(('scan', str(error)))
        return products, tuple(problems)

    def _refinements(self, settings: Any) -> tuple[str, ...]:
        refiner = self.refiner
        anchored = settings.anchoring != 'off' and refiner.smoother.scale is not None
        applied = (('temporal', refiner.temporal is not None),
                   ('focal', refiner.focal_factor is not None), ('anchoring', anchored))
        return tuple(name for name, done in applied if done)


__all__ = ['DepthPipeline', 'ModelLoadError', 'PROBE_MIN_VALID_SHARE']
