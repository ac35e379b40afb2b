"""KITTI Eigen split in the BTS / ZoeDepth layout.

Split files (`kitti_eigen_{train,test}_files_with_gt.txt`) hold lines
`2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png
2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000069.png 721.5377`: the colour
path relative to the KITTI raw root (`data_path`), the ground-truth path relative to the KITTI
depth-benchmark annotated root (`gt_path`), and the focal length. Depth is a 16-bit PNG, metres =
value / 256, 0 = no measurement. Test lines whose depth is `None` have no annotation and are
dropped, as the official evaluation skips them.

Evaluation protocol of the papers (ZoeDepth `DATASETS_CONFIG['kitti']`): the KB crop (the bottom
352 rows and the centred 1216 columns, applied to colour and depth, `kb_crop=True` here), depth
1e-3..80 m and the Garg crop on the result (`eval_crop='garg'`).

Intrinsics: from `<data_path>/<date>/calib_cam_to_cam.txt` (P_rect_02 / P_rect_03 for image_02 /
image_03) when that file is present, otherwise the split file's focal length with the principal
point at the image centre (an approximation; KITTI's is a few pixels off centre). The KB crop
shifts the principal point.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional

from depth_estimation.datasets.base import DatasetError, PathLike
from depth_estimation.datasets.splitfile import SplitFileDataset, SplitLine
from depth_estimation.geometry import Intrinsics

KB_HEIGHT, KB_WIDTH = 352, 1216


@lru_cache(maxsize=64)
def read_calib_cam_to_cam(path: Path) -> dict[str, list[float]]:
    """`key: numbers` lines of a KITTI calib_cam_to_cam.txt (non-numeric values are skipped)."""
    values: dict[str, list[float]] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise DatasetError(f'{path}: cannot read the KITTI calibration ({error})') from None
    for line in lines:
        key, _, rest = line.partition(':')
        try:
            values[key.strip()] = [float(v) for v in rest.split()]
        except ValueError:
            continue  # calib_time: 09-Jan-2012 13:57:47
    return values


class KittiDataset(SplitFileDataset):
    """KITTI Eigen split (see the module docstring)."""

    units_per_metre = 256.0
    default_name = 'kitti'

    def __init__(self, split_file: PathLike, data_path: Optional[PathLike] = None,
                 gt_path: Optional[PathLike] = None, kb_crop: bool = True,
                 skip_missing_gt: bool = True, skip_broken: bool = False) -> None:
        super().__init__(split_file, data_path, gt_path, skip_missing_gt=skip_missing_gt,
                         skip_broken=skip_broken)
        self.kb_crop = bool(kb_crop)
        self.min_depth, self.max_depth, self.eval_crop = 1e-3, 80.0, 'garg'

    def crop_box(self, width: int, height: int) -> Optional[tuple[int, int, int, int]]:
        if not self.kb_crop:
            return None
        # As the official loaders: top = H - 352, left = int((W - 1216) / 2).
        return height - KB_HEIGHT, int((width - KB_WIDTH) / 2), KB_HEIGHT, KB_WIDTH

    def intrinsics_for(self, entry: SplitLine, width: int, height: int) -> Intrinsics:
        parts = Path(entry.rgb.lstrip('/')).parts
        camera = next((p for p in parts if p in ('image_00', 'image_01', 'image_02',
                                                 'image_03')), 'image_02')
        calib = self.data_path / parts[0] / 'calib_cam_to_cam.txt' if parts else None
        if calib is not None and calib.is_file():
            projection = read_calib_cam_to_cam(calib).get(f'P_rect_{camera[-2:]}')
            if projection is None or len(projection) != 12:
                raise DatasetError(f'{calib}: no 12-number P_rect_{camera[-2:]}')
            return Intrinsics.from_projection(projection, width, height)
        return super().intrinsics_for(entry, width, height)


__all__ = ['KB_HEIGHT', 'KB_WIDTH', 'KittiDataset', 'read_calib_cam_to_cam']
