"""depth_estimation.model.confidence: hand-computed bin mixtures, numpy mirror, ONNX wrapper."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from depth_estimation.model.confidence import (METHODS, OUTPUT_NAMES, DepthWithConfidence,
                                               confidence_from_bins,
                                               confidence_from_bins_numpy)


def _bins(centres: list[float], probs: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """One pixel's mixture as (1, n_bins, 1, 1) tensors."""
    shape = (1, len(centres), 1, 1)
    return (torch.tensor(centres, dtype=torch.float64).reshape(shape),
            torch.tensor(probs, dtype=torch.float64).reshape(shape))


def test_two_equal_bins():
    centres, probs = _bins([1.0, 3.0], [0.5, 0.5])  # depth 2, standard deviation 1
    value = {m: float(confidence_from_bins(centres, probs, method=m)) for m in METHODS}
    assert value['spread'] == pytest.approx(1 / (1 + 1 / 2))
    assert value['metric_spread'] == pytest.approx(1 / (1 + 1))  # sigma 1 m
    # log(1/2) = -0.693147, log(3/2) = 0.405465: sigma_log = sqrt(0.5 * 0.480453 + 0.5 * 0.164402)
    assert value['log_spread'] == pytest.approx(1 / (1 + math.sqrt(0.3224275)), rel=1e-5)
    assert value['mass'] == 0.0  # both bins are 50 % away from the depth
    assert value['entropy'] == pytest.approx(0.0, abs=1e-6)  # uniform over 2 bins
    assert value['max_prob'] == pytest.approx(0.5)


def test_peaked_mixture_is_confident_and_flat_is_not():
    centres, peaked = _bins([1.0, 2.0, 3.0, 4.0], [0.0, 0.97, 0.03, 0.0])
    _, flat = _bins([1.0, 2.0, 3.0, 4.0], [0.25, 0.25, 0.25, 0.25])
    depth = 2.0 * 0.97 + 3.0 * 0.03  # 2.03
    sigma = math.sqrt(0.97 * 0.03 ** 2 + 0.03 * 0.97 ** 2)  # sqrt(0.0291) = 0.170587
    assert float(confidence_from_bins(centres, peaked, method='spread')) == pytest.approx(
        1 / (1 + sigma / depth), rel=1e-5)
    # within +-10 % of 2.03 only the bin at 2.0 lies: mass 0.97
    assert float(confidence_from_bins(centres, peaked, method='mass')) == pytest.approx(0.97)
    for method in METHODS:
        assert float(confidence_from_bins(centres, peaked, method=method)) > float(
            confidence_from_bins(centres, flat, method=method))


def test_numpy_mirror_matches_torch():
    generator = torch.Generator().manual_seed(0)
    centres = torch.rand((2, 16, 5, 7), generator=generator, dtype=torch.float64) * 9 + 0.5
    logits = torch.randn((2, 16, 5, 7), generator=generator, dtype=torch.float64) * 2
    probs = torch.softmax(logits, dim=1)
    for method in METHODS:
        expected = confidence_from_bins(centres, probs, method=method).numpy()
        actual = confidence_from_bins_numpy(centres.numpy(), probs.numpy(), method=method)
        assert actual.shape == (2, 1, 5, 7) and actual.dtype == np.float32
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
        assert np.all((actual >= 0) & (actual <= 1))


def test_bad_arguments():
    centres, probs = _bins([1.0, 3.0], [0.5, 0.5])
    with pytest.raises(ValueError, match='unknown confidence method'):
        confidence_from_bins(centres, probs, method='variance')
    with pytest.raises(ValueError, match=r'\(B, n_bins, H, W\)'):
        confidence_from_bins(centres, probs[:, :1])
    with pytest.raises(TypeError, match='forward_outputs'):
        DepthWithConfidence(torch.nn.Identity())


def test_wrapper_returns_the_model_depth_and_its_confidence(tiny_model):
    wrapper = DepthWithConfidence(tiny_model).eval()
    assert wrapper.config is tiny_model.config
    image = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        depth, confidence = wrapper(image)
        outputs = tiny_model.forward_outputs(image)
    torch.testing.assert_close(depth, outputs.depth)
    torch.testing.assert_close(confidence,
                               confidence_from_bins(outputs.bin_centers, outputs.probs))
    assert confidence.shape == (1, 1, 96, 128)
    assert float(confidence.min()) >= 0.0 and float(confidence.max()) <= 1.0
    assert float(confidence.std()) > 0  # varies across the image


@pytest.mark.export
def test_wrapper_exports_to_onnx_with_two_named_outputs(tiny_model, tmp_path):
    import onnxruntime

    wrapper = DepthWithConfidence(tiny_model).eval()
    image = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(2))
    path = tmp_path / 'tiny_confidence.onnx'
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # TracerWarnings from transformers' shape checks
        torch.onnx.export(wrapper, (image,), str(path), input_names=['image'],
                          output_names=list(OUTPUT_NAMES), opset_version=17, dynamo=False)
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    assert [o.name for o in session.get_outputs()] == ['depth', 'confidence']
    depth, confidence = session.run(None, {'image': image.numpy()})
    with torch.no_grad():
        expected_depth, expected_confidence = wrapper(image)
    np.testing.assert_allclose(depth, expected_depth.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(confidence, expected_confidence.numpy(), rtol=1e-4, atol=1e-5)


def test_metric_spread_ranks_a_far_pixel_below_a_near_one_with_the_same_relative_spread():
    """The same mixture shape at 1 m and at 4 m: 'spread' (relative) rates both alike,
    'metric_spread' (metres) is less sure of the far pixel, whose absolute error is larger."""
    near = _bins([0.9, 1.1], [0.5, 0.5])
    far = _bins([3.6, 4.4], [0.5, 0.5])
    relative = [float(confidence_from_bins(*pixel, method='spread')) for pixel in (near, far)]
    metric = [float(confidence_from_bins(*pixel, method='metric_spread')) for pixel in (near, far)]
    assert relative[0] == pytest.approx(relative[1])
    assert metric == pytest.approx([1 / 1.1, 1 / 1.4])
