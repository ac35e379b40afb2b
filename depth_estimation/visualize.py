"""Depth visualisation: colour maps and a labelled colour bar (RGB uint8; invalid depth black)."""

from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np

from depth_estimation.geometry import valid_depth_mask

DEFAULT_COLORMAP = 'turbo'
COLORMAPS = tuple(sorted(name[len('COLORMAP_'):].lower() for name in dir(cv2)
                         if name.startswith('COLORMAP_')))


def colormap_lut(colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """The named OpenCV colour map as an RGB uint8 lookup table (256, 3); index 0 is near."""
    code = getattr(cv2, f'COLORMAP_{colormap.upper()}', None)
    if code is None:
        raise ValueError(f'unknown colour map {colormap!r}; expected one of {COLORMAPS}')
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)  # (256, 1)
    bgr = cv2.applyColorMap(ramp, code)  # (256, 1, 3)
    return np.ascontiguousarray(bgr[:, 0, ::-1])  # (256, 3) RGB


def check_range(min_depth: float, max_depth: float) -> None:
    """ValueError unless min_depth < max_depth, both finite."""
    if not (math.isfinite(min_depth) and math.isfinite(max_depth) and min_depth < max_depth):
        raise ValueError(f'depth range must be finite with min < max, got [{min_depth}, '
                         f'{max_depth}]')


def auto_range(depth: np.ndarray, low_percentile: float = 2.0,
               high_percentile: float = 98.0) -> Optional[tuple[float, float]]:
    """Display range (metres) of the valid depth: percentiles, widened if flat; None if none."""
    valid = np.asarray(depth)[valid_depth_mask(depth)]  # (N,) metres
    if valid.size == 0:
        return None
    low, high = (float(v) for v in np.percentile(valid, [low_percentile, high_percentile]))
    if high - low < 1e-6:  # flat depth: widen to a visible span around it
        half = max(1e-3, 0.05 * abs(low))
        low, high = max(0.0, low - half), high + half
    return low, high


def colorize_depth(depth: np.ndarray, min_depth: float, max_depth: float,
                   colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """Float depth (H, W) metres -> RGB uint8 (H, W, 3), linear from min_depth to max_depth."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'expected depth of shape (H, W), got {depth.shape}')
    check_range(min_depth, max_depth)
    lut = colormap_lut(colormap)  # (256, 3)
    valid = valid_depth_mask(depth)  # (H, W)
    scaled = (np.where(valid, depth, min_depth).astype(np.float32) - np.float32(min_depth)) \
        * np.float32(255.0 / (max_depth - min_depth))  # (H, W) in colour-map steps
    index = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)  # (H, W)
    rgb = lut[index]  # (H, W, 3)
    rgb[~valid] = 0
    return rgb


def nice_ticks(min_value: float, max_value: float, max_ticks: int) -> np.ndarray:
    """Round tick values (1, 2 or 5 times a power of ten apart) inside [min_value, max_value]."""
    check_range(min_value, max_value)
    max_ticks = max(2, int(max_ticks))
    raw_step = (max_value - min_value) / (max_ticks - 1)
    magnitude = 10.0 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1.0, 2.0, 5.0, 10.0) if m * magnitude >= raw_step)
    first = math.ceil(min_value / step - 1e-9) * step
    ticks = np.arange(first, max_value + step * 1e-6, step)  # (T,)
    return ticks[(ticks >= min_value - step * 1e-6) & (ticks <= max_value + step * 1e-6)]


def format_ticks(ticks: np.ndarray) -> list[str]:
    """Tick labels with one number of decimals, as few as show every tick exactly (at most 3)."""
    for decimals in range(4):
        if np.allclose(np.round(ticks, decimals), ticks, rtol=0, atol=1e-9):
            break
    return [f'{float(value):.{decimals}f}' for value in ticks]


def add_colorbar(image: np.ndarray, min_depth: float, max_depth: float,
                 colormap: str = DEFAULT_COLORMAP, title: str = 'depth [m]') -> np.ndarray:
    """A new image: `image` (H, W, 3) uint8 with a colour bar in metres on its right."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}')
    check_range(min_depth, max_depth)
    height = image.shape[0]
    font = cv2.FONT_HERSHEY_SIMPLEX
    font_scale = float(np.clip(height / 960.0, 0.3, 1.2))
    thickness = 1 if font_scale < 0.8 else 2
    (_, text_height), baseline = cv2.getTextSize('0', font, font_scale, thickness)
    margin = max(2, int(round(text_height * 0.8)))
    title_height = text_height + baseline + margin
    bar_top = min(margin + title_height, max(0, height // 3))
    bar_bottom = max(bar_top + 1, height - margin - text_height // 2 - 1)  # inclusive
    bar_height = bar_bottom - bar_top + 1
    bar_width = max(6, int(round(height * 0.04)))

    max_ticks = max(2, min(8, bar_height // max(1, 3 * text_height)))
    ticks = nice_ticks(min_depth, max_depth, max_ticks)
    if ticks.size < 2:
        ticks = np.array([min_depth, max_depth])
    labels = format_ticks(ticks)
    label_width = max(cv2.getTextSize(s, font, font_scale, thickness)[0][0] for s in labels)
    title_width = cv2.getTextSize(title, font, font_scale, thickness)[0][0]
    tick_length = max(2, bar_width // 3)
    panel_width = max(margin + bar_width + tick_length + margin // 2 + label_width + margin,
                      title_width + 2 * margin)
    panel = np.zeros((height, panel_width, 3), dtype=np.uint8)  # black background

    # Bar: row r shows the depth at fraction (bar_bottom - r) / (bar_height - 1) of the range.
    lut = colormap_lut(colormap)  # (256, 3)
    fractions = np.linspace(1.0, 0.0, bar_height) if bar_height > 1 else np.zeros(1)  # (B,)
    colours = lut[np.clip(np.rint(fractions * 255), 0, 255).astype(np.uint8)]  # (B, 3)
    bar_left = margin
    panel[bar_top:bar_bottom + 1, bar_left:bar_left + bar_width] = colours[:, np.newaxis, :]

    white = (255, 255, 255)
    cv2.putText(panel, title, (margin, margin + text_height), font, font_scale, white, thickness,
                cv2.LINE_AA)
    bar_right = bar_left + bar_width
    for value, label in zip(ticks, labels):
        fraction = (float(value) - min_depth) / (max_depth - min_depth)
        row = int(round(bar_bottom - fraction * (bar_height - 1)))
        cv2.line(panel, (bar_right, row), (bar_right + tick_length - 1, row), white, 1)
        cv2.putText(panel, label, (bar_right + tick_length + margin // 2, row + text_height // 2),
                    font, font_scale, white, thickness, cv2.LINE_AA)
    return np.concatenate([image, panel], axis=1)


def colorize_with_colorbar(depth: np.ndarray, min_depth: float, max_depth: float,
                           colormap: str = DEFAULT_COLORMAP, title: str = 'depth [m]'
                           ) -> np.ndarray:
    """Float depth (H, W) -> RGB uint8 (H, W + bar, 3): `colorize_depth` with `add_colorbar`."""
    coloured = colorize_depth(depth, min_depth, max_depth, colormap)  # (H, W, 3)
    return add_colorbar(coloured, min_depth, max_depth, colormap, title)
