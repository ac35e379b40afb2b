"""The per-frame pipeline without a ROS graph: intrinsics selection, DepthPipeline on a real model.

Expected depth comes from a second ONNX Runtime session on the same model; expected intrinsics
and points from the pinhole equations written out here.
"""

from __future__ import annotations

import numpy as np
from onnx_graphs import brightness_depth_model, constant_depth_model
import pytest

from depth_estimation.inference import open_backend
from depth_estimation.pipeline import (CameraCalibration, DepthPipeline, ModelLoadError,
                                       PipelineSettings, select_intrinsics, SkippedFrame,
                                       SparseSample)
from depth_estimation.samples import load_samples

K = (600.0, 0.0, 320.0, 0.0, 610.0, 240.0, 0.0, 0.0, 1.0)
P = (580.0, 0.0, 300.0, 0.0, 0.0, 590.0, 230.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def settings(**values) -> PipelineSettings:
    return PipelineSettings.from_values(values)


# Intrinsics selection -------------------------------------------------------------------------

def test_calibration_p_first_then_k_then_parameters_then_none() -> None:
    choice = select_intrinsics((640, 480), settings(), CameraCalibration(K, P, 640, 480))
    assert choice.source == 'camera_info'
    assert (choice.intrinsics.fx, choice.intrinsics.cy) == (580.0, 230.0)
    from_k = select_intrinsics((640, 480), settings(), CameraCalibration(K, (0.0,) * 12, 640, 480))
    assert (from_k.intrinsics.fx, from_k.intrinsics.fy) == (600.0, 610.0)
    from_parameters = select_intrinsics((640, 480), settings(fx=500.0))
    assert from_parameters.source == 'parameters'
    assert (from_parameters.intrinsics.fx, from_parameters.intrinsics.cx) == (500.0, 319.5)
    assert select_intrinsics((640, 480), settings()).intrinsics is None
    assert select_intrinsics((640, 480), settings()).source == 'none'


def test_calibration_is_scaled_to_the_image_and_another_aspect_ratio_is_refused() -> None:
    half = select_intrinsics((320, 240), settings(), CameraCalibration(K, P, 640, 480))
    assert half.intrinsics.fx == pytest.approx(290.0)
    assert half.intrinsics.cx == pytest.approx((300.0 + 0.5) * 0.5 - 0.5)  # pixel centres
    assert (half.intrinsics.width, half.intrinsics.height) == (320, 240)
    with pytest.raises(SkippedFrame) as refused:
        select_intrinsics((640, 360), settings(), CameraCalibration(K, P, 640, 480))
    assert refused.value.kind == 'camera_info_size'


# DepthPipeline on the tiny exported model -----------------------------------------------------

@pytest.fixture(scope='module')
def rgb() -> np.ndarray:
    return load_samples()[0].rgb  # (H, W, 3) uint8


def test_depth_with_rep117_ranges_points_and_scan(tiny_onnx, rgb) -> None:
    reference = open_backend(tiny_onnx, num_threads=1)
    model_depth = reference.infer(rgb)  # (H, W) metres, the model's own answer
    reference.close()
    low, high = np.percentile(model_depth, [10, 90])
    chosen = settings(model_path=str(tiny_onnx), num_threads=1, min_depth=float(low),
                      max_depth=float(high), points_stride=2, publish_scan=True,
                      scan_range_min=0.001, scan_range_max=100.0)
    pipeline = DepthPipeline.open(chosen)
    try:
        height, width = rgb.shape[:2]
        calibration = CameraCalibration(K, P, width, height)
        frame = pipeline.process(rgb, chosen, calibration, stamp=1.0)
    finally:
        pipeline.close()
    inside = (model_depth >= np.float32(low)) & (model_depth <= np.float32(high))
    np.testing.assert_allclose(frame.depth[inside], model_depth[inside], rtol=1e-5)
    assert np.all(frame.depth[model_depth < np.float32(low)] == -np.inf)
    assert np.all(frame.depth[model_depth > np.float32(high)] == np.inf)
    assert frame.depth_range == (float(low), float(high))
    assert frame.intrinsics_source == 'camera_info' and frame.refinements == ()
    # Points keep every 2nd pixel: x = (u - cx) z / fx at u = 2 j with the full-size camera.
    row, column = np.argwhere(inside[::2, ::2])[0]
    z = model_depth[2 * row, 2 * column]
    np.testing.assert_allclose(frame.points[row, column],
                               [(2 * column - 300.0) * z / 580.0, (2 * row - 230.0) * z / 590.0,
                                z], rtol=1e-4)
    np.testing.assert_array_equal(frame.points_rgb, rgb[::2, ::2])
    assert frame.scan_ranges.shape == (width,) and frame.problems == ()


def test_a_new_size_is_answered_at_once_with_its_state_reset(tiny_onnx, rgb) -> None:
    chosen = settings(model_path=str(tiny_onnx), num_threads=1, temporal_filter=True, fx=500.0)
    pipeline = DepthPipeline.open(chosen)
    try:
        first = pipeline.process(rgb, chosen)
        assert first.refinements == ('temporal',) and first.size_change == ''
        height, width = rgb.shape[:2]
        sizes = [(width + 1, height + 1), (width // 2, height // 2), (width, height)]
        for number, (new_width, new_height) in enumerate(sizes, start=1):
            resized = np.ascontiguousarray(np.resize(rgb, (new_height, new_width, 3)))
            frame = pipeline.process(resized, chosen)
            assert frame.depth.shape == (new_height, new_width)
            assert (frame.intrinsics.width, frame.intrinsics.height) == (new_width, new_height)
            assert frame.size_change.startswith('image size changed from ')
            assert pipeline.size_changes == number
            assert pipeline.refiner.temporal.last_reset_fraction == 1.0  # started afresh
        assert pipeline.process(rgb, chosen).size_change == ''  # the same size again
    finally:
        pipeline.close()


def test_a_model_without_valid_depth_on_the_sample_frame_is_refused(tmp_path) -> None:
    model = constant_depth_model(tmp_path / 'negative.onnx', -1.0)
    with pytest.raises(ModelLoadError, match=r'valid depth .* for 0\.0% of the sample frame'):
        DepthPipeline.open(settings(model_path=str(model), num_threads=1))
    good = DepthPipeline.open(settings(model_path=str(brightness_depth_model(
        tmp_path / 'brightness.onnx')), num_threads=1))
    try:
        assert good.probe() > 0.9  # the same probe passes a model with depth on the sample
    finally:
        good.close()


def test_products_that_cannot_be_made_are_named(tiny_onnx, rgb) -> None:
    chosen = settings(model_path=str(tiny_onnx), num_threads=1, publish_scan=True,
                      scan_height=rgb.shape[0] + 10, fx=500.0)
    pipeline = DepthPipeline.open(chosen)
    try:
        frame = pipeline.process(rgb, chosen)
    finally:
        pipeline.close()
    (product, reason), = frame.problems
    assert product == 'scan' and 'scan_height' in reason
    assert frame.scan_ranges is None and frame.points is not None


def test_anchoring_scales_the_depth_to_the_sparse_samples(tiny_onnx, rgb) -> None:
    chosen = settings(model_path=str(tiny_onnx), num_threads=1, anchoring='sparse_depth',
                      max_depth=1000.0)
    pipeline = DepthPipeline.open(chosen)
    try:
        plain = pipeline.process(rgb, settings(model_path=str(tiny_onnx), max_depth=1000.0))
        sparse = np.where(np.arange(plain.depth.size).reshape(plain.depth.shape) % 97 == 0,
                          2.0 * plain.depth, np.nan).astype(np.float32)  # (H, W) metres
        frame = pipeline.process(rgb, chosen, sample=SparseSample(5.0, depth=sparse), stamp=5.0)
        held = pipeline.process(rgb, chosen, stamp=5.1)  # no new sample: the scale is held
        half = np.ascontiguousarray(rgb[::2, ::2])  # (H / 2, W / 2, 3): another camera mode
        restarted = pipeline.process(half, chosen, stamp=5.2)
    finally:
        pipeline.close()
    assert frame.refinements == ('anchoring',)
    np.testing.assert_allclose(frame.depth, 2.0 * plain.depth, rtol=1e-4)
    assert held.refinements == ('anchoring',)
    assert restarted.size_change and restarted.refinements == ()  # the old scale is forgotten


def test_models_that_cannot_serve_the_settings_are_refused(tiny_onnx, tmp_path) -> None:
    with pytest.raises(ModelLoadError, match='cannot load model'):
        DepthPipeline.open(settings(model_path=str(tmp_path / 'absent.onnx')))
    with pytest.raises(ModelLoadError, match='confidence_threshold'):
        DepthPipeline.open(settings(model_path=str(tiny_onnx), confidence_threshold=0.5))
