"""Loss and metric curves as a PNG (OpenCV only: no plotting library needed on a robot or CI)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from depth_estimation.visualize import format_ticks, nice_ticks

Series = Sequence[tuple[float, float]]  # (step, value)
PANEL_WIDTH, PANEL_HEIGHT = 720, 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 80, 20, 34, 40
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))  # RGB


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` values (shorter at the start)."""
    if window <= 1 or values.size == 0:
        return values
    cumulative = np.cumsum(np.insert(values.astype(np.float64), 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    starts = np.arange(1, values.size + 1) - counts
    return (cumulative[1:] - cumulative[starts]) / counts


def _tick_labels(ticks: np.ndarray) -> list[str]:
    """Plain decimals, or scientific notation for small magnitudes (learning rates)."""
    largest = float(np.max(np.abs(ticks))) if ticks.size else 0.0
    if 0 < largest < 0.01:
        return [f'{float(value):.1e}' for value in ticks]
    return format_ticks(ticks)


def _range(values: np.ndarray) -> tuple[float, float]:
    low, high = float(np.min(values)), float(np.max(values))
    if not high > low:
        pad = abs(low) * 0.05 + 1e-3
        return low - pad, high + pad
    pad = (high - low) * 0.05
    return low - pad, high + pad


def _panel(title: str, curves: dict[str, Series], smooth: int = 1) -> np.ndarray:
    """One line chart (RGB uint8) with axes, ticks and a legend."""
    canvas = np.full((PANEL_HEIGHT, PANEL_WIDTH, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(canvas, title, (MARGIN_LEFT, 22), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    data = {name: np.asarray(points, dtype=np.float64).reshape(-1, 2)
            for name, points in curves.items() if len(points)}
    if not data:
        cv2.putText(canvas, 'no data', (PANEL_WIDTH // 2 - 40, PANEL_HEIGHT // 2), font, 0.6,
                    (120, 120, 120), 1, cv2.LINE_AA)
        return canvas
    steps = np.concatenate([d[:, 0] for d in data.values()])
    values = np.concatenate([d[:, 1] for d in data.values()])
    finite = np.isfinite(values)
    if not finite.any():
        return canvas
    x_low, x_high = float(steps.min()), float(max(steps.max(), steps.min() + 1))
    y_low, y_high = _range(values[finite])
    left, right = MARGIN_LEFT, PANEL_WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, PANEL_HEIGHT - MARGIN_BOTTOM

    def to_pixel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        px = left + (x - x_low) / (x_high - x_low) * (right - left)
        py = bottom - (y - y_low) / (y_high - y_low) * (bottom - top)
        return np.stack([px, py], axis=1).round().astype(np.int32)

    cv2.rectangle(canvas, (left, top), (right, bottom), (0, 0, 0), 1)
    y_ticks = nice_ticks(y_low, y_high, 6)
    for tick, label in zip(y_ticks, _tick_labels(y_ticks)):
        y = int(round(bottom - (tick - y_low) / (y_high - y_low) * (bottom - top)))
        cv2.line(canvas, (left, y), (right, y), (225, 225, 225), 1)
        cv2.putText(canvas, label, (4, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    x_ticks = nice_ticks(x_low, x_high, 8)
    for tick, label in zip(x_ticks, format_ticks(x_ticks)):
        x = int(round(left + (tick - x_low) / (x_high - x_low) * (right - left)))
        cv2.line(canvas, (x, bottom), (x, bottom + 4), (0, 0, 0), 1)
        cv2.putText(canvas, label, (x - 12, bottom + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(canvas, 'step', (right - 30, PANEL_HEIGHT - 6), font, 0.4, (0, 0, 0), 1,
                cv2.LINE_AA)
    for index, (name, points) in enumerate(data.items()):
        colour = COLOURS[index % len(COLOURS)]
        keep = np.isfinite(points[:, 1])
        x, y = points[keep, 0], points[keep, 1]
        if smooth > 1 and len(y) > smooth:
            raw = to_pixel(x, y)
            light = tuple(int(c + (255 - c) * 0.65) for c in colour)
            cv2.polylines(canvas, [raw.reshape(-1, 1, 2)], False, light, 1, cv2.LINE_AA)
            y = moving_average(y, smooth)
        pixels = to_pixel(x, y)
        if len(pixels) == 1:
            cv2.circle(canvas, tuple(int(v) for v in pixels[0]), 3, colour, -1, cv2.LINE_AA)
        else:
            cv2.polylines(canvas, [pixels.reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA)
            for point in pixels if len(pixels) <= 20 else ():
                cv2.circle(canvas, tuple(int(v) for v in point), 3, colour, -1, cv2.LINE_AA)
        legend_y = top + 16 + 16 * index
        cv2.line(canvas, (right - 190, legend_y - 4), (right - 170, legend_y - 4), colour, 2)
        cv2.putText(canvas, name, (right - 165, legend_y), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def plot_curves(panels: dict[str, dict[str, Series]], path: Union[str, Path],
                smooth: Optional[dict[str, int]] = None) -> Path:
    """Write stacked line charts, one per panel title ({curve name: [(step, value)]}), as a PNG.

    Curves of a panel listed in `smooth` ({title: n}) are drawn faintly as logged and boldly as a
    trailing mean over n points.
    """
    smooth = smooth or {}
    images = [_panel(title, curves, smooth.get(title, 1)) for title, curves in panels.items()]
    if not images:
        images = [_panel('no data', {})]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(images, axis=0),
                                               cv2.COLOR_RGB2BGR)):
        raise OSError(f'cannot write {path}')
    return path
