"""Real sample frames shipped with the package: `<name>.png` and its camera_info `<name>.yaml`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
import yaml

SAMPLE_DIR = Path(__file__).resolve().parent / 'resources' / 'samples'


@dataclass(frozen=True)
class Sample:
    name: str
    rgb: np.ndarray  # (H, W, 3) uint8
    camera_info: Optional[dict[str, Any]]  # parsed camera_info YAML, None if absent


def read_rgb(path: Path) -> np.ndarray:
    """Read a colour image file as RGB uint8 (H, W, 3); ValueError if unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f'cannot read image {path}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_samples(directory: Path = SAMPLE_DIR) -> list[Sample]:
    """All samples in `directory`, sorted by name."""
    samples = []
    for image_path in sorted(directory.glob('*.png')):
        info_path = image_path.with_suffix('.yaml')
        info = yaml.safe_load(info_path.read_text()) if info_path.is_file() else None
        samples.append(Sample(image_path.stem, read_rgb(image_path), info))
    return samples
