"""Real RGB-D sequences shipped with the package (resources/sequences/<name>/).

Each is a folder in the plain RGB-D folder format (colour, 16-bit depth, dataset.yaml with the
intrinsics and depth scale) with a ROS `camera_info.yaml`, the original timestamps
(`associations.txt`) and a README.md giving source, licence and changes. The colour images alone,
`rgb/`, sort by time, so an image-folder player can publish them as a camera.
"""

from __future__ import annotations

from pathlib import Path

from depth_estimation.datasets.base import DatasetError
from depth_estimation.datasets.folder import FolderDataset, METADATA_FILE

SEQUENCE_DIR = Path(__file__).resolve().parents[1] / 'resources' / 'sequences'
DEMO_SEQUENCE = 'tum_fr2_desk'
CAMERA_INFO_FILE = 'camera_info.yaml'


def sequence_names() -> list[str]:
    """Names of the shipped sequences, sorted."""
    return sorted(path.name for path in SEQUENCE_DIR.iterdir()
                  if (path / METADATA_FILE).is_file())


def sequence_root(name: str = DEMO_SEQUENCE) -> Path:
    """The folder of a shipped sequence; DatasetError naming the ones there are."""
    root = SEQUENCE_DIR / name
    if not (root / METADATA_FILE).is_file():
        raise DatasetError(f'{root}: no shipped sequence {name!r} (there are: '
                           f'{", ".join(sequence_names()) or "none"})')
    return root


def open_sequence(name: str = DEMO_SEQUENCE) -> FolderDataset:
    """A shipped sequence as a dataset: RGB, depth in metres and intrinsics, in time order."""
    return FolderDataset(sequence_root(name))


__all__ = ['CAMERA_INFO_FILE', 'DEMO_SEQUENCE', 'SEQUENCE_DIR', 'open_sequence', 'sequence_names',
           'sequence_root']
