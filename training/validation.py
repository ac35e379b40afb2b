"""Validation metrics during training: depth_estimation.evaluation's ZoeDepth metrics per image."""

from __future__ import annotations

import math
from typing import Optional

import torch

from depth_estimation.evaluation.metrics import compute_metrics


def depth_metrics(target: torch.Tensor, prediction: torch.Tensor, min_depth: float,
                  max_depth: float, eval_crop: Optional[str] = None,
                  dataset: str = 'nyu') -> dict[str, float]:
    """The nine metrics of one (H, W) prediction against its ground truth (metres), computed as
    the official ZoeDepth `compute_metrics` does (clip, min < gt < max, Eigen / Garg crop).

    `dataset` only matters for the Eigen crop ('kitti' uses fractions of the size). Images without
    a valid pixel give {} (they are left out of the average).
    """
    metrics = compute_metrics(
        target.detach().float().cpu().numpy(), prediction.detach().float().cpu().numpy(),
        interpolate=True, garg_crop=eval_crop == 'garg', eigen_crop=eval_crop == 'eigen',
        dataset=dataset, min_depth_eval=min_depth, max_depth_eval=max_depth)
    values = {name: float(value) for name, value in metrics.items()}
    if any(math.isnan(value) for value in values.values()):
        return {}
    return values
