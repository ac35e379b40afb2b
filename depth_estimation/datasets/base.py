"""The shared RGB-D dataset interface (numpy only: no torch, no ROS).

Every reader in this package turns a dataset's own on-disk format into `RGBDSample`s: colour as
RGB uint8, depth as float32 metres with 0.0 marking "no measurement" (the convention of the
ZoeDepth / BTS data loaders, whose masks test `depth > min_depth`), and intrinsics at the size of
the returned image. Training (`training/`), evaluation (`depth_estimation.evaluation`) and the
simulator code against this module only, so that a new dataset is one new reader.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Optional, Union

import cv2
import numpy as np

from depth_estimation.geometry import Intrinsics

PathLike = Union[str, Path]
EVAL_CROPS = ('eigen', 'garg')
LOGGER = logging.getLogger('depth_estimation.datasets')


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or not in the expected format.

    The message always names the file and what is wrong with it, so that a user with a broken
    download knows which file to fetch again.
    """


@dataclass
class RGBDSample:
    """One aligned colour + depth frame."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray  # (H, W) float32 metres; 0.0 = no measurement
    intrinsics: Optional[Intrinsics]  # at this image size; None when the dataset has none
    name: str  # stable id, e.g. 'kitchen/000012'
    segmentation: Optional[np.ndarray] = None  # (H, W) int64 labels, -1 (or 255) = ignore

    def __post_init__(self) -> None:
        image, depth = self.image, self.depth
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f'{self.name}: image must be (H, W, 3) uint8, got '
                             f'{image.dtype} {image.shape}')
        if depth.ndim != 2 or depth.dtype != np.float32:
            raise ValueError(f'{self.name}: depth must be (H, W) float32, got '
                             f'{depth.dtype} {depth.shape}')
        if depth.shape != image.shape[:2]:
            raise ValueError(f'{self.name}: depth {depth.shape} and image {image.shape[:2]} '
                             'differ in size')
        size = (image.shape[1], image.shape[0])
        if self.intrinsics is not None and \
                (self.intrinsics.width, self.intrinsics.height) != size:
            raise ValueError(f'{self.name}: intrinsics are for {self.intrinsics.width}x'
                             f'{self.intrinsics.height}, image is {image.shape[1]}x'
                             f'{image.shape[0]}')
        if self.segmentation is not None and self.segmentation.shape != depth.shape:
            raise ValueError(f'{self.name}: segmentation {self.segmentation.shape} and depth '
                             f'{depth.shape} differ in size')

    @property
    def valid(self) -> np.ndarray:
        """(H, W) bool: where the depth holds a measurement (finite and > 0)."""
        with np.errstate(invalid='ignore'):
            return np.isfinite(self.depth) & (self.depth > 0)


class RGBDDataset(abc.ABC, Sequence):
    """A random-access sequence of `RGBDSample`s.

    Attributes (set by every reader):
    - `name`: short id ('nyu', 'kitti', 'folder:<root>', ...), used in result tables.
    - `min_depth`, `max_depth`: the depth range that the papers evaluate on (metres).
    - `eval_crop`: 'eigen' | 'garg' | None, the crop of the papers' evaluation protocol.

    Readers implement `__len__`, `sample_name` (cheap, no file reads) and `_load(index)`.
    With `skip_broken=True`, `__getitem__` logs a warning for a sample that raises
    `DatasetError` and returns the next readable one instead (wrapping around), so that one
    corrupt file does not end a long training run; without it the error propagates.
    """

    name: str = 'dataset'
    min_depth: float = 1e-3
    max_depth: float = 10.0
    eval_crop: Optional[str] = None
    skip_broken: bool = False

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    @abc.abstractmethod
    def _load(self, index: int) -> RGBDSample:
        """Read sample `index` (0 <= index < len) from disk; DatasetError if broken."""

    def sample_name(self, index: int) -> str:
        """Stable id of sample `index` without reading it (default: the index)."""
        return str(index)

    def __getitem__(self, index: int) -> RGBDSample:  # type: ignore[override]
        count = len(self)
        if isinstance(index, slice):
            raise TypeError('RGBDDataset does not support slices; index samples one by one')
        index = int(index)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError(f'{self.name}: index {index} out of range for {count} samples')
        if not self.skip_broken:
            return self._load(index)
        for attempt in range(count):
            current = (index + attempt) % count
            try:
                return self._load(current)
            except DatasetError as error:
                LOGGER.warning('%s: skipping broken sample %s: %s', self.name,
                               self.sample_name(current), error)
        raise DatasetError(f'{self.name}: every one of the {count} samples is broken')

    def __iter__(self) -> Iterator[RGBDSample]:
        for index in range(len(self)):
            yield self[index]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(name={self.name!r}, samples={len(self)}, '
                f'depth={self.min_depth}..{self.max_depth} m, eval_crop={self.eval_crop!r})')


# --- helpers shared by the readers ---------------------------------------------------------------

def check_eval_crop(value: Optional[str], where: str) -> Optional[str]:
    """Validate an eval_crop value ('eigen', 'garg' or None/'none')."""
    if value is None or str(value).lower() in ('none', 'null', ''):
        return None
    if value not in EVAL_CROPS:
        raise DatasetError(f'{where}: eval_crop must be one of {EVAL_CROPS} or null, got '
                           f'{value!r}')
    return value


def _imread(path: PathLike, flags: int, what: str) -> np.ndarray:
    """cv2.imread with a DatasetError naming the file when it is missing or cannot be decoded."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f'{path}: {what} is missing')
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DatasetError(f'{path}: cannot decode the {what} (corrupt or not an image)')
    return image


def read_rgb_file(path: PathLike) -> np.ndarray:
    """Colour image file (PNG/JPEG/PPM) -> (H, W, 3) uint8 RGB; DatasetError naming the file."""
    bgr = _imread(path, cv2.IMREAD_COLOR, 'colour image')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_depth_png(path: PathLike, metres_per_unit: float) -> np.ndarray:
    """16-bit single-channel depth PNG -> (H, W) float32 metres (value * metres_per_unit).

    0 stays 0.0 (no measurement). For datasets whose scale is an integer number of units per
    metre (1000, 256, 5000) use `read_depth_png_scaled`, which divides like the official loaders.
    """
    raw = read_depth_raw(path)
    return (raw.astype(np.float64) * float(metres_per_unit)).astype(np.float32)


def read_depth_png_scaled(path: PathLike, units_per_metre: float) -> np.ndarray:
    """16-bit depth PNG -> float32 metres as raw / units_per_metre (1000 mm, 256 KITTI, 5000 TUM).

    The division is done in float32, as `np.asarray(png, dtype=np.float32) / 1000.0` in the
    ZoeDepth / BTS loaders, so the decoded values are bit-identical to theirs.
    """
    raw = read_depth_raw(path)
    return raw.astype(np.float32) / np.float32(units_per_metre)


def read_depth_raw(path: PathLike) -> np.ndarray:
    """The raw (H, W) uint16 values of a 16-bit single-channel depth PNG."""
    raw = _imread(path, cv2.IMREAD_UNCHANGED, 'depth image')
    if raw.ndim != 2 or raw.dtype != np.uint16:
        raise DatasetError(f'{path}: depth must be a single-channel 16-bit image, got '
                           f'{raw.dtype} with shape {raw.shape}')
    return raw


def read_label_png(path: PathLike) -> np.ndarray:
    """8/16-bit single-channel label PNG -> (H, W) int64."""
    raw = _imread(path, cv2.IMREAD_UNCHANGED, 'segmentation image')
    if raw.ndim != 2 or raw.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f'{path}: segmentation must be a single-channel 8/16-bit image, got '
                           f'{raw.dtype} with shape {raw.shape}')
    return raw.astype(np.int64)


def check_same_size(image: np.ndarray, depth: np.ndarray, image_path: PathLike,
                    depth_path: PathLike) -> None:
    """DatasetError when a colour and a depth frame that belong together differ in size."""
    if image.shape[:2] != depth.shape[:2]:
        raise DatasetError(f'{depth_path}: depth is {depth.shape[1]}x{depth.shape[0]} but the '
                           f'colour image {image_path} is {image.shape[1]}x{image.shape[0]}')


def read_list_file(path: PathLike) -> list[str]:
    """Non-empty, non-comment lines of a text list (split files, imagelist.txt)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f'{path}: list file is missing')
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f'{path}: cannot read the list file ({error})') from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith('#')]


def lazy_import(module: str, purpose: str) -> ModuleType:
    """Import an optional dependency only when a reader needs it, with an install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise DatasetError(f'{purpose} needs the Python package {module!r} '
                           f'(pip install -r requirements.txt): {error}') from None


def associate_stamps(first: Sequence[float], second: Sequence[float],
                     max_difference: float) -> list[tuple[int, int]]:
    """Pair two lists of timestamps (seconds) one-to-one, closest pairs first.

    The rule of the TUM RGB-D benchmark's associate.py: among all pairs closer than
    `max_difference`, repeatedly take the closest pair whose members are both still unused.
    Returns (index in first, index in second) sorted by the first list's time.
    """
    a = np.asarray(first, dtype=np.float64)  # (N,)
    b = np.asarray(second, dtype=np.float64)  # (M,)
    order_b = np.argsort(b, kind='stable')
    sorted_b = b[order_b]
    candidates: list[tuple[float, int, int]] = []
    for i, stamp in enumerate(a):
        lo = np.searchsorted(sorted_b, stamp - max_difference, side='left')
        hi = np.searchsorted(sorted_b, stamp + max_difference, side='right')
        for k in range(lo, hi):
            difference = abs(stamp - sorted_b[k])
            if difference < max_difference:
                candidates.append((difference, i, int(order_b[k])))
    candidates.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for _, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    pairs.sort(key=lambda pair: (a[pair[0]], pair[0]))
    return pairs


__all__ = ['DatasetError', 'EVAL_CROPS', 'RGBDDataset', 'RGBDSample', 'associate_stamps',
           'check_eval_crop', 'read_depth_png', 'read_depth_png_scaled', 'read_depth_raw',
           'read_label_png', 'read_list_file', 'read_rgb_file']
