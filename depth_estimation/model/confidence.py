"""Per-pixel confidence from ZoeDepth's metric-bin distribution (torch, with a numpy mirror).

ZoeDepth's metric head does not regress depth directly: for every pixel it predicts
probabilities p_i over n adaptive bin centres c_i (metres) and returns the mean of that mixture,
d = sum_i p_i c_i. How the mass is spread around d is a free by-product that says how sure the
head is: a peaked distribution means the bins agree, a flat or bimodal one (depth edges,
reflective or textureless surfaces, scenes unlike the training data) means they do not.

Methods (all map to [0, 1], 1 = sure):
- 'spread':   1 / (1 + sigma / d), sigma^2 = sum_i p_i (c_i - d)^2 (the mixture's standard
              deviation relative to the depth, so near and far pixels are comparable).
- 'log_spread': 1 / (1 + sigma_log), sigma_log^2 = sum_i p_i (log c_i - log d)^2.
- 'metric_spread': 1 / (1 + sigma / 1 m): the mixture's standard deviation in metres, so it
              ranks absolute errors, which grow with the distance (chosen for the real model:
              docs/training.md).
- 'mass':     sum of p_i over the bins with |c_i - d| <= tolerance * d (probability that the
              depth lies within +-tolerance of the prediction).
- 'entropy':  1 - H(p) / log(n).
- 'max_prob': max_i p_i.

The default, 'spread', was chosen on held-out real frames (benchmarks/confidence.py,
docs/refinement.md): it ranked the errors left after scale alignment best and had the lowest
sparsification error of the two spread methods, within 0.02 of 'log_spread' on absolute errors.

`DepthWithConfidence(model)` wraps a `ZoeDepth` into an export-shaped module returning
(depth, confidence), so an exporter can trace it to the outputs named `OUTPUT_NAMES` without any
change to the model itself.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

METHODS = ('spread', 'log_spread', 'metric_spread', 'mass', 'entropy', 'max_prob')
DEFAULT_METHOD = 'spread'  # measured choice: see the module docstring and docs/refinement.md
DEFAULT_TOLERANCE = 0.1  # 'mass': +-10 % of the predicted depth
OUTPUT_NAMES = ('depth', 'confidence')
_EPS = 1e-6  # metres / probability floor: keeps logs and ratios finite


def _check(centers_shape: tuple[int, ...], probs_shape: tuple[int, ...], method: str,
           tolerance: float) -> None:
    if method not in METHODS:
        raise ValueError(f'unknown confidence method {method!r}; expected one of {METHODS}')
    if tuple(centers_shape) != tuple(probs_shape) or len(probs_shape) != 4:
        raise ValueError('bin centres and probabilities must both be (B, n_bins, H, W), got '
                         f'{tuple(centers_shape)} and {tuple(probs_shape)}')
    if not tolerance > 0:
        raise ValueError(f'tolerance must be positive, got {tolerance}')


def confidence_from_bins(bin_centers: torch.Tensor, probs: torch.Tensor,
                         depth: Optional[torch.Tensor] = None, method: str = DEFAULT_METHOD,
                         tolerance: float = DEFAULT_TOLERANCE) -> torch.Tensor:
    """Confidence (B, 1, H, W) in [0, 1] from bin centres and probabilities (B, n_bins, H, W).

    `depth` (B, 1, H, W) is the model's depth; when omitted it is recomputed as sum p_i c_i (what
    ZoeDepth returns). Only element-wise ops and reductions over the bin axis, so it exports to
    ONNX and runs in FP32 beside the metric head.
    """
    if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):  # shapes are static then
        _check(tuple(bin_centers.shape), tuple(probs.shape), method, tolerance)
    if depth is None:
        depth = torch.sum(probs * bin_centers, dim=1, keepdim=True)  # (B, 1, H, W)
    depth = depth.clamp_min(_EPS)
    if method in ('spread', 'metric_spread'):
        variance = torch.sum(probs * (bin_centers - depth) ** 2, dim=1, keepdim=True)
        sigma = torch.sqrt(variance + _EPS * _EPS)  # (B, 1, H, W) metres
        return 1.0 / (1.0 + (sigma / depth if method == 'spread' else sigma))
    if method == 'log_spread':
        log_ratio = torch.log(bin_centers.clamp_min(_EPS)) - torch.log(depth)  # (B, n, H, W)
        variance = torch.sum(probs * log_ratio ** 2, dim=1, keepdim=True)
        return 1.0 / (1.0 + torch.sqrt(variance + _EPS * _EPS))
    if method == 'mass':
        near = (torch.abs(bin_centers - depth) <= tolerance * depth).to(probs.dtype)
        return torch.sum(probs * near, dim=1, keepdim=True).clamp(0.0, 1.0)
    if method == 'entropy':
        n_bins = probs.shape[1]
        if n_bins < 2:
            return torch.ones_like(depth)
        entropy = -torch.sum(probs * torch.log(probs.clamp_min(_EPS)), dim=1, keepdim=True)
        return (1.0 - entropy / float(np.log(n_bins))).clamp(0.0, 1.0)
    return torch.amax(probs, dim=1, keepdim=True)  # 'max_prob'


def confidence_from_bins_numpy(bin_centers: np.ndarray, probs: np.ndarray,
                               depth: Optional[np.ndarray] = None,
                               method: str = DEFAULT_METHOD,
                               tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """numpy mirror of `confidence_from_bins` (same shapes), for runtimes that output the bins."""
    bin_centers = np.asarray(bin_centers, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    _check(bin_centers.shape, probs.shape, method, tolerance)
    if depth is None:
        depth = np.sum(probs * bin_centers, axis=1, keepdims=True)
    depth = np.maximum(np.asarray(depth, dtype=np.float64), _EPS)
    if method in ('spread', 'metric_spread'):
        variance = np.sum(probs * (bin_centers - depth) ** 2, axis=1, keepdims=True)
        sigma = np.sqrt(variance + _EPS * _EPS)  # metres
        result = 1.0 / (1.0 + (sigma / depth if method == 'spread' else sigma))
    elif method == 'log_spread':
        log_ratio = np.log(np.maximum(bin_centers, _EPS)) - np.log(depth)
        variance = np.sum(probs * log_ratio ** 2, axis=1, keepdims=True)
        result = 1.0 / (1.0 + np.sqrt(variance + _EPS * _EPS))
    elif method == 'mass':
        near = np.abs(bin_centers - depth) <= tolerance * depth
        result = np.clip(np.sum(probs * near, axis=1, keepdims=True), 0.0, 1.0)
    elif method == 'entropy':
        n_bins = probs.shape[1]
        if n_bins < 2:
            result = np.ones_like(depth)
        else:
            entropy = -np.sum(probs * np.log(np.maximum(probs, _EPS)), axis=1, keepdims=True)
            result = np.clip(1.0 - entropy / np.log(n_bins), 0.0, 1.0)
    else:
        result = np.max(probs, axis=1, keepdims=True)
    return result.astype(np.float32)


class DepthWithConfidence(nn.Module):
    """Export-shaped wrapper: normalised image (B, 3, H, W) -> (depth, confidence), (B, 1, H, W).

    Wraps a `ZoeDepth` (anything with `forward_outputs` returning depth, bin_centers and probs)
    without changing it; `config` is passed through so code that reads `model.config` (input
    size, normalisation) works on the wrapper too. Output names for an exporter: `OUTPUT_NAMES`.
    """

    def __init__(self, model: nn.Module, method: str = DEFAULT_METHOD,
                 tolerance: float = DEFAULT_TOLERANCE) -> None:
        super().__init__()
        _check((1, 2, 1, 1), (1, 2, 1, 1), method, tolerance)
        if not hasattr(model, 'forward_outputs'):
            raise TypeError(f'{type(model).__name__} has no forward_outputs(): the confidence '
                            'needs the bin centres and probabilities of a ZoeDepth model')
        self.model = model
        self.method = method
        self.tolerance = float(tolerance)

    @property
    def config(self):  # noqa: ANN201 - the wrapped model's ZoeDepthConfig
        return self.model.config

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.model.forward_outputs(image)
        if outputs.probs.shape[-2:] == outputs.depth.shape[-2:]:
            confidence = confidence_from_bins(outputs.bin_centers, outputs.probs, outputs.depth,
                                              self.method, self.tolerance)
        else:  # a head that runs below the output resolution (FastDepth core): its own depth
            confidence = confidence_from_bins(outputs.bin_centers, outputs.probs, None,
                                              self.method, self.tolerance)
            confidence = F.interpolate(confidence, size=outputs.depth.shape[-2:],
                                       mode='bilinear', align_corners=False)  # (B, 1, H, W)
        return outputs.depth, confidence
