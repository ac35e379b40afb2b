"""Real RGB-D frames from ../shared/data and model helpers for the refinement benchmarks.

The shared dataset package (depth_estimation/datasets) is being written concurrently; these
loaders read the few folders the refinement measurements need, directly, following
../shared/data/MANIFEST.md (depth scales, intrinsics). Benchmarks only: nothing imports this.

The model measured is `REFINEMENT_MODEL` (a checkpoint, default outputs/zoedepth_fastdepth_real.pt:
ZoeDepth on FastDepth trained on the real-data split, TUM fr1_rpy and fr3_cabinet only), or
`refinement.py --model`. 7-Scenes redkitchen (every 2nd frame 0..598 in ../shared) is
evaluation-only for that model; frames 440..598 are the ones the scripts use, also held out from
the tiny 7-Scenes model (benchmarks/train_refinement_model.py: frames 0..418 train it, 420..438
are a gap). TUM fr2_desk and fr1_desk (tabletops, evaluation-only in the split) are the scenes
the real-data model finds hardest.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from depth_estimation.datasets.base import read_depth_png_scaled, read_rgb_file  # noqa: E402
from depth_estimation.geometry import Intrinsics  # noqa: E402

SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'
# REFINEMENT_OUTPUT=<folder>: where the JSON and plots go (default outputs/refinement)
OUTPUT_DIR = Path(os.environ.get('REFINEMENT_OUTPUT', REPO_ROOT / 'outputs' / 'refinement'))
# the real-data model; REFINEMENT_MODEL=<checkpoint> (or refinement.py --model) measures another,
# e.g. outputs/refinement/tiny_7scenes.pt (benchmarks/train_refinement_model.py)
DEFAULT_MODEL = REPO_ROOT / 'outputs' / 'zoedepth_fastdepth_real.pt'
MODEL_PATH = Path(os.environ.get('REFINEMENT_MODEL', DEFAULT_MODEL)).resolve()
SEVENSCENES_FOCAL = 585.0  # fx = fy at 640 x 480 (camera-intrinsics.txt)
# REFINEMENT_QUICK=1: every 8th held-out frame only, to check the scripts run (figures not valid)
QUICK = os.environ.get('REFINEMENT_QUICK', '') not in ('', '0')
TRAIN_LAST_FRAME = 418
HELD_OUT_FIRST_FRAME = 440


@dataclass
class Frame:
    """One RGB-D frame: RGB uint8 (H, W, 3), depth float32 metres (0 = no measurement)."""

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    max_depth: float = 10.0
    eval_crop: Optional[str] = None  # 'eigen' (NYU) | 'garg' (KITTI) | None
    pose: Optional[np.ndarray] = None  # 4 x 4 camera-to-world (7-Scenes)


def require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f'{path} is absent: these benchmarks need ../shared/data beside the repo')
    return path


def sevenscenes_frames(which: str = 'all') -> list[Frame]:
    """7-Scenes redkitchen frames: which = 'train' | 'held_out' | 'all'."""
    root = require(SHARED_DATA / 'sevenscenes_redkitchen' / 'frames')
    intrinsics = Intrinsics(SEVENSCENES_FOCAL, SEVENSCENES_FOCAL, 320.0, 240.0, 640, 480)
    frames = []
    for color in sorted(root.glob('frame-*.color.jpg')):
        number = int(color.name.split('.')[0].split('-')[1])
        if which == 'train' and number > TRAIN_LAST_FRAME:
            continue
        if which == 'held_out' and (number < HELD_OUT_FIRST_FRAME
                                    or QUICK and (number - HELD_OUT_FIRST_FRAME) % 16):
            continue
        stem = color.name[:-len('.color.jpg')]
        depth = read_depth_png_scaled(root / f'{stem}.depth.png', 1000.0)
        pose = np.loadtxt(root / f'{stem}.pose.txt').reshape(4, 4)
        frames.append(Frame(f'7scenes/{number:06d}', read_rgb_file(color), depth, intrinsics,
                            max_depth=10.0, pose=pose))
    return frames


def tum_frames(sequence: str) -> list[Frame]:
    """A TUM RGB-D sequence of ../shared/data/tum_rgbd (depth / 5000, the sequence's intrinsics),
    read with depth_estimation.datasets; with REFINEMENT_QUICK every 8th frame."""
    from depth_estimation.datasets import get_dataset

    dataset = get_dataset(str(require(SHARED_DATA / 'tum_rgbd' / sequence)))
    indices = range(0, len(dataset), 8 if QUICK else 1)
    return [Frame(f'tum/{sample.name}', sample.image, sample.depth, sample.intrinsics)
            for sample in (dataset[index] for index in indices)]


def _metric3d(folder: str, max_depth: float, eval_crop: str) -> list[Frame]:
    root = require(SHARED_DATA / 'metric3d_demo' / folder)
    annotations = json.loads((root / 'test_annotations.json').read_text())['files']
    frames = []
    for entry in sorted(annotations, key=lambda e: e['rgb']):
        rgb = read_rgb_file(root / Path(entry['rgb']).relative_to(f'data/{folder}'))
        depth_path = root / Path(entry['depth']).relative_to(f'data/{folder}')
        depth = read_depth_png_scaled(depth_path, entry['depth_scale'])
        fx, fy, cx, cy = entry['cam_in']
        intrinsics = Intrinsics(fx, fy, cx, cy, rgb.shape[1], rgb.shape[0])
        name = f"{folder.split('_')[0]}/{Path(entry['rgb']).stem}"
        frames.append(Frame(name, rgb, depth, intrinsics, max_depth, eval_crop))
    return frames


def nyu_frames() -> list[Frame]:
    """The 3 NYU Depth v2 test frames (Eigen crop, 10 m cap as in the ZoeDepth protocol)."""
    return _metric3d('nyu_demo', 10.0, 'eigen')


def kitti_frames() -> list[Frame]:
    """The 3 KITTI depth-benchmark frames (Garg crop, 80 m cap)."""
    return _metric3d('kitti_demo', 80.0, 'garg')


def tum_frame() -> Frame:
    """The TUM RGB-D frame of Open3D's test data (depth / 5000; sequence unknown, see MANIFEST).

    The intrinsics of the sequence are unknown: the ROS default 525 / 525 / 319.5 / 239.5 that
    the TUM documentation gives as the fallback is used (the fr1/fr2/fr3 values span 517-535).
    """
    root = require(SHARED_DATA / 'open3d_rgbd' / 'other_formats')
    depth = read_depth_png_scaled(root / 'TUM_depth.png', 5000.0)
    depth[depth > 4.0] = 0.0  # Open3D's depth_trunc for this format
    return Frame('tum/desk', read_rgb_file(root / 'TUM_color.png'), depth,
                 Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480), max_depth=10.0)


def realsense_frame() -> Frame:
    """The RealSense D435 recording: colour frame with its depth registered into it.

    The bag holds depth in the depth (left IR) camera (fx 390.4) and colour in the RGB camera
    (fx 613.2) with the depth-to-colour extrinsic (t = 14.3 mm, about 0.7 degrees); each depth
    pixel is back-projected, moved into the colour camera and projected there, the nearest kept
    (colour pixels between depth samples stay without ground truth).
    """
    from rosbags.highlevel import AnyReader

    from depth_estimation.pipeline.anchoring import project_points
    from depth_estimation.geometry import depth_to_points

    path = require(SHARED_DATA / 'realsense_librealsense_bag' / 'single_depth_color_640x480.bag')
    found: dict = {}
    with AnyReader([path]) as reader:
        for connection, _, raw in reader.messages():
            topic = connection.topic
            if topic.endswith(('image/data', 'camera_info', 'Color_0/tf/0')) and \
                    topic not in found:
                found[topic] = reader.deserialize(raw, connection.msgtype)
    depth_msg = found['/device_0/sensor_0/Depth_0/image/data']
    color_msg = found['/device_0/sensor_1/Color_0/image/data']
    depth_info = found['/device_0/sensor_0/Depth_0/info/camera_info']
    color_info = found['/device_0/sensor_1/Color_0/info/camera_info']
    extrinsic = found['/device_0/sensor_1/Color_0/tf/0']
    raw_depth = np.frombuffer(depth_msg.data, dtype='<u2').reshape(depth_msg.height,
                                                                   depth_msg.width)
    depth_m = raw_depth.astype(np.float32) * np.float32(0.001)  # Depth Units option: 0.001 m
    depth_k = Intrinsics.from_k(depth_info.K, depth_info.width, depth_info.height)
    color_k = Intrinsics.from_k(color_info.K, color_info.width, color_info.height)
    points = depth_to_points(np.where(raw_depth > 0, depth_m, np.nan), depth_k).reshape(-1, 3)
    q = extrinsic.rotation
    x, y, z, w = q.x, q.y, q.z, q.w
    rotation = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    t = extrinsic.translation
    moved = points @ rotation.T + np.array([t.x, t.y, t.z])
    registered = np.nan_to_num(project_points(moved, color_k), nan=0.0)
    rgb = np.frombuffer(color_msg.data, dtype=np.uint8).reshape(color_msg.height,
                                                                color_msg.width, 3)
    return Frame('realsense/d435', rgb.copy(), registered, color_k, max_depth=10.0)


def evaluation_mask(frame: Frame, min_depth: float = 1e-3) -> np.ndarray:
    """Valid ground truth in the evaluation crop, under the depth cap (ZoeDepth protocol)."""
    depth = frame.depth
    mask = (depth > min_depth) & (depth <= frame.max_depth) & np.isfinite(depth)
    height, width = depth.shape
    crop = np.zeros_like(mask)
    if frame.eval_crop == 'eigen':  # NYU 480 x 640: rows 45..470, columns 41..600
        crop[45:471, 41:601] = True
    elif frame.eval_crop == 'garg':
        crop[int(0.40810811 * height):int(0.99189189 * height),
             int(0.03594771 * width):int(0.96405229 * width)] = True
    else:
        crop[:] = True
    return mask & crop


def rel(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute relative error over the mask."""
    valid = mask & np.isfinite(pred) & (pred > 0)
    return float(np.mean(np.abs(pred[valid] - gt[valid]) / gt[valid]))


def delta1(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    valid = mask & np.isfinite(pred) & (pred > 0)
    ratio = np.maximum(pred[valid] / gt[valid], gt[valid] / pred[valid])
    return float(np.mean(ratio < 1.25))


class TorchModel:
    """A ZoeDepth checkpoint in the PyTorch backend of depth_estimation.inference (CPU).

    `predict(rgb)` returns depth and the confidence of every asked method at the image's size:
    the backend's depth, or with methods one forward pass through the backend's model and
    letterbox pre/post-processing.
    """

    def __init__(self, path: Optional[Path] = None, num_threads: int = 1) -> None:
        from depth_estimation.inference.torch_backend import TorchBackend

        path = path or MODEL_PATH
        if not Path(path).is_file():
            raise SystemExit(f'{path} is missing: copy the trained real-data model there (the '
                             'export/model_best.pt of its training run, docs/training.md) or set '
                             'REFINEMENT_MODEL=<checkpoint> (the tiny 7-Scenes model: '
                             '`.venv/bin/python benchmarks/train_refinement_model.py`)')
        self.backend = TorchBackend(path, num_threads=num_threads)
        self.config = self.backend.model.config
        self._cache: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}

    def predict_frame(self, frame: Frame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """`predict` with every confidence method on a dataset frame, cached by name.

        The scripts of refinement.py use the same frames.
        """
        from depth_estimation.model.confidence import METHODS

        if frame.name not in self._cache:
            self._cache[frame.name] = self.predict(frame.rgb, METHODS)
        return self._cache[frame.name]

    def predict(self, rgb: np.ndarray, methods: tuple[str, ...] = ()
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if not methods:
            return self.backend.infer(rgb), {}
        import torch

        from depth_estimation.model.confidence import confidence_from_bins

        preprocessor = self.backend.preprocessor
        tensor, box = preprocessor.prepare(rgb)  # (1, 3, h, w) network input
        with torch.inference_mode():
            outputs = self.backend.model.forward_outputs(torch.from_numpy(tensor))
            # a head below the output resolution (FastDepth core) scores its own depth, and the
            # map is resized to the output, as DepthWithConfidence exports it
            same_size = outputs.probs.shape[-2:] == outputs.depth.shape[-2:]
            confidences = {m: torch.nn.functional.interpolate(
                confidence_from_bins(outputs.bin_centers, outputs.probs,
                                     outputs.depth if same_size else None, m),
                size=outputs.depth.shape[-2:], mode='bilinear', align_corners=False).numpy()
                for m in methods}
        depth = preprocessor.restore(outputs.depth.numpy(), box)  # (H, W) metres
        return depth, {m: preprocessor.restore(c, box) for m, c in confidences.items()}


_MODEL: Optional[TorchModel] = None


def shared_model() -> TorchModel:
    """One loaded model per process (the scripts of refinement.py share it)."""
    global _MODEL
    if _MODEL is None:
        _MODEL = TorchModel()
    return _MODEL


def describe_model(path: Optional[Path] = None) -> dict:
    """What the measured model is: preset, training data and steps (from its checkpoint)."""
    from depth_estimation.model.checkpoint import read_checkpoint

    path = path or MODEL_PATH
    data = read_checkpoint(path)
    return {'path': str(path), 'preset': data['config']['name'],
            **data.get('extra', {})}


def pyplot():  # noqa: ANN201 - the matplotlib.pyplot module, headless
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, name: str) -> Path:  # noqa: ANN001 - a matplotlib Figure
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / name
    figure.savefig(path, dpi=110, bbox_inches='tight')
    pyplot().close(figure)
    return path


def write_json(name: str, data: dict) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / name
    path.write_text(json.dumps(data, indent=1, default=float))
    return path
