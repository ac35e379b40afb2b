"""depth_estimation.pipeline.focal: focal lengths at the network input, hand-computed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_estimation.geometry import Intrinsics
from depth_estimation.pipeline.focal import (TRAINING_CAMERAS, TrainingCamera, compensate_focal,
                                             focal_scale, network_focal, training_camera)

NETWORK = (96, 128)  # the tiny preset's input (H, W)
SEVENSCENES = Intrinsics(585.0, 585.0, 320.0, 240.0, 640, 480)
NYU = Intrinsics(518.8579, 519.46961, 325.58245, 253.73617, 640, 480)


def test_network_focal_follows_the_letterbox_resize():
    # 640 x 480 -> 128 x 96: a factor 0.2 on both axes
    assert network_focal(SEVENSCENES, NETWORK) == pytest.approx(117.0)
    # KITTI 1242 x 375 into 96 x 128: width-bound, 128 x round(375 * 128 / 1242) = 128 x 39
    kitti = Intrinsics(707.0493, 707.0493, 604.0814, 180.5066, 1242, 375)
    expected = math.sqrt(707.0493 * 128 / 1242 * 707.0493 * 39 / 375)
    assert network_focal(kitti, NETWORK) == pytest.approx(expected)


def test_scale_is_the_ratio_of_focal_lengths():
    sevenscenes = TRAINING_CAMERAS['sevenscenes']
    # NYU seen by a model trained on 7-Scenes: same image size, so the plain focal ratio
    expected = math.sqrt(518.8579 * 519.46961) / 585.0
    assert focal_scale(NYU, sevenscenes, NETWORK) == pytest.approx(expected)
    assert expected == pytest.approx(0.8875, abs=1e-4)  # about 11 % nearer
    # the training camera itself, and the same camera at twice the resolution: no correction
    assert focal_scale(SEVENSCENES, sevenscenes, NETWORK) == pytest.approx(1.0)
    double = Intrinsics(1170.0, 1170.0, 640.5, 480.5, 1280, 960)
    assert focal_scale(double, sevenscenes, NETWORK) == pytest.approx(1.0)
    # a 1.5x zoom of the same camera (crop the centre, resize back) looks 1.5x nearer
    zoomed = Intrinsics(585.0 * 1.5, 585.0 * 1.5, 320.0, 240.0, 640, 480)
    assert focal_scale(zoomed, sevenscenes, NETWORK) == pytest.approx(1.5)


def test_compensate_multiplies_depth_and_keeps_invalid():
    depth = np.array([[2.0, np.nan], [np.inf, 4.0]], np.float32)
    zoomed = Intrinsics(585.0 * 1.5, 585.0 * 1.5, 320.0, 240.0, 640, 480)
    corrected = compensate_focal(depth, zoomed, TRAINING_CAMERAS['sevenscenes'], NETWORK)
    assert corrected.dtype == np.float32
    np.testing.assert_allclose(corrected, [[3.0, np.nan], [np.inf, 6.0]], rtol=1e-6)


def test_training_camera_lookup():
    assert training_camera('nyu').fx == pytest.approx(518.8579)
    custom = training_camera({'fx': 600.0, 'width': 640, 'height': 480})
    assert (custom.fx, custom.fy, custom.name) == (600.0, 600.0, 'custom')
    with pytest.raises(KeyError, match='unknown training camera'):
        training_camera('zed')
    with pytest.raises(ValueError, match='missing'):
        training_camera({'fx': 600.0})
    with pytest.raises(ValueError, match='positive'):
        TrainingCamera('bad', 0.0, 1.0, 640, 480)
