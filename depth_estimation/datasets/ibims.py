"""iBims-1 (Koch et al., ECCV workshops 2018): the per-image .mat files of `ibims1_core_mat`.

Layout: `<root>/imagelist.txt` (one image name per line) and `<root>/<name>.mat`, a MATLAB (v5)
file with one struct `data` whose fields the official evaluation (evaluate_ibims.py) reads:
`rgb` (480x640x3 uint8), `depth` (480x640 metres, 0 = missing), `mask_invalid` and `mask_transp`
(1 = usable, 0 = invalid / transparent surface), `calib` (the camera matrix in MATLAB's
transposed layout: fx = calib[0, 0], fy = calib[1, 1], cx = calib[2, 0], cy = calib[2, 1], in
MATLAB's 1-based pixel coordinates), plus edges and plane masks that depth metrics do not use.

As in the official evaluation, a pixel is ground truth only where depth != 0 and both masks are 1;
everything else is returned as 0.0 (no measurement). Evaluation protocol as ZoeDepth uses it
(`DATASETS_CONFIG['ibims']`): depth up to 10 m with the fixed NYU Eigen crop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from depth_estimation.datasets.base import (DatasetError, PathLike, RGBDDataset, RGBDSample,
                                            lazy_import, read_list_file)
from depth_estimation.geometry import Intrinsics

REQUIRED_FIELDS = ('rgb', 'depth', 'mask_invalid', 'mask_transp')


def _field(data: Any, name: str) -> Optional[np.ndarray]:
    """A field of the loadmat'ed `data` struct (array of shape (1, 1) with named fields)."""
    if data.dtype.names is None or name not in data.dtype.names:
        return None
    return np.asarray(data[name][0, 0])


def intrinsics_from_calib(calib: np.ndarray, width: int, height: int) -> Intrinsics:
    """iBims `calib` (MATLAB IntrinsicMatrix layout, 1-based pixels) -> our 0-based Intrinsics.

    A plain K (cx, cy in the last column) is accepted as well; it is told apart by where the
    principal point is (the other layout has zeros there).
    """
    calib = np.asarray(calib, dtype=np.float64).reshape(3, 3)
    if calib[2, 0] != 0 or calib[2, 1] != 0:  # [fx 0 0; s fy 0; cx cy 1], 1-based
        cx, cy = calib[2, 0] - 1.0, calib[2, 1] - 1.0
    else:  # [fx s cx; 0 fy cy; 0 0 1], taken as 0-based
        cx, cy = calib[0, 2], calib[1, 2]
    return Intrinsics(float(calib[0, 0]), float(calib[1, 1]), float(cx), float(cy), width,
                      height)


class IBimsDataset(RGBDDataset):
    """iBims-1 from its .mat files (see the module docstring)."""

    def __init__(self, root: PathLike, imagelist: Optional[PathLike] = None,
                 skip_broken: bool = False) -> None:
        self.root = Path(root)
        self.skip_broken = bool(skip_broken)
        self.name = 'ibims'
        self.min_depth, self.max_depth, self.eval_crop = 1e-3, 10.0, 'eigen'
        list_path = Path(imagelist) if imagelist is not None else self.root / 'imagelist.txt'
        self.names = read_list_file(list_path)
        if not self.names:
            raise DatasetError(f'{list_path}: no image names')

    def __len__(self) -> int:
        return len(self.names)

    def sample_name(self, index: int) -> str:
        return self.names[index]

    def _load(self, index: int) -> RGBDSample:
        io = lazy_import('scipy.io', 'reading iBims-1 .mat files')
        path = self.root / f'{self.names[index]}.mat'
        if not path.is_file():
            raise DatasetError(f'{path}: iBims-1 .mat file is missing')
        try:
            content = io.loadmat(str(path))
        except Exception as error:  # scipy raises several types for corrupt files
            raise DatasetError(f'{path}: cannot read the .mat file ({error})') from None
        data = content.get('data')
        if data is None:
            raise DatasetError(f'{path}: no struct "data" (not an ibims1_core_mat file)')
        fields = {name: _field(data, name) for name in REQUIRED_FIELDS + ('calib',)}
        absent = [name for name in REQUIRED_FIELDS if fields[name] is None]
        if absent:
            raise DatasetError(f'{path}: data has no field(s) {", ".join(absent)}')
        image = fields['rgb']
        depth = fields['depth'].astype(np.float32)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise DatasetError(f'{path}: rgb is {image.dtype} {image.shape}, expected H x W x 3 '
                               'uint8')
        if depth.shape != image.shape[:2]:
            raise DatasetError(f'{path}: depth {depth.shape} and rgb {image.shape[:2]} differ')
        valid = (fields['mask_invalid'] != 0) & (fields['mask_transp'] != 0)
        for name in ('mask_invalid', 'mask_transp'):
            if fields[name].shape != depth.shape:
                raise DatasetError(f'{path}: {name} {fields[name].shape} and depth '
                                   f'{depth.shape} differ')
        with np.errstate(invalid='ignore'):
            valid &= np.isfinite(depth) & (depth > 0)
        depth = np.where(valid, depth, np.float32(0.0)).astype(np.float32)
        height, width = depth.shape
        intrinsics = None
        if fields['calib'] is not None and fields['calib'].size == 9:
            try:
                intrinsics = intrinsics_from_calib(fields['calib'], width, height)
            except ValueError as error:
                raise DatasetError(f'{path}: unusable calib ({error})') from None
        return RGBDSample(image=np.ascontiguousarray(image), depth=depth, intrinsics=intrinsics,
                          name=self.names[index])


__all__ = ['IBimsDataset', 'intrinsics_from_calib']
