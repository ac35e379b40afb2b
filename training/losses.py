"""Training losses: ZoeDepth's SILog, MiDaS' scale-and-shift-invariant + gradient matching, and the
focal + dice losses of the segmentation distillation head.

All losses compute in FP32 with autocast disabled: ZoeDepth notes that AMP makes the log loss NaN,
and the sums over millions of pixels lose precision in half floats.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F


def _autocast_off(tensor: torch.Tensor) -> torch.autocast:
    return torch.autocast(device_type=tensor.device.type, enabled=False)


def _zero(reference: torch.Tensor) -> torch.Tensor:
    """A zero loss that stays in the graph (DDP needs every rank to run the same backward)."""
    return reference.sum() * 0.0


def resize_like(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Bilinear (align_corners=True) resize of (B, C, h, w) to the target's (H, W), as ZoeDepth."""
    if prediction.shape[-2:] == target.shape[-2:]:
        return prediction
    return F.interpolate(prediction, size=target.shape[-2:], mode='bilinear', align_corners=True)


class SILogLoss(nn.Module):
    """Scale-invariant log loss in ZoeDepth's form (zoedepth/trainers/loss.py, from AdaBins).

    With g_i = log(d_i + 1e-7) - log(d*_i + 1e-7) over the valid pixels of the whole batch:

        Dg = Var(g) + beta * mean(g)^2        (Var unbiased, as torch.var)
        L  = 10 * sqrt(Dg)                    (beta = 0.15)

    The prediction is resized to the target (bilinear, align_corners=True) first. The only
    departure from the official code: fewer than two valid pixels give a zero loss instead of NaN
    (which stops the official trainer).
    """

    def __init__(self, beta: float = 0.15, eps: float = 1e-7) -> None:
        super().__init__()
        self.beta = beta
        self.eps = eps

    def forward(self, prediction: torch.Tensor, target: torch.Tensor,
                mask: Optional[torch.Tensor] = None, interpolate: bool = True) -> torch.Tensor:
        """prediction (B, 1, h, w) metres; target (B, 1, H, W) or (B, H, W); mask bool like target.
        """
        if interpolate:
            prediction = resize_like(prediction, target)
        if target.ndim == 3:
            target = target.unsqueeze(1)
        if mask is not None:
            if mask.ndim == 3:
                mask = mask.unsqueeze(1)
            prediction_valid = prediction[mask]
            target_valid = target[mask]
        else:
            prediction_valid, target_valid = prediction.reshape(-1), target.reshape(-1)
        if prediction_valid.numel() < 2:
            return _zero(prediction)
        with _autocast_off(prediction):
            g = (torch.log(prediction_valid.float() + self.eps)
                 - torch.log(target_valid.float() + self.eps))
            dg = torch.var(g) + self.beta * torch.pow(torch.mean(g), 2)
            return 10.0 * torch.sqrt(dg)


# --- MiDaS: scale-and-shift-invariant loss with multi-scale gradient matching --------------------

def compute_scale_and_shift(prediction: torch.Tensor, target: torch.Tensor,
                            mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image least squares (s, t) minimising sum mask * (s * prediction + t - target)^2.

    (B, H, W) inputs, mask float; images whose 2x2 system is singular get s = t = 0.
    """
    a_00 = torch.sum(mask * prediction * prediction, (1, 2))
    a_01 = torch.sum(mask * prediction, (1, 2))
    a_11 = torch.sum(mask, (1, 2))
    b_0 = torch.sum(mask * prediction * target, (1, 2))
    b_1 = torch.sum(mask * target, (1, 2))
    det = a_00 * a_11 - a_01 * a_01
    valid = det > 0
    safe_det = torch.where(valid, det, torch.ones_like(det))
    scale = torch.where(valid, (a_11 * b_0 - a_01 * b_1) / safe_det, torch.zeros_like(det))
    shift = torch.where(valid, (-a_01 * b_0 + a_00 * b_1) / safe_det, torch.zeros_like(det))
    return scale, shift


def _gradient_loss(prediction: torch.Tensor, target: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
    """sum |grad_x(R)| + |grad_y(R)| over pixel pairs both valid, R = mask * (pred - target),
    divided by the number of valid pixels of the batch (MiDaS' batch-based reduction)."""
    valid_count = torch.sum(mask)
    difference = mask * (prediction - target)
    grad_x = torch.abs(difference[:, :, 1:] - difference[:, :, :-1])
    grad_x = grad_x * (mask[:, :, 1:] * mask[:, :, :-1])
    grad_y = torch.abs(difference[:, 1:, :] - difference[:, :-1, :])
    grad_y = grad_y * (mask[:, 1:, :] * mask[:, :-1, :])
    total = torch.sum(grad_x) + torch.sum(grad_y)
    if valid_count == 0:
        return _zero(prediction)
    return total / valid_count


class ScaleShiftInvariantLoss(nn.Module):
    """MiDaS' loss for relative-depth data (disparity known up to scale and shift).

    The prediction is aligned to the target per image by least squares (s, t), then

        L = sum mask * (s * p + t - d)^2 / (2 * N)  +  alpha * sum_k G(scale 2^k)

    where G is the gradient matching term on every 2^k-th pixel (k < scales) and N the number of
    valid pixels of the batch (the MiDaS authors' published loss, batch-based reduction;
    alpha = 0.5, 4 scales). Inputs are disparities (inverse depth), as MiDaS trains on.
    """

    def __init__(self, alpha: float = 0.5, scales: int = 4) -> None:
        super().__init__()
        self.alpha = alpha
        self.scales = scales

    def forward(self, prediction: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """prediction, target (B, 1, H, W) or (B, H, W) disparities; mask: bool, same shape."""
        if prediction.ndim == 4:
            prediction, target, mask = prediction[:, 0], target[:, 0], mask[:, 0]
        with _autocast_off(prediction):
            prediction, target = prediction.float(), target.float()
            mask_float = mask.float()
            scale, shift = compute_scale_and_shift(prediction, target, mask_float)
            aligned = scale.view(-1, 1, 1) * prediction + shift.view(-1, 1, 1)
            valid_count = torch.sum(mask_float)
            if valid_count == 0:
                return _zero(prediction)
            residual = aligned - target
            total = torch.sum(mask_float * residual * residual) / (2.0 * valid_count)
            if self.alpha > 0:
                for level in range(self.scales):
                    step = 2 ** level
                    total = total + self.alpha * _gradient_loss(
                        aligned[:, ::step, ::step], target[:, ::step, ::step],
                        mask_float[:, ::step, ::step])
            return total


# --- segmentation distillation -----------------------------------------------------------------

def _valid_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Labels outside [0, num_classes) are ignored (-1, 255 and 65535 are the usual markers)."""
    return (labels >= 0) & (labels < num_classes)


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): mean over valid pixels of -(1 - p_t)^gamma * log(p_t).

    logits (B, K, H, W), labels (B, H, W) int64; labels outside [0, K) are ignored.
    """
    num_classes = logits.shape[1]
    valid = _valid_labels(labels, num_classes)
    if not bool(valid.any()):
        return _zero(logits)
    with _autocast_off(logits):
        log_probs = F.log_softmax(logits.float(), dim=1)  # (B, K, H, W)
        safe_labels = torch.where(valid, labels, torch.zeros_like(labels))
        log_pt = log_probs.gather(1, safe_labels.unsqueeze(1)).squeeze(1)[valid]  # (N,)
        pt = log_pt.exp()
        return torch.mean(-torch.pow(1.0 - pt, gamma) * log_pt)


def dice_loss(logits: torch.Tensor, labels: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft multi-class dice loss over the valid pixels of the batch.

    dice_k = (2 * sum p_k y_k + smooth) / (sum p_k + sum y_k + smooth) with p = softmax(logits)
    and y the one-hot labels; the loss is 1 - the mean of dice_k over the classes present in the
    labels.
    """
    num_classes = logits.shape[1]
    valid = _valid_labels(labels, num_classes)
    if not bool(valid.any()):
        return _zero(logits)
    with _autocast_off(logits):
        probs = torch.softmax(logits.float(), dim=1).permute(0, 2, 3, 1)[valid]  # (N, K)
        one_hot = F.one_hot(labels[valid], num_classes).float()  # (N, K)
        intersection = torch.sum(probs * one_hot, dim=0)
        cardinality = torch.sum(probs, dim=0) + torch.sum(one_hot, dim=0)
        dice = (2.0 * intersection + smooth) / (cardinality + smooth)  # (K,)
        present = torch.sum(one_hot, dim=0) > 0
        return 1.0 - dice[present].mean()


class FocalDiceLoss(nn.Module):
    """L_seg = focal_weight * focal + dice_weight * dice, the distillation loss of the seed system.
    """

    def __init__(self, gamma: float = 2.0, focal_weight: float = 1.0, dice_weight: float = 1.0,
                 smooth: float = 1.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.focal_weight = focal_weight
        self.dice_weight = dice_weight
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.shape[-2:] != labels.shape[-2:]:
            logits = F.interpolate(logits, size=labels.shape[-2:], mode='bilinear',
                                   align_corners=False)
        return (self.focal_weight * focal_loss(logits, labels, self.gamma)
                + self.dice_weight * dice_loss(logits, labels, self.smooth))
