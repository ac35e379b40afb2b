"""The BTS / AdaBins / ZoeDepth split-file layout shared by the NYU "sync" and KITTI readers.

A split file has one sample per line, `rgb_path depth_path focal` (paths relative to a colour
root and a depth root; a leading '/' is ignored, as the official loaders do with
`remove_leading_slash`). A depth path of `None` marks a frame without ground truth (KITTI's Eigen
test list has such frames); such lines are dropped at construction (the official evaluation skips
them too) unless `skip_missing_gt=False`, which raises instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from depth_estimation.datasets.base import (DatasetError, PathLike, RGBDDataset, RGBDSample,
                                            check_same_size, read_depth_raw, read_list_file,
                                            read_rgb_file)
from depth_estimation.geometry import Intrinsics


@dataclass(frozen=True)
class SplitLine:
    """One parsed line of a split file."""

    rgb: str
    depth: Optional[str]  # None: no ground truth for this frame
    focal: float
    line_number: int


def parse_split_file(path: PathLike) -> list[SplitLine]:
    """Parse `rgb_path depth_path focal` lines; DatasetError naming the file and line."""
    path = Path(path)
    entries = []
    for number, line in enumerate(read_list_file(path), start=1):
        words = line.split()
        if len(words) < 3:
            raise DatasetError(f'{path}: line {number} {line!r} is not "rgb_path depth_path '
                               'focal"')
        try:
            focal = float(words[2])
        except ValueError:
            raise DatasetError(f'{path}: line {number}: focal {words[2]!r} is not a number'
                               ) from None
        depth = None if words[1] == 'None' else words[1]
        entries.append(SplitLine(words[0], depth, focal, number))
    return entries


def _relative(path_text: str) -> str:
    return path_text[1:] if path_text.startswith('/') else path_text


class SplitFileDataset(RGBDDataset):
    """Base reader for `rgb_path depth_path focal` split files (see the module docstring).

    Subclasses set `units_per_metre` (1000 for NYU, 256 for KITTI) and `default_name`, and may
    override `intrinsics_for` and `crop_box`.
    """

    units_per_metre = 1000.0
    default_name = 'splitfile'

    def __init__(self, split_file: PathLike, data_path: Optional[PathLike] = None,
                 gt_path: Optional[PathLike] = None, skip_missing_gt: bool = True,
                 skip_broken: bool = False, name: Optional[str] = None) -> None:
        self.split_file = Path(split_file)
        self.data_path = Path(data_path) if data_path is not None else self.split_file.parent
        self.gt_path = Path(gt_path) if gt_path is not None else self.data_path
        self.skip_broken = bool(skip_broken)
        self.name = name or self.default_name
        entries = parse_split_file(self.split_file)
        missing = [e for e in entries if e.depth is None]
        if missing and not skip_missing_gt:
            raise DatasetError(f'{self.split_file}: line {missing[0].line_number} has no ground '
                               'truth (depth path None)')
        self.entries = [e for e in entries if e.depth is not None]
        self.dropped_without_gt = len(missing)
        if not self.entries:
            raise DatasetError(f'{self.split_file}: no line with ground truth')

    def __len__(self) -> int:
        return len(self.entries)

    def sample_name(self, index: int) -> str:
        return str(Path(_relative(self.entries[index].rgb)).with_suffix('').as_posix())

    def paths(self, index: int) -> tuple[Path, Path]:
        """(colour path, depth path) of sample `index`."""
        entry = self.entries[index]
        return (self.data_path / _relative(entry.rgb),
                self.gt_path / _relative(entry.depth or ''))

    def intrinsics_for(self, entry: SplitLine, width: int, height: int) -> Optional[Intrinsics]:
        """Intrinsics of the full (uncropped) frame. Default: the split file's focal length with
        the principal point at the image centre (the layout carries nothing else)."""
        return Intrinsics(entry.focal, entry.focal, (width - 1) / 2.0, (height - 1) / 2.0,
                          width, height)

    def crop_box(self, width: int, height: int) -> Optional[tuple[int, int, int, int]]:
        """(top, left, height, width) to cut from every frame, or None."""
        return None

    def _load(self, index: int) -> RGBDSample:
        entry = self.entries[index]
        image_path, depth_path = self.paths(index)
        image = read_rgb_file(image_path)
        raw = read_depth_raw(depth_path)
        check_same_size(image, raw, image_path, depth_path)
        depth = raw.astype(np.float32) / np.float32(self.units_per_metre)  # (H, W) metres
        height, width = depth.shape
        intrinsics = self.intrinsics_for(entry, width, height)
        box = self.crop_box(width, height)
        if box is not None:
            top, left, crop_height, crop_width = box
            if top < 0 or left < 0 or top + crop_height > height or left + crop_width > width:
                raise DatasetError(f'{image_path}: {width}x{height} is too small for the '
                                   f'{crop_width}x{crop_height} crop of {self.name}')
            image = np.ascontiguousarray(image[top:top + crop_height, left:left + crop_width])
            depth = np.ascontiguousarray(depth[top:top + crop_height, left:left + crop_width])
            if intrinsics is not None:
                intrinsics = Intrinsics(intrinsics.fx, intrinsics.fy, intrinsics.cx - left,
                                        intrinsics.cy - top, crop_width, crop_height)
        return RGBDSample(image=image, depth=depth, intrinsics=intrinsics,
                          name=self.sample_name(index))


__all__ = ['SplitFileDataset', 'SplitLine', 'parse_split_file']
