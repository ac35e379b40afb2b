"""Microsoft 7-Scenes frames: `frame-NNNNNN.color.{png,jpg}`, `.depth.png`, `.pose.txt`.

`root` is a folder of frames (a `seq-XX` folder, or the tsdf-fusion copy in
../shared/data/sevenscenes_redkitchen/frames) or a scene folder holding `seq-XX` sub-folders.
Depth is a 16-bit PNG in millimetres; 0 and 65535 mark missing depth. The pose file is the 4x4
camera-to-world matrix (`pose(index)`). Intrinsics: 585 / 585 / 320 / 240 at 640x480 (the
dataset's published depth-camera values), or a `camera-intrinsics.txt` (3x3 K) found in the root
or its parent. The Kinect depth is not precisely registered to the colour image (a few pixels),
so use these frames for smoke tests and temporal checks, not for benchmark numbers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np

from depth_estimation.datasets.base import (DatasetError, PathLike, RGBDDataset, RGBDSample,
                                            check_same_size, read_depth_raw, read_rgb_file)
from depth_estimation.geometry import Intrinsics

SEVENSCENES_INTRINSICS = Intrinsics(585.0, 585.0, 320.0, 240.0, 640, 480)
INVALID_DEPTH = 65535
_FRAME = re.compile(r'^frame-(\d+)\.color\.(png|jpg|jpeg)$')


def read_camera_matrix(path: Path, width: int = 640, height: int = 480) -> Intrinsics:
    """A text file holding a 3x3 camera matrix K (tsdf-fusion's camera-intrinsics.txt)."""
    try:
        matrix = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as error:
        raise DatasetError(f'{path}: cannot read a 3x3 camera matrix ({error})') from None
    if matrix.size != 9:
        raise DatasetError(f'{path}: expected 9 numbers (3x3 K), got {matrix.size}')
    return Intrinsics.from_k(matrix.reshape(-1), width, height)


class SevenScenesDataset(RGBDDataset):
    """7-Scenes frames (see the module docstring)."""

    def __init__(self, root: PathLike, intrinsics: Optional[Intrinsics] = None,
                 stride: int = 1, skip_broken: bool = False) -> None:
        self.root = Path(root)
        self.skip_broken = bool(skip_broken)
        self.name = f'sevenscenes:{self.root.name}'
        self.min_depth, self.max_depth, self.eval_crop = 1e-3, 10.0, None
        if not self.root.is_dir():
            raise DatasetError(f'{self.root}: 7-Scenes folder does not exist')
        if stride < 1:
            raise DatasetError(f'stride must be >= 1, got {stride}')
        folders = [self.root] + sorted(p for p in self.root.iterdir()
                                       if p.is_dir() and p.name.startswith('seq-'))
        frames: list[tuple[Path, str]] = []  # (colour path, id)
        for folder in folders:
            found = sorted((int(m.group(1)), p) for p in folder.iterdir()
                           if (m := _FRAME.match(p.name)))
            prefix = '' if folder == self.root else f'{folder.name}/'
            frames += [(p, f'{prefix}{number:06d}') for number, p in found]
        if not frames:
            raise DatasetError(f'{self.root}: no frame-NNNNNN.color.png/jpg files')
        self.frames = frames[::stride]
        if intrinsics is None:
            camera_file = next((p / 'camera-intrinsics.txt' for p in (self.root, self.root.parent)
                                if (p / 'camera-intrinsics.txt').is_file()), None)
            intrinsics = (read_camera_matrix(camera_file) if camera_file is not None
                          else SEVENSCENES_INTRINSICS)
        self.intrinsics = intrinsics

    def __len__(self) -> int:
        return len(self.frames)

    def sample_name(self, index: int) -> str:
        return self.frames[index][1]

    def _stem(self, index: int) -> str:
        colour = self.frames[index][0]
        return str(colour.parent / colour.name.split('.color.')[0])

    def pose(self, index: int) -> np.ndarray:
        """The (4, 4) camera-to-world pose of sample `index`."""
        path = Path(self._stem(index) + '.pose.txt')
        try:
            pose = np.loadtxt(path, dtype=np.float64)
        except (OSError, ValueError) as error:
            raise DatasetError(f'{path}: cannot read the pose ({error})') from None
        if pose.shape != (4, 4):
            raise DatasetError(f'{path}: expected a 4x4 matrix, got shape {pose.shape}')
        return pose

    def _load(self, index: int) -> RGBDSample:
        image_path = self.frames[index][0]
        depth_path = Path(self._stem(index) + '.depth.png')
        image = read_rgb_file(image_path)
        raw = read_depth_raw(depth_path)
        check_same_size(image, raw, image_path, depth_path)
        depth = raw.astype(np.float32) / np.float32(1000.0)  # (H, W) metres
        depth[raw == INVALID_DEPTH] = 0.0
        height, width = depth.shape
        intrinsics = self.intrinsics.scaled(width, height)
        return RGBDSample(image=image, depth=depth, intrinsics=intrinsics,
                          name=self.sample_name(index))


__all__ = ['SEVENSCENES_INTRINSICS', 'SevenScenesDataset', 'read_camera_matrix']
