"""TUM RGB-D benchmark sequences (and anything written in their format).

Layout (https://cvg.cit.tum.de/data/datasets/rgbd-dataset/file_formats): colour 8-bit PNG (or
JPEG), depth 16-bit PNG with 5000 units per metre (0 = missing), registered to the colour camera.
Which colour frame goes with which depth frame is read from the first of these that the root
holds:

- `associations.txt`: the output of the benchmark's associate.py, lines
  `rgb_stamp rgb_path depth_stamp depth_path`, used as they are;
- `rgb.txt` + `depth.txt`: lines `timestamp path`, paired as associate.py does (closest stamps
  first, each frame used once, pairs further apart than `max_difference`, default 0.02 s, dropped);
- `pairs.txt`: lines `rgb_path depth_path [anything else]` (a keyframe subset, such as the
  fr3_cabinet keyframes of Cube SLAM), the timestamp taken from the colour file name
  (`0003_1341841280.8507.jpg` -> 1341841280.8507; the line number when the name holds none).

Paths are relative to the root; '#' lines are comments.

Calibration (`calibration`): 'fr1', 'fr2' or 'fr3' (the benchmark's published colour intrinsics),
'ros' (the ROS default 525 / 525 / 319.5 / 239.5 that TUM documents as the fallback), an
`Intrinsics`, or a camera file (ROS camera_info YAML, `fx fy cx cy width height` JSON, ...). The
default ('auto') reads `intrinsics.json` in the root when there is one, else takes frN from
'freiburgN' / 'frN_' in the sequence folder name, else the ROS default, with a warning. A
`depth_scale` in that intrinsics.json (units per metre) replaces the default 5000 unless
`depth_factor` is given. Lens distortion (fr1 / fr2 publish small coefficients) is ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any, Optional, Union

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


# ((colour stamp, colour path), (depth stamp, depth path)), paths relative to the root
Pair = tuple[tuple[float, str], tuple[float, str]]
INTRINSICS_FILE = 'intrinsics.json'
_NAME_STAMP = re.compile(r'(\d+\.\d+)$')


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


def read_associations(path: Path) -> list[Pair]:
    """`rgb_stamp rgb_path depth_stamp depth_path` lines (associate.py output)."""
    pairs = []
    for number, line in enumerate(read_list_file(path), start=1):
        words = line.split()
        try:
            pairs.append(((float(words[0]), words[1]), (float(words[2]), words[3])))
        except (ValueError, IndexError):
            raise DatasetError(f'{path}: line {number} {line!r} is not "rgb_stamp rgb_path '
                               'depth_stamp depth_path"') from None
    return pairs


def read_pairs_list(path: Path) -> list[Pair]:
    """`rgb_path depth_path [...]` lines; both stamps from the colour file name."""
    pairs = []
    for number, line in enumerate(read_list_file(path), start=1):
        words = line.split()
        if len(words) < 2:
            raise DatasetError(f'{path}: line {number} {line!r} is not "rgb_path depth_path"')
        match = _NAME_STAMP.search(Path(words[0]).stem)
        stamp = float(match.group(1)) if match else float(number)
        pairs.append(((stamp, words[0]), (stamp, words[1])))
    return pairs


def has_pairing(root: Path) -> bool:
    """Whether `root` holds one of the pairing files a TUM sequence is read from."""
    return ((root / 'associations.txt').is_file() or (root / 'pairs.txt').is_file()
            or ((root / 'rgb.txt').is_file() and (root / 'depth.txt').is_file()))


def pair_frames(root: Path, max_difference: float) -> list[Pair]:
    """The colour / depth pairs of a sequence, sorted by colour time (see the module docstring)."""
    if (root / 'associations.txt').is_file():
        pairs = read_associations(root / 'associations.txt')
    elif (root / 'rgb.txt').is_file() and (root / 'depth.txt').is_file():
        colour = read_stamped_list(root / 'rgb.txt')
        depth = read_stamped_list(root / 'depth.txt')
        pairs = [(colour[i], depth[j]) for i, j in associate_stamps(
            [s for s, _ in colour], [s for s, _ in depth], max_difference)]
        if not pairs:
            raise DatasetError(f'{root}: no rgb.txt / depth.txt pair is closer than '
                               f'{max_difference} s')
    elif (root / 'pairs.txt').is_file():
        pairs = read_pairs_list(root / 'pairs.txt')
    else:
        raise DatasetError(f'{root}: no associations.txt, rgb.txt + depth.txt or pairs.txt')
    if not pairs:
        raise DatasetError(f'{root}: the pairing file lists no frames')
    return sorted(pairs, key=lambda pair: pair[0][0])


def read_sequence_info(root: Path) -> dict[str, Any]:
    """The parsed intrinsics.json of a sequence folder ({} when there is none)."""
    path = root / INTRINSICS_FILE
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DatasetError(f'{path}: cannot read the JSON ({error})') from None
    if not isinstance(info, dict):
        raise DatasetError(f'{path}: expected a JSON object')
    return info


def _camera_file(path: Path) -> Intrinsics:
    from depth_estimation.io import read_intrinsics_file

    try:
        return read_intrinsics_file(path)
    except ValueError as error:
        raise DatasetError(str(error)) from None


def resolve_calibration(calibration: Union[str, Intrinsics, PathLike, None],
                        root: Path) -> Intrinsics:
    """The colour intrinsics for a TUM sequence (see the module docstring)."""
    if isinstance(calibration, Intrinsics):
        return calibration
    if calibration is None or calibration == 'auto':
        if (root / INTRINSICS_FILE).is_file():
            return _camera_file(root / INTRINSICS_FILE)
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
        return _camera_file(path)
    raise DatasetError(f'calibration must be fr1, fr2, fr3, ros, auto, Intrinsics or a camera '
                       f'file; got {calibration!r}')


class TUMDataset(RGBDDataset):
    """One TUM-format sequence (see the module docstring)."""

    def __init__(self, root: PathLike,
                 calibration: Union[str, Intrinsics, PathLike, None] = 'auto',
                 max_difference: float = 0.02, depth_factor: Optional[float] = None,
                 skip_broken: bool = False, name: Optional[str] = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f'{self.root}: TUM sequence folder does not exist')
        self.skip_broken = bool(skip_broken)
        if depth_factor is None:
            depth_factor = read_sequence_info(self.root).get('depth_scale', TUM_DEPTH_FACTOR)
        try:
            self.depth_factor = float(depth_factor)
        except (TypeError, ValueError):
            raise DatasetError(f'{self.root}: depth factor {depth_factor!r} is not a number'
                               ) from None
        if not self.depth_factor > 0:
            raise DatasetError(f'{self.root}: depth factor must be positive, got '
                               f'{self.depth_factor}')
        self.name = name or f'tum:{self.root.name}'
        self.min_depth, self.max_depth, self.eval_crop = 1e-3, 10.0, None
        self.intrinsics = resolve_calibration(calibration, self.root)
        self.pairs = pair_frames(self.root, max_difference)

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


__all__ = ['TUMDataset', 'TUM_CALIBRATIONS', 'has_pairing', 'pair_frames', 'resolve_calibration']
