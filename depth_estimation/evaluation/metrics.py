"""Depth metrics that reproduce ZoeDepth's `compute_metrics` / `compute_errors` exactly (numpy).

The official function (isl-org/ZoeDepth, zoedepth/utils/misc.py) is the reference the papers'
NYU / KITTI / iBims numbers come from; `../shared/oracle/metrics_reference.*` holds its outputs and
test/test_metrics.py checks every setting there. The pipeline, in the official order:

1. If the prediction's size differs from the ground truth's, resize it with torch's
   `F.interpolate(mode='bilinear', align_corners=True)` semantics (`resize_bilinear_align_corners`
   below reproduces torch's CPU kernel bit for bit, including how NaN / Inf spread).
2. Clip the prediction: below min -> min, above max -> max, +Inf -> max, NaN -> min (-Inf is
   below min). Unlike upstream, the caller's array is not modified.
3. Valid pixels: min_depth_eval < gt < max_depth_eval (strict: gt == max is excluded).
4. Crop: Garg (checked first), else Eigen ('kitti' rows/cols as fractions of the size; any other
   dataset the fixed NYU window [45:471, 41:601]). With neither crop upstream raises
   UnboundLocalError; here that means "no crop" (every pixel may count).
5. `compute_errors(gt[valid], pred[valid])` in the inputs' dtype (float32 for our data), with
   numpy's reductions, so the numbers are the official ones to the last bit for float32 inputs.

Aggregation over a dataset is `RunningAverageDict` as in the official evaluate.py (an incremental
mean in the metrics' own dtype), optionally rounded to 3 decimals as evaluate.py prints them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

METRIC_KEYS = ('a1', 'a2', 'a3', 'abs_rel', 'rmse', 'log_10', 'rmse_log', 'silog', 'sq_rel')
CROPS = ('eigen', 'garg')
NYU_EIGEN_WINDOW = (45, 471, 41, 601)  # rows 45:471, columns 41:601 of a 480x640 frame


# --- resize --------------------------------------------------------------------------------------

Taps = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _linear_taps(in_size: int, out_size: int) -> Taps:
    """Source indices and weights along one axis, as torch's `compute_source_index_and_lambda`
    (align_corners=True): float32 scale (in - 1) / (out - 1), source = scale * i in float32,
    i0 = floor, i1 = i0 + 1 except at the last input pixel, w1 = source - i0, w0 = 1 - w1.
    An axis whose size does not change is copied: i1 = i0 with weights (1, 0)."""
    if in_size == out_size:
        index = np.arange(out_size)
        return index, index.copy(), np.ones(out_size, np.float32), np.zeros(out_size, np.float32)
    scale = (np.float32(in_size - 1) / np.float32(out_size - 1)) if out_size > 1 \
        else np.float32(0.0)
    source = scale * np.arange(out_size, dtype=np.float32)  # float32 products
    index0 = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    weight1 = np.clip(source - index0.astype(np.float32), np.float32(0.0),
                      np.float32(1.0)).astype(np.float32)
    index1 = index0 + (index0 < in_size - 1)
    return index0, index1, (np.float32(1.0) - weight1).astype(np.float32), weight1


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 a * b + c with one rounding (the product of two float32 is exact in float64)."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def resize_bilinear_align_corners(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 -> (H, W) float32, as torch.nn.functional.interpolate(x[None, None], size,
    mode='bilinear', align_corners=True) computes it on the CPU.

    Torch's kernel interpolates rows first, then columns, with fused multiply-adds (its AVX2
    build): out = fma(fma(x00, w0, x01 * w1), h0, fma(x10, w0, x11 * w1) * h1). Every tap is
    multiplied even when its weight is 0, so NaN spreads to the neighbours and Inf * 0 gives NaN,
    exactly as in torch. Checked bit for bit against torch in test/test_metrics.py.
    """
    source = np.asarray(image)
    if source.ndim != 2:
        raise ValueError(f'expected a (h, w) array, got shape {source.shape}')
    source = source.astype(np.float32, copy=False)
    height, width = int(size[0]), int(size[1])
    if height <= 0 or width <= 0:
        raise ValueError(f'output size must be positive, got {size}')
    r0, r1, h0, h1 = _linear_taps(source.shape[0], height)
    c0, c1, w0, w1 = _linear_taps(source.shape[1], width)
    rows0, rows1 = source[r0], source[r1]  # (H, w) each
    with np.errstate(invalid='ignore', over='ignore'):
        top = _fma(rows0[:, c0], w0, rows0[:, c1] * w1)  # (H, W)
        bottom = _fma(rows1[:, c0], w0, rows1[:, c1] * w1)  # (H, W)
        return _fma(top, h0[:, np.newaxis], bottom * h1[:, np.newaxis])


# --- masks and errors ----------------------------------------------------------------------------

def eval_crop_mask(shape: tuple[int, int], crop: Optional[str],
                   dataset: str = 'nyu') -> np.ndarray:
    """(H, W) bool: the pixels a crop keeps ('garg', 'eigen' or None = all).

    Garg: rows int(0.40810811 H):int(0.99189189 H), cols int(0.03594771 W):int(0.96405229 W).
    Eigen on 'kitti': rows int(0.3324324 H):int(0.91351351 H), cols int(0.0359477 W):
    int(0.96405229 W). Eigen on any other dataset: the fixed window [45:471, 41:601] (meant for
    480x640; upstream applies it to any size, and so does this).
    """
    height, width = shape
    mask = np.zeros((height, width), dtype=bool)
    if crop is None:
        mask[:] = True
    elif crop == 'garg':
        mask[int(0.40810811 * height):int(0.99189189 * height),
             int(0.03594771 * width):int(0.96405229 * width)] = True
    elif crop == 'eigen':
        if dataset == 'kitti':
            mask[int(0.3324324 * height):int(0.91351351 * height),
                 int(0.0359477 * width):int(0.96405229 * width)] = True
        else:
            top, bottom, left, right = NYU_EIGEN_WINDOW
            mask[top:bottom, left:right] = True
    else:
        raise ValueError(f'crop must be one of {CROPS} or None, got {crop!r}')
    return mask


def compute_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """The nine metrics of valid pixels, formula for formula as the official compute_errors.

    gt and pred are 1-D arrays of the same length (positive). a1..a3 are float64 fractions;
    the others keep the inputs' dtype. silog = 100 * sqrt(mean(e^2) - mean(e)^2), e = log(pred)
    - log(gt); log_10 = mean |log10 gt - log10 pred|.
    """
    thresh = np.maximum((gt / pred), (pred / gt))
    a1 = (thresh < 1.25).mean()
    a2 = (thresh < 1.25 ** 2).mean()
    a3 = (thresh < 1.25 ** 3).mean()
    abs_rel = np.mean(np.abs(gt - pred) / gt)
    sq_rel = np.mean(((gt - pred) ** 2) / gt)
    rmse = np.sqrt(((gt - pred) ** 2).mean())
    rmse_log = np.sqrt(((np.log(gt) - np.log(pred)) ** 2).mean())
    err = np.log(pred) - np.log(gt)
    silog = np.sqrt(np.mean(err ** 2) - np.mean(err) ** 2) * 100
    log_10 = (np.abs(np.log10(gt) - np.log10(pred))).mean()
    return dict(a1=a1, a2=a2, a3=a3, abs_rel=abs_rel, rmse=rmse, log_10=log_10,
                rmse_log=rmse_log, silog=silog, sq_rel=sq_rel)


def _plane(array: Any, what: str) -> np.ndarray:
    plane = np.asarray(array)
    if plane.ndim > 2:
        plane = plane.reshape(plane.shape[-2:]) if int(np.prod(plane.shape[:-2])) == 1 \
            else plane
    if plane.ndim != 2:
        raise ValueError(f'{what} must be one (H, W) map (or (1, 1, H, W)), got {plane.shape}')
    return plane


def prepare(gt: Any, pred: Any, interpolate: bool = True, crop: Optional[str] = 'eigen',
            dataset: str = 'nyu', min_depth_eval: float = 0.1,
            max_depth_eval: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-4 of the module docstring: (gt (H, W), clipped pred (H, W), valid mask (H, W))."""
    gt_plane = _plane(gt, 'gt')
    pred_plane = _plane(pred, 'pred')
    if pred_plane.shape != gt_plane.shape:
        if not interpolate:
            raise ValueError(f'pred {pred_plane.shape} and gt {gt_plane.shape} differ and '
                             'interpolate=False')
        pred_plane = resize_bilinear_align_corners(pred_plane, gt_plane.shape)
    pred_plane = np.array(pred_plane, copy=True)  # never clip the caller's array
    pred_plane[pred_plane < min_depth_eval] = min_depth_eval
    pred_plane[pred_plane > max_depth_eval] = max_depth_eval
    pred_plane[np.isinf(pred_plane)] = max_depth_eval
    pred_plane[np.isnan(pred_plane)] = min_depth_eval
    with np.errstate(invalid='ignore'):
        valid = np.logical_and(gt_plane > min_depth_eval, gt_plane < max_depth_eval)
    valid &= eval_crop_mask(gt_plane.shape, crop, dataset)
    return gt_plane, pred_plane, valid


def compute_metrics(gt: Any, pred: Any, interpolate: bool = True, garg_crop: bool = False,
                    eigen_crop: bool = True, dataset: str = 'nyu', min_depth_eval: float = 0.1,
                    max_depth_eval: float = 10.0, **kwargs: Any) -> dict[str, Any]:
    """The official `compute_metrics` (same arguments and defaults; see the module docstring).

    `config=` (any object or mapping with garg_crop, eigen_crop, min_depth_eval,
    max_depth_eval) overrides those four like upstream; like upstream it never sets `dataset`.
    Returns the nine metrics; with no valid pixel they are NaN (as numpy's mean of nothing).
    """
    if 'config' in kwargs:
        config = kwargs['config']
        get = config.get if isinstance(config, Mapping) else (lambda k: getattr(config, k))
        garg_crop, eigen_crop = get('garg_crop'), get('eigen_crop')
        min_depth_eval, max_depth_eval = get('min_depth_eval'), get('max_depth_eval')
    crop = 'garg' if garg_crop else ('eigen' if eigen_crop else None)
    gt_plane, pred_plane, valid = prepare(gt, pred, interpolate, crop, dataset, min_depth_eval,
                                          max_depth_eval)
    if not valid.any():
        return {key: float('nan') for key in METRIC_KEYS}
    return compute_errors(gt_plane[valid], pred_plane[valid])


# --- aggregation ---------------------------------------------------------------------------------

def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally long arrays (average ranks for ties)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..N-1 of `values` (N,), tied values sharing the average of their ranks."""
    order = np.argsort(values, kind='mergesort')
    sorted_values = values[order]
    new_value = np.r_[True, sorted_values[1:] != sorted_values[:-1]]  # (N,) a tie group starts
    starts = np.flatnonzero(new_value)  # (G,) first sorted position of each group
    ends = np.r_[starts[1:], values.size]  # (G,) one past its last
    group = np.cumsum(new_value) - 1  # (N,) group of each sorted position
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = (0.5 * (starts + ends - 1))[group]
    return ranks


def frame_scores(gt: np.ndarray, pred: np.ndarray, confidence: Optional[np.ndarray] = None,
                 crop: Optional[str] = None, min_depth_eval: float = 1e-3,
                 max_depth_eval: float = 10.0) -> dict[str, float]:
    """One frame of a held-out comparison: REL, delta1, RMSE (`compute_metrics`), REL after
    scaling the prediction by median(gt) / median(pred) over the scored pixels, and, with a
    confidence map (pixel-aligned with `pred`), the Spearman correlation between confidence and
    absolute error over those pixels (negative: confident pixels err less).

    gt (H, W) metres; pred and confidence (H, W) or smaller (resized like the metrics do);
    crop: None, 'eigen' or 'garg'.
    """
    gt_plane, pred_plane, valid = prepare(gt, pred, crop=crop, min_depth_eval=min_depth_eval,
                                          max_depth_eval=max_depth_eval)
    metrics = compute_errors(gt_plane[valid], pred_plane[valid])
    scale = np.median(gt_plane[valid]) / np.median(pred_plane[valid])
    scaled = compute_errors(gt_plane[valid], np.clip(pred_plane[valid] * scale, min_depth_eval,
                                                     max_depth_eval))
    scores = {'abs_rel': float(metrics['abs_rel']), 'a1': float(metrics['a1']),
              'rmse': float(metrics['rmse']), 'abs_rel_median_scaled': float(scaled['abs_rel'])}
    if confidence is not None:
        confidence = _plane(confidence, 'confidence')
        if confidence.shape != gt_plane.shape:
            confidence = resize_bilinear_align_corners(confidence, gt_plane.shape)
        scores['confidence_spearman'] = spearman(
            confidence[valid], np.abs(pred_plane[valid] - gt_plane[valid]))
    return scores


class RunningAverage:
    """Incremental mean avg = (value + count * avg) / (count + 1), in the values' own type."""

    def __init__(self) -> None:
        self.avg: Any = 0
        self.count = 0

    def append(self, value: Any) -> None:
        self.avg = (value + self.count * self.avg) / (self.count + 1)
        self.count += 1

    def get_value(self) -> Any:
        return self.avg


class RunningAverageDict:
    """A RunningAverage per key, as the official evaluate.py aggregates per-image metrics."""

    def __init__(self) -> None:
        self._dict: Optional[dict[str, RunningAverage]] = None

    def update(self, new_dict: Optional[Mapping[str, Any]]) -> None:
        if new_dict is None:
            return
        if self._dict is None:
            self._dict = {key: RunningAverage() for key in new_dict}
        for key, value in new_dict.items():
            self._dict[key].append(value)

    def get_value(self) -> Optional[dict[str, Any]]:
        if self._dict is None:
            return None
        return {key: average.get_value() for key, average in self._dict.items()}

    @property
    def count(self) -> int:
        return 0 if not self._dict else next(iter(self._dict.values())).count


def round_metrics(metrics: Mapping[str, Any], digits: int = 3) -> dict[str, float]:
    """As evaluate.py prints them: round(value, 3) per metric."""
    return {key: round(float(value), digits) for key, value in metrics.items()}


__all__ = ['CROPS', 'METRIC_KEYS', 'RunningAverage', 'RunningAverageDict', 'compute_errors',
           'compute_metrics', 'eval_crop_mask', 'prepare', 'resize_bilinear_align_corners',
           'round_metrics']
