"""Pre/post-processing: letterbox geometry, normalisation, restoring depth to the input size."""

from __future__ import annotations

import numpy as np
import pytest

from depth_estimation.processing import Letterbox, Preprocessor


@pytest.mark.parametrize('source, expected', [
    ((480, 640), (384, 512, 0, 0)),  # 4:3 fills the 384 x 512 input exactly
    ((720, 1280), (288, 512, 48, 0)),  # 16:9: scale 0.4, 96 rows of padding split top/bottom
    ((640, 480), (384, 288, 0, 112)),  # portrait
    ((96, 128), (384, 512, 0, 0)),  # upscaling
])
def test_letterbox_keeps_aspect_ratio(source, expected) -> None:
    box = Letterbox.fit(source, (384, 512))
    assert (box.height, box.width, box.top, box.left) == expected
    assert abs(box.width / box.height - source[1] / source[0]) < 0.01


def test_prepare_normalises_and_lays_out_channels() -> None:
    preprocessor = Preprocessor((96, 128), mean=(0.5, 0.4, 0.3), std=(0.5, 0.25, 0.1))
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 0, 51  # R = 1.0, G = 0.0, B = 0.2
    tensor, box = preprocessor.prepare(rgb)
    assert tensor.shape == (1, 3, 96, 128) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, :, 5, 7], [(1 - 0.5) / 0.5, (0 - 0.4) / 0.25,
                                                    (0.2 - 0.3) / 0.1], rtol=1e-6)
    assert tensor.flags['C_CONTIGUOUS'] and (box.top, box.left) == (0, 0)


def test_padding_reflects_the_image() -> None:
    preprocessor = Preprocessor((96, 128), mean=(0, 0, 0), std=(1, 1, 1))
    # needs 24 rows each side
    rgb = np.random.default_rng(0).integers(0, 256, (48, 128, 3), np.uint8)
    tensor, box = preprocessor.prepare(rgb)
    assert (box.top, box.height) == (24, 48)
    image = tensor[0].transpose(1, 2, 0) * 255  # (96, 128, 3)
    np.testing.assert_allclose(image[24:72], rgb, atol=1e-3)
    np.testing.assert_allclose(image[23], rgb[1], atol=1e-3)  # BORDER_REFLECT_101


def test_restore_crops_padding_and_resizes_back() -> None:
    box = Letterbox.fit((720, 1280), (384, 512))
    network = np.full((1, 1, 384, 512), 99.0, np.float32)  # padding rows keep 99
    network[0, 0, box.top:box.top + box.height] = 2.5
    depth = Preprocessor.restore(network, box)
    assert depth.shape == (720, 1280) and depth.dtype == np.float32
    np.testing.assert_allclose(depth, 2.5)


def test_restore_preserves_a_horizontal_ramp() -> None:
    box = Letterbox.fit((480, 640), (96, 128))
    ramp = np.tile(np.linspace(1, 5, 128, dtype=np.float32), (96, 1))
    depth = Preprocessor.restore(ramp, box)
    assert depth.shape == (480, 640)
    assert np.all(np.diff(depth[240]) >= 0) and abs(depth[0, 0] - 1) < 0.05 and abs(
        depth[0, -1] - 5) < 0.05


@pytest.mark.parametrize('image, message', [
    (np.zeros((10, 10), np.uint8), 'shape'),
    (np.zeros((10, 10, 4), np.uint8), 'shape'),
    (np.zeros((10, 10, 3), np.float32), 'uint8'),
    (np.zeros((0, 10, 3), np.uint8), 'empty'),
])
def test_prepare_rejects_bad_images(image, message) -> None:
    with pytest.raises(ValueError, match=message):
        Preprocessor((96, 128), (0.5,) * 3, (0.5,) * 3).prepare(image)
