"""NYU Depth v2: the official labelled .mat and the BTS / ZoeDepth "sync" split-file layout.

`NYUMatDataset` reads `nyu_depth_v2_labeled.mat` (MATLAB v7.3, i.e. HDF5, read with h5py; 1449
frames). h5py sees MATLAB's column-major arrays with reversed axes: `images` is (N, 3, 640, 480)
uint8, `depths` / `rawDepths` are (N, 640, 480) float32 metres, `labels` is (N, 640, 480) uint16;
frame i (0-based) is `images[i].transpose(2, 1, 0)` -> (480, 640, 3). The default split is the
654-frame official test set (`testNdxs` of splits.mat, shipped as
`resources/nyu_eigen_test_indices.txt`), on which the papers report NYU numbers.

Which depth: the BTS extraction script that produced the `official_splits/test` folders used by
BTS, AdaBins and ZoeDepth writes `rawDepths` (the Kinect depth with holes, projected to the colour
camera) as millimetre PNGs, so `depth='raw'` (the default) is the ground truth of the papers'
protocol; `depth='filled'` gives the in-painted `depths`. BTS also blanks a 7-pixel border of the
test colour images and stores them as JPEG; `black_border=True` reproduces the border (JPEG loss
is not reproduced).

`NYUSyncDataset` reads the split-file layout (`rgb_path depth_path focal`, 16-bit PNG depth in
millimetres) of `nyudepthv2_{train,test}_files_with_gt.txt`.

Both use the NYU colour camera calibration of the official toolbox (camera_params.m): it applies
at 640x480 to the registered frames.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from depth_estimation.datasets.base import (DatasetError, PathLike, RGBDDataset, RGBDSample,
                                            lazy_import)
from depth_estimation.datasets.splitfile import SplitFileDataset, SplitLine
from depth_estimation.geometry import Intrinsics

# NYU Depth v2 toolbox, camera_params.m: RGB camera intrinsics (pixels, 640x480).
NYU_FX = 5.1885790117450188e+02
NYU_FY = 5.1946961112127485e+02
NYU_CX = 3.2558244941119034e+02
NYU_CY = 2.5373616633400465e+02
NYU_INTRINSICS = Intrinsics(NYU_FX, NYU_FY, NYU_CX, NYU_CY, 640, 480)
NYU_FRAMES = 1449
TEST_INDEX_RESOURCE = 'nyu_eigen_test_indices.txt'
DEPTH_KEYS = {'raw': 'rawDepths', 'filled': 'depths'}
BTS_BORDER = 7  # BTS keeps image[7:474, 7:632] of its test images and blanks the rest


def eigen_test_indices() -> list[int]:
    """The 654 official NYU test frames as 1-based indices into the labelled set (testNdxs)."""
    text = resources.files('depth_estimation.datasets').joinpath(
        'resources', TEST_INDEX_RESOURCE).read_text()
    return [int(line) for line in text.splitlines() if line.strip() and not line.startswith('#')]


def read_splits_mat(path: PathLike) -> dict[str, list[int]]:
    """`trainNdxs` / `testNdxs` (1-based) from the official splits.mat (scipy)."""
    io = lazy_import('scipy.io', 'reading splits.mat')
    try:
        data = io.loadmat(str(path))
    except Exception as error:  # scipy raises several types for corrupt files
        raise DatasetError(f'{path}: cannot read splits.mat ({error})') from None
    try:
        return {'train': [int(v) for v in np.asarray(data['trainNdxs']).reshape(-1)],
                'test': [int(v) for v in np.asarray(data['testNdxs']).reshape(-1)]}
    except KeyError as error:
        raise DatasetError(f'{path}: no {error} in splits.mat') from None


class NYUMatDataset(RGBDDataset):
    """The official labelled NYU Depth v2 .mat (see the module docstring).

    split: 'test' (654 frames, default), 'train' (the other 795), 'all', or a sequence of 1-based
    indices. `splits_file`: an official splits.mat to take the split from instead of the shipped
    list. Segmentation: the 894-class `labels`, with 0 (unlabelled) mapped to -1 (ignore).
    """

    def __init__(self, path: PathLike, split: Union[str, Sequence[int]] = 'test',
                 depth: str = 'raw', splits_file: Optional[PathLike] = None,
                 black_border: bool = False, with_labels: bool = True,
                 skip_broken: bool = False) -> None:
        self.path = Path(path)
        if depth not in DEPTH_KEYS:
            raise DatasetError(f'depth must be one of {sorted(DEPTH_KEYS)}, got {depth!r}')
        self.depth_key = DEPTH_KEYS[depth]
        self.black_border = bool(black_border)
        self.with_labels = bool(with_labels)
        self.skip_broken = bool(skip_broken)
        self.name = 'nyu'
        self.min_depth, self.max_depth, self.eval_crop = 1e-3, 10.0, 'eigen'
        self._file: Any = None
        self._pid: Optional[int] = None
        handle = self._open()
        for key in ('images', self.depth_key):
            if key not in handle:
                raise DatasetError(f'{self.path}: no {key!r} dataset; is this '
                                   'nyu_depth_v2_labeled.mat?')
        images, depths = handle['images'], handle[self.depth_key]
        if images.ndim != 4 or images.shape[1] != 3:
            raise DatasetError(f'{self.path}: images has shape {images.shape}, expected (N, 3, '
                               'W, H) as h5py reads a MATLAB v7.3 H x W x 3 x N array')
        if depths.shape != (images.shape[0], images.shape[2], images.shape[3]):
            raise DatasetError(f'{self.path}: {self.depth_key} has shape {depths.shape}, '
                               f'images {images.shape}')
        self.frame_count = int(images.shape[0])
        if isinstance(split, str):
            if split == 'all':
                indices = list(range(1, self.frame_count + 1))
            elif split in ('test', 'train'):
                test = (read_splits_mat(splits_file)['test'] if splits_file is not None
                        else eigen_test_indices())
                if split == 'test':
                    indices = test
                else:
                    excluded = set(test)
                    indices = [i for i in range(1, self.frame_count + 1) if i not in excluded]
            else:
                raise DatasetError(f"split must be 'test', 'train', 'all' or a list of indices, "
                                   f'got {split!r}')
        else:
            indices = [int(i) for i in split]
        bad = [i for i in indices if not 1 <= i <= self.frame_count]
        if bad:
            raise DatasetError(f'{self.path}: holds {self.frame_count} frames, so the 1-based '
                               f'indices {bad[:5]} of split {split!r} do not exist (is the file '
                               'truncated, or not the 1449-frame labelled set?)')
        self.indices = indices  # 1-based
        self.split = split if isinstance(split, str) else 'custom'

    def _open(self) -> Any:
        """The h5py file, opened once per process (h5py handles do not survive fork)."""
        if self._file is None or self._pid != os.getpid():
            h5py = lazy_import('h5py', 'reading nyu_depth_v2_labeled.mat')
            if not self.path.is_file():
                raise DatasetError(f'{self.path}: NYU .mat file is missing')
            try:
                self._file = h5py.File(self.path, 'r')
            except OSError as error:
                raise DatasetError(f'{self.path}: not a MATLAB v7.3 (HDF5) file ({error}); '
                                   'the labelled NYU set is distributed in that format') from None
            self._pid = os.getpid()
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state['_file'] = None  # reopened in the worker process
        return state

    def __len__(self) -> int:
        return len(self.indices)

    def sample_name(self, index: int) -> str:
        # 0-based frame number, as in the BTS file names (rgb_00045.jpg is MATLAB frame 46).
        return f'{self.indices[index] - 1:05d}'

    def _load(self, index: int) -> RGBDSample:
        frame = self.indices[index] - 1
        handle = self._open()
        try:
            image = np.ascontiguousarray(np.asarray(handle['images'][frame]).transpose(2, 1, 0))
            depth = np.ascontiguousarray(np.asarray(handle[self.depth_key][frame]).T)
            labels = None
            if self.with_labels and 'labels' in handle:
                labels = np.asarray(handle['labels'][frame]).T.astype(np.int64)
        except (OSError, ValueError, KeyError) as error:
            raise DatasetError(f'{self.path}: cannot read frame {frame + 1} ({error})') from None
        if image.dtype != np.uint8:
            raise DatasetError(f'{self.path}: images are {image.dtype}, expected uint8')
        depth = depth.astype(np.float32)
        depth[~np.isfinite(depth) | (depth < 0)] = 0.0
        if self.black_border:
            bordered = np.zeros_like(image)
            b = BTS_BORDER
            bordered[b:image.shape[0] - b, b:image.shape[1] - b] = \
                image[b:image.shape[0] - b, b:image.shape[1] - b]
            image = bordered
        if labels is not None:
            labels[labels == 0] = -1
        height, width = depth.shape
        intrinsics = NYU_INTRINSICS if (width, height) == (640, 480) else \
            NYU_INTRINSICS.scaled(width, height)
        return RGBDSample(image=image, depth=depth, intrinsics=intrinsics,
                          name=self.sample_name(index), segmentation=labels)


class NYUSyncDataset(SplitFileDataset):
    """NYU in the BTS / ZoeDepth split-file layout (16-bit PNG depth in millimetres).

    `split_file`: e.g. nyudepthv2_test_files_with_gt.txt; `data_path` / `gt_path`: the colour and
    depth roots the paths are relative to (default: the split file's folder).
    """

    units_per_metre = 1000.0
    default_name = 'nyu'

    def __init__(self, split_file: PathLike, data_path: Optional[PathLike] = None,
                 gt_path: Optional[PathLike] = None, skip_missing_gt: bool = True,
                 skip_broken: bool = False) -> None:
        super().__init__(split_file, data_path, gt_path, skip_missing_gt=skip_missing_gt,
                         skip_broken=skip_broken)
        self.min_depth, self.max_depth, self.eval_crop = 1e-3, 10.0, 'eigen'

    def intrinsics_for(self, entry: SplitLine, width: int, height: int) -> Intrinsics:
        """The toolbox calibration; fx from the split file (518.8579 in the official lists) with
        fy keeping the toolbox fy/fx ratio."""
        base = NYU_INTRINSICS if (width, height) == (640, 480) else \
            NYU_INTRINSICS.scaled(width, height)
        if abs(entry.focal - round(NYU_FX, 4)) < 1e-3:
            return base
        ratio = entry.focal / base.fx
        return Intrinsics(entry.focal, base.fy * ratio, base.cx, base.cy, width, height)


__all__ = ['NYUMatDataset', 'NYUSyncDataset', 'NYU_INTRINSICS', 'eigen_test_indices',
           'read_splits_mat']
