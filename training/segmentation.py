"""Segmentation distillation head of the seed system (trained only; never exported).

A small head reads the finest fused decoder map of ZoeDepth's DPT neck and predicts semantic
labels, supervised by dataset labels or a teacher's precomputed label maps. Its gradient shapes
the shared decoder features (the distillation); the head itself is dropped at export, so the
exported model is exactly the plain `ZoeDepth`.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F


class SegmentationHead(nn.Module):
    """conv3x3 -> BatchNorm -> ReLU -> conv1x1: (B, C, h, w) features -> (B, K, H, W) logits."""

    def __init__(self, in_channels: int, num_classes: int,
                 hidden_channels: Optional[int] = None) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f'segmentation needs at least 2 classes, got {num_classes}')
        hidden = hidden_channels or in_channels
        self.num_classes = num_classes
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, num_classes, kernel_size=1),
        )

    def forward(self, features: torch.Tensor,
                size: Optional[tuple[int, int]] = None) -> torch.Tensor:
        logits = self.block(features)  # (B, K, h, w)
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)
        return logits
