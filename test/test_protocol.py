"""The official inference protocol: resize rule and values against the oracle, flip averaging."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import SHARED_DIR, require_shared
from depth_estimation.model.protocol import (FlipAveraged, infer_official, official_network_size,
                                             official_padding, prepare_official)

ORACLE = SHARED_DIR / 'oracle'


def test_network_size_matches_the_official_resize_for_every_setting() -> None:
    reference = json.loads(require_shared(ORACLE / 'prep_reference.json').read_text())
    checked = 0
    for setting in reference['settings'].values():
        for source, expected in setting['input_HW_to_network_HW'].items():
            height, width = (int(v) for v in source.split('x'))
            assert official_network_size(height, width, tuple(setting['img_size_HW']),
                                         setting['keep_aspect_ratio']) == tuple(expected), source
            checked += 1
    assert checked == 66


@pytest.mark.parametrize('setting, size, keep', [
    ('N_NK_infer', (384, 512), True), ('N_NK_eval', (384, 512), False),
    ('K_infer', (384, 768), True), ('K_eval', (384, 768), False),
    ('SwinV2_B_384_square', (384, 384), False), ('SwinV2_T_256_square', (256, 256), False)])
def test_prepared_values_match_the_official_prep(setting, size, keep) -> None:
    reference = np.load(require_shared(ORACLE / 'prep_reference.npz'))
    prepared = prepare_official(torch.from_numpy(reference['x']), size, (0.5,) * 3, (0.5,) * 3,
                                keep)
    np.testing.assert_allclose(prepared.numpy(), reference[f'prep_{setting}'], atol=2e-6)


def test_official_padding_of_a_384_by_512_input() -> None:
    assert official_padding(384, 512) == (41, 48)  # the official infer pads to 466 x 608


def _mirror_error(depth_of) -> float:
    """How far depth(mirror(image)) is from mirror(depth(image)) for a random image."""
    image = torch.rand(1, 3, 96, 128)
    direct = depth_of(image)
    mirrored = depth_of(torch.flip(image, dims=[3]))
    return float((torch.flip(mirrored, dims=[3]) - direct).abs().max())


def test_flip_averaging_makes_depth_mirror_equivariant(tiny_model) -> None:
    with torch.inference_mode():
        assert _mirror_error(FlipAveraged(tiny_model)) < 1e-6
        assert _mirror_error(tiny_model) > 1e-4, 'without averaging the model is not symmetric'
        assert _mirror_error(lambda x: infer_official(tiny_model, x)) < 1e-6


def test_official_infer_returns_the_input_size(tiny_model) -> None:
    image = torch.rand(1, 3, 100, 150)
    with torch.inference_mode():
        for pad_input in (True, False):
            depth = infer_official(tiny_model, image, pad_input=pad_input, flip=False)
            assert depth.shape == (1, 1, 100, 150) and torch.isfinite(depth).all()


@pytest.mark.export
def test_flip_averaged_export_matches_pytorch(tiny_model, tmp_path) -> None:
    import onnxruntime

    from depth_estimation.artifacts import read_metadata
    from depth_estimation.tools.cli import main

    output = tmp_path / 'flip.onnx'
    assert main(['export', '--preset', 'tiny', '--random-weights', '--flip-average',
                 '-o', str(output)]) == 0
    assert read_metadata(output).extra['protocol'] == {'flip_average': True}
    session = onnxruntime.InferenceSession(str(output), providers=['CPUExecutionProvider'])
    image = np.random.default_rng(5).uniform(-1, 1, (1, 3, 96, 128)).astype(np.float32)
    actual = session.run(None, {'image': image})[0]
    with torch.inference_mode():
        expected = FlipAveraged(tiny_model)(torch.from_numpy(image)).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-4)
    mirrored = session.run(None, {'image': np.ascontiguousarray(image[..., ::-1])})[0]
    np.testing.assert_allclose(mirrored[..., ::-1], actual, rtol=1e-5)


def test_torch_backend_protocols(tiny_model) -> None:
    from depth_estimation.inference.torch_backend import TorchBackend

    rgb = np.random.default_rng(2).integers(0, 256, (120, 200, 3), np.uint8)
    with TorchBackend(tiny_model, protocol='official', flip=True) as official, \
            TorchBackend(tiny_model, flip=True) as letterbox:
        # OpenCV's fixed-point resampling in the letterbox path is symmetric only to ~3e-5
        for backend, tolerance in ((official, 1e-5), (letterbox, 1e-4)):
            depth = backend.infer(rgb)
            mirrored = backend.infer(np.ascontiguousarray(rgb[:, ::-1]))
            assert depth.shape == (120, 200)
            np.testing.assert_allclose(mirrored[:, ::-1], depth, rtol=tolerance)
        assert official.describe()['protocol'] == 'official'
    with pytest.raises(ValueError, match='unknown protocol'):
        TorchBackend(tiny_model, protocol='magic')
