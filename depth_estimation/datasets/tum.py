"""TUM RGB-D benchmark sequences (and anything written in their format).

Layout (https://cvg.cit.tum.de/data/datasets/rgbd-dataset/file_formats): `<root>/rgb.txt` and
`<root>/depth.txt` with lines `timestamp path` ('#' comments), paths relative to the root; colour
8-bit PNG, depth 16-bit PNG with 5000 units per metre (0 = missing), registered to the colour
camera. Colour and depth are paired as the benchmark's associate.py does: closest timestamps
first, each frame used once, pairs further apart than `max_difference` (default 0.02 s) dropped.

Calibration (`calibration`): 'fr1', 'fr2' or 'fr3' (the benchmark's published colour intrinsics),
'ros' (the ROS default 525 / 525 / 319.5 / 239.5 that TUM documents as the fallback), an
`Intrinsics`, or a camera file (ROS camera_info YAML, ...). The default ('auto') takes frN from
'freiburgN' in the sequence folder name and otherwise the ROS default, with a warning. Lens
distortion (fr1 / fr2 publish small coefficients) is ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from depth_estimation.datasets.base import (LOGGER, DatasetError, PathLike, RGBDDataset,
                                            RGBDSample, associate_stamps, check_same_size,
                                            read_depth_raw, read_list_file, read_rgb_file)
from depth_estimation.datasets.folder import scale_depth
from depth_estimation.geometry import Intrinsics

TUM_CALIBRATIONS = {
    'fr1': Intrinsics(517.3, 516.5, 318.6, 255.3, 640, 480),
    'fr2': Intrinsics(520.9, 521.0, 325.1, 249.7, 640, 480),
    'fr3': Intrinsics(535.4, 539.2, 320.1, 247.6, 640, 480),
    'ros': Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480),
}
TUM_DEPTH_FACTOR = 5000.0


def read_stamped_list(path: Path) -> list[tuple[float, str]]:
    """`timestamp path` lines of rgb.txt / depth.txt."""
    entries = []
    for number, line in enumerate(read_list_file(path), start=1):
        words = line.split()
        try:
            entries.append((float(words[0]), words[1]))
        except (ValueError, IndexError):
            raise DatasetError(f'{path}: line {number} {line!r} is not "timestamp path"'
                               ) from None
    return entries


def resolve_calibration(calibration: Union[str, Intrinsics, PathLike, None],
                        root: Path) -> Intrinsics:
    """The colour intrinsics for a TUM sequence (see the module docstring)."""
    if isinstance(calibration, Intrinsics):
        return calibration
    if calibration is None or calibration == 'auto':
        name = root.resolve().name.lower()
        for number in ('1', '2', '3'):
            if f'freiburg{number}' in name or f'fr{number}_' in name:
                return TUM_CALIBRATIONS[f'fr{number}']
        LOGGER.warning('%s: sequence name does not say freiburg1/2/3; using the ROS default '
                       'Kinect intrinsics 525/525/319.5/239.5 (pass calibration=...)', root)
        return TUM_CALIBRATIONS['ros']
    if str(calibration) in TUM_CALIBRATIONS:
        return TUM_CALIBRATIONS[str(calibration)]
    path = Path(calibration)
    if path.is_file():
        from depth_estimation.io import read_intrinsics_file

        try:
            return read_intrinsics_file(path)
        except ValueError as error:
            raise DatasetError(str(error)) from None
    raise DatasetError(f'calibration must be fr1, fr2, fr3, ros, auto, Intrinsics or a camera '
                       f'file; got {calibration!r}')


class TUMDataset(RGBDDataset):
    """One TUM-format sequence (see the module docstring)."""

    def __init__(self, root: PathLike,
                 calibration: Union[str, Intrinsics, PathLike, None] = 'auto',
                 max_difference: float = 0.02, depth_factor: float = TUM_DEPTH_FACTOR,
                 skip_broken: bool = False, name: Optional[str] = None) -> None:
        self.root = Path(root)
        self.skip_broken = bool(skip_broken)
        self.depth_factor = float(depth_factor)
        self.name = name or f'tum:{self.root.name}'
        self.min_depth, self.max_depth, self.eval_crop = 1e-3, 10.0, None
        self.intrinsics = resolve_calibration(calibration, self.root)
        colour = read_stamped_list(self.root / 'rgb.txt')
        depth = read_stamped_list(self.root / 'depth.txt')
        pairs = associate_stamps([s for s, _ in colour], [s for s, _ in depth], max_difference)
        if not pairs:
            raise DatasetError(f'{self.root}: no rgb.txt / depth.txt pair is closer than '
                               f'{max_difference} s')
        self.pairs = [(colour[i], depth[j]) for i, j in pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def sample_name(self, index: int) -> str:
        return f'{self.root.name}/{self.pairs[index][0][0]:.6f}'

    def timestamps(self, index: int) -> tuple[float, float]:
        """(colour, depth) timestamps in seconds of sample `index`."""
        (colour_stamp, _), (depth_stamp, _) = self.pairs[index]
        return colour_stamp, depth_stamp

    def _load(self, index: int) -> RGBDSample:
        (_, colour_file), (_, depth_file) = self.pairs[index]
        image_path, depth_path = self.root / colour_file, self.root / depth_file
        image = read_rgb_file(image_path)
        raw = read_depth_raw(depth_path)
        check_same_size(image, raw, image_path, depth_path)
        depth = scale_depth(raw, 1.0 / self.depth_factor)
        height, width = depth.shape
        intrinsics = self.intrinsics.scaled(width, height)
        return RGBDSample(image=image, depth=depth, intrinsics=intrinsics,
                          name=self.sample_name(index))


__all__ = ['TUMDataset', 'TUM_CALIBRATIONS', 'resolve_calibration']
