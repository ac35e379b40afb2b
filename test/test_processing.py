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


def test_a_model_that_does_not_keep_the_aspect_ratio_gets_the_frame_stretched() -> None:
    """keep_aspect_ratio=False: a 4:3 frame fills a square input without padding (FastDepth's
    training geometry), and the depth comes back stretched to the frame."""
    box = Letterbox.fit((480, 640), (224, 224), keep_aspect_ratio=False)
    assert (box.height, box.width, box.top, box.left) == (224, 224, 0, 0)
    preprocessor = Preprocessor((224, 224), (0, 0, 0), (1, 1, 1), keep_aspect_ratio=False)
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, 320:] = 255  # right half white: stays the right half after the stretch
    tensor, box = preprocessor.prepare(image)
    assert tensor.shape == (1, 3, 224, 224)
    assert tensor[0, 0, :, :111].max() == 0 and tensor[0, 0, :, 113:].min() == 1
    ramp = np.tile(np.linspace(1, 2, 224, dtype=np.float32), (224, 1))  # (224, 224)
    restored = Preprocessor.restore(ramp, box)
    assert restored.shape == (480, 640)
    assert abs(restored[240, 0] - 1) < 0.01 and abs(restored[240, -1] - 2) < 0.01


def test_preprocessing_matches_what_the_model_says() -> None:
    from depth_estimation.artifacts import ArtifactMetadata
    from depth_estimation.model.presets import get_preset

    config = get_preset('tiny')
    for keep in (True, False):
        metadata = ArtifactMetadata.from_model_config(config.replace(keep_aspect_ratio=keep))
        preprocessor = Preprocessor.matching(metadata)
        assert preprocessor.keep_aspect_ratio is keep
        assert preprocessor.input_size == config.input_size
        assert ArtifactMetadata.from_dict(metadata.to_dict()).keep_aspect_ratio is keep


def test_focal_length_at_the_network_input_follows_the_resize() -> None:
    from depth_estimation.geometry import Intrinsics
    from depth_estimation.pipeline.focal import network_focal

    camera = Intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480)
    letterboxed = network_focal(camera, (224, 224))  # 640 x 480 -> 224 x 168: scale 0.35
    stretched = network_focal(camera, (224, 224), keep_aspect_ratio=False)  # x 0.35, y 0.467
    assert letterboxed == pytest.approx(500.0 * 0.35)
    assert stretched == pytest.approx(500.0 * (224 / 640 * 224 / 480) ** 0.5)
