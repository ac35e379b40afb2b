"""The plain RGB-D folder format: colour + 16-bit depth PNGs + one YAML of scale and intrinsics.

The simplest format a user can produce from their own robot (or the simulator writes), and the
one training and evaluation read without any conversion::

    <root>/dataset.yaml      format: depth_estimation.rgbd_folder/1
                             depth_scale: 0.001      # metres per depth PNG unit
                             width: 640
                             height: 480
                             intrinsics: {fx: .., fy: .., cx: .., cy: ..}   # at width x height
                             min_depth: 0.1
                             max_depth: 10.0
                             eval_crop: null         # 'eigen' | 'garg' | null
                             name: my_robot
                             # any other keys are kept in FolderDataset.metadata
    <root>/rgb/<id>.png      8-bit RGB (.jpg / .jpeg accepted)
    <root>/depth/<id>.png    16-bit single channel, 0 = invalid
    <root>/segmentation/<id>.png   optional, 8/16-bit labels
    <root>/<split>.txt       optional: one <id> per line (train.txt, val.txt, test.txt)

Ids may contain '/' (sub-folders, e.g. 'kitchen/000012'). Without a split, every colour image
under rgb/ is a sample (sorted). Intrinsics are scaled when a frame's size differs from
width x height (pixel-centre convention of `depth_estimation.geometry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
import yaml

from depth_estimation.datasets.base import (DatasetError, PathLike, RGBDDataset, RGBDSample,
                                            check_eval_crop, check_same_size, read_depth_raw,
                                            read_label_png, read_list_file, read_rgb_file)
from depth_estimation.geometry import Intrinsics

FORMAT = 'depth_estimation.rgbd_folder/1'
METADATA_FILE = 'dataset.yaml'
COLOR_SUFFIXES = ('.png', '.jpg', '.jpeg')


class FolderDataset(RGBDDataset):
    """Reader of the plain RGB-D folder format (see the module docstring).

    `split` is a split name ('train' reads <root>/train.txt) or a path to a list of ids;
    None takes every colour image under rgb/.
    """

    def __init__(self, root: PathLike, split: Optional[str] = None,
                 skip_broken: bool = False) -> None:
        self.root = Path(root)
        self.split = split
        self.skip_broken = bool(skip_broken)
        meta_path = self.root / METADATA_FILE
        if not self.root.is_dir():
            raise DatasetError(f'{self.root}: dataset folder does not exist')
        if not meta_path.is_file():
            raise DatasetError(f'{meta_path}: missing (a folder dataset needs its {METADATA_FILE}'
                               ' with depth_scale and intrinsics)')
        try:
            meta = yaml.safe_load(meta_path.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise DatasetError(f'{meta_path}: cannot parse the YAML ({error})') from None
        if not isinstance(meta, Mapping):
            raise DatasetError(f'{meta_path}: expected a mapping of keys, got '
                               f'{type(meta).__name__}')
        self.metadata: dict[str, Any] = dict(meta)
        if meta.get('format') != FORMAT:
            raise DatasetError(f'{meta_path}: format must be {FORMAT!r}, got '
                               f'{meta.get("format")!r}')
        try:
            self.depth_scale = float(meta['depth_scale'])
            if not (np.isfinite(self.depth_scale) and self.depth_scale > 0):
                raise ValueError(f'depth_scale must be positive, got {self.depth_scale}')
            self.min_depth = float(meta.get('min_depth', 1e-3))
            self.max_depth = float(meta.get('max_depth', 10.0))
            if not 0 <= self.min_depth < self.max_depth:
                raise ValueError(f'need 0 <= min_depth < max_depth, got {self.min_depth}, '
                                 f'{self.max_depth}')
            self.intrinsics = _intrinsics(meta)
        except KeyError as error:
            raise DatasetError(f'{meta_path}: missing key {error}') from None
        except (TypeError, ValueError) as error:
            raise DatasetError(f'{meta_path}: {error}') from None
        self.eval_crop = check_eval_crop(meta.get('eval_crop'), str(meta_path))
        self.name = str(meta.get('name') or self.root.name)
        self.ids = self._list_ids(split)
        if not self.ids:
            raise DatasetError(f'{self.root}: no samples (split {split!r})')

    def _list_ids(self, split: Optional[str]) -> list[str]:
        if split is None:
            rgb_dir = self.root / 'rgb'
            if not rgb_dir.is_dir():
                raise DatasetError(f'{rgb_dir}: colour folder is missing')
            return sorted(p.relative_to(rgb_dir).with_suffix('').as_posix()
                          for p in rgb_dir.rglob('*')
                          if p.suffix.lower() in COLOR_SUFFIXES and p.is_file())
        split_path = Path(split)
        if not split_path.is_file():
            split_path = self.root / f'{split}.txt'
        if not split_path.is_file():
            available = sorted(p.stem for p in self.root.glob('*.txt'))
            raise DatasetError(f'{split_path}: split file is missing (splits here: '
                               f'{available or "none"})')
        return read_list_file(split_path)

    def __len__(self) -> int:
        return len(self.ids)

    def sample_name(self, index: int) -> str:
        return self.ids[index]

    def color_path(self, sample_id: str) -> Path:
        """The colour file of an id (.png, .jpg or .jpeg); the .png path when none exists."""
        base = self.root / 'rgb' / sample_id
        for suffix in COLOR_SUFFIXES:
            candidate = base.parent / (base.name + suffix)
            if candidate.is_file():
                return candidate
        return base.parent / (base.name + '.png')

    def _load(self, index: int) -> RGBDSample:
        sample_id = self.ids[index]
        image_path = self.color_path(sample_id)
        depth_path = self.root / 'depth' / f'{sample_id}.png'
        image = read_rgb_file(image_path)
        raw = read_depth_raw(depth_path)
        check_same_size(image, raw, image_path, depth_path)
        depth = scale_depth(raw, self.depth_scale)  # (H, W) float32 metres
        segmentation = None
        seg_path = self.root / 'segmentation' / f'{sample_id}.png'
        if seg_path.is_file():
            segmentation = read_label_png(seg_path)
            if segmentation.shape != depth.shape:
                raise DatasetError(f'{seg_path}: segmentation is {segmentation.shape[1]}x'
                                   f'{segmentation.shape[0]}, depth is {depth.shape[1]}x'
                                   f'{depth.shape[0]}')
        height, width = depth.shape
        intrinsics = self.intrinsics and self.intrinsics.scaled(width, height)
        return RGBDSample(image=image, depth=depth, intrinsics=intrinsics, name=sample_id,
                          segmentation=segmentation)


def scale_depth(raw: np.ndarray, metres_per_unit: float) -> np.ndarray:
    """Raw integer depth -> float32 metres. A scale of 1/N (N integer: 0.001, 1/256, 0.0002) is
    applied as a float32 division by N, bit-identical to `png / 1000.0` in the usual loaders."""
    units_per_metre = round(1.0 / metres_per_unit)
    if units_per_metre >= 1 and abs(units_per_metre * metres_per_unit - 1.0) < 1e-9:
        return raw.astype(np.float32) / np.float32(units_per_metre)
    return (raw.astype(np.float64) * metres_per_unit).astype(np.float32)


def _intrinsics(meta: Mapping[str, Any]) -> Optional[Intrinsics]:
    values = meta.get('intrinsics')
    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise ValueError('intrinsics must be a mapping {fx, fy, cx, cy}')
    return Intrinsics(fx=float(values['fx']), fy=float(values['fy']), cx=float(values['cx']),
                      cy=float(values['cy']), width=int(meta['width']),
                      height=int(meta['height']))


class FolderWriter:
    """Writes samples in the plain folder format, so every tool produces the same layout.

    Depth is stored as round(depth / depth_scale) in a 16-bit PNG (0 = invalid, values that
    would overflow saturate at 65535). Call `close()` (or use as a context manager) to write
    dataset.yaml and the split files.
    """

    def __init__(self, root: PathLike, intrinsics: Optional[Intrinsics],
                 depth_scale: float = 0.001,
                 min_depth: float = 1e-3, max_depth: float = 10.0,
                 eval_crop: Optional[str] = None, name: Optional[str] = None,
                 extra: Optional[Mapping[str, Any]] = None) -> None:
        if not depth_scale > 0:
            raise ValueError(f'depth_scale must be positive, got {depth_scale}')
        self.root = Path(root)
        self.intrinsics = intrinsics
        self.depth_scale = float(depth_scale)
        self.meta: dict[str, Any] = dict(extra or {})
        self.meta.update(format=FORMAT, depth_scale=self.depth_scale, min_depth=float(min_depth),
                         max_depth=float(max_depth),
                         eval_crop=check_eval_crop(eval_crop, 'FolderWriter'),
                         name=name or self.root.name)
        if intrinsics is not None:
            self.meta.update(width=intrinsics.width, height=intrinsics.height,
                             intrinsics={'fx': intrinsics.fx, 'fy': intrinsics.fy,
                                         'cx': intrinsics.cx, 'cy': intrinsics.cy})
        self.splits: dict[str, list[str]] = {}
        for sub in ('rgb', 'depth'):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def add(self, sample_id: str, image: np.ndarray, depth: np.ndarray,
            segmentation: Optional[np.ndarray] = None, split: Optional[str] = None) -> None:
        """Write one frame: image (H, W, 3) uint8 RGB, depth (H, W) metres (<= 0/NaN invalid)."""
        if image.shape[:2] != depth.shape:
            raise ValueError(f'{sample_id}: image {image.shape[:2]} and depth {depth.shape} '
                             'differ in size')
        if self.intrinsics is None and 'width' not in self.meta:
            self.meta.update(width=int(depth.shape[1]), height=int(depth.shape[0]))
        with np.errstate(invalid='ignore'):
            valid = np.isfinite(depth) & (depth > 0)
        units = np.where(valid, np.asarray(depth, np.float64) / self.depth_scale, 0.0)
        units = np.where(valid, np.clip(np.rint(units), 1, 65535), 0).astype(np.uint16)
        self._write(self.root / 'rgb' / f'{sample_id}.png', cv2.cvtColor(image,
                                                                         cv2.COLOR_RGB2BGR))
        self._write(self.root / 'depth' / f'{sample_id}.png', units)
        if segmentation is not None:
            labels = np.asarray(segmentation)
            # Negative (ignore) labels become 255 (8-bit) or 65535 (16-bit).
            dtype = np.uint8 if labels.max(initial=0) < 255 else np.uint16
            self._write(self.root / 'segmentation' / f'{sample_id}.png',
                        np.where(labels < 0, 255 if dtype == np.uint8 else 65535,
                                 labels).astype(dtype))
        if split is not None:
            self.splits.setdefault(split, []).append(sample_id)

    @staticmethod
    def _write(path: Path, array: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), array):
            raise OSError(f'cannot write {path}')

    def close(self) -> Path:
        """Write dataset.yaml and <split>.txt; returns the dataset root."""
        (self.root / METADATA_FILE).write_text(yaml.safe_dump(self.meta, sort_keys=False))
        for split, ids in self.splits.items():
            (self.root / f'{split}.txt').write_text(''.join(f'{i}\n' for i in ids))
        return self.root

    def __enter__(self) -> FolderWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            self.close()


__all__ = ['FORMAT', 'FolderDataset', 'FolderWriter']
