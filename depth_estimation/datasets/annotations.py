"""Frames listed in a Metric3D-style annotation file (`test_annotations.json`).

The file is `{"files": [{"rgb": path, "depth": path, "cam_in": [fx, fy, cx, cy],
"depth_scale": units per metre}, ...]}`, one entry per frame, each with its own intrinsics and
depth scale (Metric3D's `data/nyu_demo` and `data/kitti_demo` ship in it). Paths are relative to
the repository the file came from (`data/nyu_demo/rgb/rgb_00000.jpg`); a path is looked up beside
the JSON file, dropping leading folders until the file is found. Depth is a 16-bit PNG, 0 =
invalid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from depth_estimation.datasets.base import (DatasetError, PathLike, RGBDDataset, RGBDSample,
                                            check_eval_crop, check_same_size, read_depth_raw,
                                            read_rgb_file)
from depth_estimation.geometry import Intrinsics


def _resolve(folder: Path, path_text: str) -> Path:
    """`path_text` beside `folder`, dropping leading folders until it exists (else as given)."""
    parts = Path(path_text.lstrip('/')).parts
    for start in range(len(parts)):
        candidate = folder.joinpath(*parts[start:])
        if candidate.is_file():
            return candidate
    return folder.joinpath(*parts)


class AnnotationsDataset(RGBDDataset):
    """Frames of a Metric3D annotation JSON (see the module docstring).

    `path`: the JSON file or the folder holding `test_annotations.json`. `eval_crop`: the crop of
    the evaluation protocol ('eigen' for NYU, 'garg' for KITTI, None), `min_depth` / `max_depth`
    the evaluated range.
    """

    def __init__(self, path: PathLike, eval_crop: Optional[str] = None, min_depth: float = 1e-3,
                 max_depth: float = 10.0, skip_broken: bool = False,
                 name: Optional[str] = None) -> None:
        path = Path(path)
        self.path = path / 'test_annotations.json' if path.is_dir() else path
        self.skip_broken = bool(skip_broken)
        self.eval_crop = check_eval_crop(eval_crop, str(self.path))
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.name = name or f'annotations:{self.path.parent.name}'
        try:
            files = json.loads(self.path.read_text())['files']
        except FileNotFoundError:
            raise DatasetError(f'{self.path}: annotation file is missing') from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DatasetError(f'{self.path}: not a {{"files": [...]}} annotation JSON '
                               f'({error!r})') from None
        self.entries = [self._entry(number, entry) for number, entry in enumerate(files)]
        if not self.entries:
            raise DatasetError(f'{self.path}: lists no frames')

    def _entry(self, number: int, entry: Any) -> dict[str, Any]:
        try:
            fx, fy, cx, cy = (float(value) for value in entry['cam_in'])
            scale = float(entry['depth_scale'])
            colour = _resolve(self.path.parent, str(entry['rgb']))
            depth = _resolve(self.path.parent, str(entry['depth']))
        except (KeyError, TypeError, ValueError) as error:
            raise DatasetError(f'{self.path}: entry {number} needs rgb, depth, cam_in [fx, fy, '
                               f'cx, cy] and depth_scale ({error!r})') from None
        if not scale > 0:
            raise DatasetError(f'{self.path}: entry {number}: depth_scale must be positive')
        return {'rgb': colour, 'depth': depth, 'cam_in': (fx, fy, cx, cy), 'scale': scale}

    def __len__(self) -> int:
        return len(self.entries)

    def sample_name(self, index: int) -> str:
        return self.entries[index]['rgb'].stem

    def _load(self, index: int) -> RGBDSample:
        entry = self.entries[index]
        image = read_rgb_file(entry['rgb'])
        raw = read_depth_raw(entry['depth'])
        check_same_size(image, raw, entry['rgb'], entry['depth'])
        depth = raw.astype(np.float32) / np.float32(entry['scale'])  # (H, W) metres
        height, width = depth.shape
        intrinsics = Intrinsics(*entry['cam_in'], width, height)
        return RGBDSample(image=image, depth=depth, intrinsics=intrinsics,
                          name=self.sample_name(index))


__all__ = ['AnnotationsDataset']
