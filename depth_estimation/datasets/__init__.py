"""RGB-D dataset readers (numpy only: no torch, no ROS), one interface for all of them.

`get_dataset(name_or_path, **options)` returns an `RGBDDataset` (a sequence of `RGBDSample`):

| name | reader | options (besides `skip_broken`) |
|---|---|---|
| `folder` | `folder.FolderDataset` | `root`, `split` |
| `nyu` | `nyu.NYUMatDataset` (labelled .mat) | `path`, `split` ('test', 'train', 'all') |
| `nyu_sync` | `nyu.NYUSyncDataset` (BTS sync layout) | `split_file`, `data_path`, `gt_path` |
| `kitti` | `kitti.KittiDataset` (Eigen split, BTS layout) | `split_file`, `data_path`, `gt_path` |
| `ibims` | `ibims.IBimsDataset` (iBims-1 .mat) | `root`, `imagelist` |
| `tum` | `tum.TUMDataset` | `root`, `calibration`, `max_difference`, `depth_factor` |
| `sevenscenes` | `sevenscenes.SevenScenesDataset` | `root` |
| `rosbag` | `rosbag.RosbagDataset` (rosbag2 db3/mcap) | `path`, `color_topic`, `depth_topic` |
| `annotations` | `annotations.AnnotationsDataset` (Metric3D JSON) | `path`, `eval_crop` |

A path instead of a name is recognised by what it holds (a dataset.yaml -> folder, a .mat ->
nyu, associations.txt, rgb.txt + depth.txt or pairs.txt -> tum, frame-*.color.* -> sevenscenes,
a rosbag2 -> rosbag, imagelist.txt -> ibims, test_annotations.json -> annotations);
`name:path` (e.g. `nyu:/data/nyu_depth_v2_labeled.mat`) forces a reader.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Union

from depth_estimation.datasets.base import DatasetError, RGBDDataset, RGBDSample
from depth_estimation.datasets.folder import FolderDataset, FolderWriter

# name -> (module, class, keyword that receives a path given as name:path or as the path itself)
READERS: dict[str, tuple[str, str, str]] = {
    'folder': ('depth_estimation.datasets.folder', 'FolderDataset', 'root'),
    'nyu': ('depth_estimation.datasets.nyu', 'NYUMatDataset', 'path'),
    'nyu_sync': ('depth_estimation.datasets.nyu', 'NYUSyncDataset', 'split_file'),
    'kitti': ('depth_estimation.datasets.kitti', 'KittiDataset', 'split_file'),
    'ibims': ('depth_estimation.datasets.ibims', 'IBimsDataset', 'root'),
    'tum': ('depth_estimation.datasets.tum', 'TUMDataset', 'root'),
    'sevenscenes': ('depth_estimation.datasets.sevenscenes', 'SevenScenesDataset', 'root'),
    'rosbag': ('depth_estimation.datasets.rosbag', 'RosbagDataset', 'path'),
    'annotations': ('depth_estimation.datasets.annotations', 'AnnotationsDataset', 'path'),
}


def reader_class(name: str) -> type:
    """The reader class registered under `name` (imported on demand)."""
    if name not in READERS:
        raise DatasetError(f'unknown dataset {name!r}; known: {", ".join(sorted(READERS))} '
                           'or a path')
    module, cls, _ = READERS[name]
    return getattr(importlib.import_module(module), cls)


def detect_format(path: Union[str, Path]) -> str:
    """The reader name for a dataset path, recognised by the files it holds."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f'{path}: does not exist')
    if path.is_file():
        if path.suffix == '.mat':
            return 'nyu'
        if path.suffix in ('.mcap', '.db3'):
            return 'rosbag'
        if path.name == 'dataset.yaml':
            return 'folder'
        if path.name.endswith('annotations.json'):
            return 'annotations'
        raise DatasetError(f'{path}: cannot tell the dataset format from this file (give '
                           'name:path, e.g. kitti:<split file>)')
    if (path / 'dataset.yaml').is_file():
        return 'folder'
    from depth_estimation.datasets.tum import has_pairing

    if has_pairing(path):
        return 'tum'
    if (path / 'metadata.yaml').is_file() and \
            any(p.suffix in ('.mcap', '.db3') for p in path.iterdir()):
        return 'rosbag'
    if (path / 'imagelist.txt').is_file():
        return 'ibims'
    if (path / 'test_annotations.json').is_file():
        return 'annotations'
    if next(path.glob('frame-*.color.*'), None) is not None \
            or next(path.glob('*/frame-*.color.*'), None) is not None:
        return 'sevenscenes'
    raise DatasetError(f'{path}: cannot tell the dataset format (no dataset.yaml, TUM '
                       'associations.txt / rgb.txt + depth.txt / pairs.txt, rosbag2 '
                       'metadata.yaml, imagelist.txt, test_annotations.json or '
                       'frame-*.color.*); give name:path')


def get_dataset(name_or_path: Union[str, Path], **options: Any) -> RGBDDataset:
    """Open a dataset by reader name, by `name:path` or by path (see the module docstring).

    Options are passed to the reader; `skip_broken=True` makes a broken sample log a warning
    and be skipped instead of raising `DatasetError`.
    """
    text = str(name_or_path)
    name, path = None, None
    if text in READERS:
        name = text
    elif ':' in text and text.split(':', 1)[0] in READERS:
        name, path = text.split(':', 1)
    else:
        path = text
        name = detect_format(path)
    if path is not None:
        if name == 'folder' and Path(path).name == 'dataset.yaml':
            path = str(Path(path).parent)
        options = {READERS[name][2]: path, **options}
    return reader_class(name)(**options)


__all__ = ['DatasetError', 'FolderDataset', 'FolderWriter', 'READERS', 'RGBDDataset',
           'RGBDSample', 'detect_format', 'get_dataset', 'reader_class']
