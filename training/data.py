"""Training data: RGB-D datasets (depth_estimation.datasets) as torch datasets, with ZoeDepth's
augmentations, intrinsics kept consistent, and a LightningDataModule.

Augmentations follow ZoeDepth's `DataLoadPreprocess` (zoedepth/data/data_mono.py) in its order:
small random rotation (+-1 degree for NYU and KITTI), optional random crop (off for NYU),
horizontal flip (p 0.5), then with p 0.5 a colour jitter: gamma U(0.9, 1.1), brightness
U(0.75, 1.25) for NYU (U(0.9, 1.1) elsewhere) and a per-channel colour gain U(0.9, 1.1), clipped to
[0, 1]. Depth and labels are warped with nearest neighbour; pixels rotated in from outside are
invalid (depth 0, label -1).

Intrinsics follow every geometric step (pixel-centre convention of depth_estimation.geometry):
flip cx' = W - 1 - cx; crop cx' = cx - left, cy' = cy - top; resize via `Intrinsics.scaled`.
The rotation turns the image about the principal point, which is a pure camera roll (intrinsics and
depth unchanged) when fx == fy; ZoeDepth turns about the image centre instead (the same for a
centred principal point).

A mixture of datasets keeps each frame's own intrinsics and depth scale (each reader returns metres
and the intrinsics of its camera). A split file (`training/splits/*.yaml`, `read_split`) says which
frames of which sources train, validate or are only evaluated; `mixture='weighted'` draws training
frames so that each source gets its `weight` share of every epoch, whatever its size.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, WeightedRandomSampler
import yaml

from depth_estimation.datasets import DatasetError, get_dataset, RGBDDataset, RGBDSample
from depth_estimation.geometry import Intrinsics

LOGGER = logging.getLogger('training.data')
IGNORE_LABEL = -1
# Keys of a dataset spec that training reads; every other key goes to get_dataset().
SPEC_KEYS = ('dataset', 'start', 'stop', 'step', 'supervision', 'labels', 'mask_min_depth',
             'mask_max_depth', 'brightness_range', 'source', 'weight', 'frames')
SUPERVISION = ('metric', 'relative')
MIXTURES = ('proportional', 'weighted')
SPLIT_FORMAT = 'depth_estimation.real_split/1'


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """ZoeDepth's training augmentations (defaults: its NYU settings)."""

    flip_probability: float = 0.5
    rotation_degrees: float = 1.0  # uniform in [-degrees, +degrees]; 0 turns it off
    crop_size: Optional[tuple[int, int]] = None  # (height, width) random crop in source pixels
    colour_probability: float = 0.5
    gamma_range: tuple[float, float] = (0.9, 1.1)
    brightness_range: tuple[float, float] = (0.75, 1.25)  # NYU; ZoeDepth uses (0.9, 1.1) elsewhere
    colour_range: tuple[float, float] = (0.9, 1.1)  # per-channel gain


@dataclasses.dataclass
class Frame:
    """A sample being transformed: float RGB in [0, 1], depth, labels and intrinsics."""

    image: np.ndarray  # (H, W, 3) float32 in [0, 1]
    depth: np.ndarray  # (H, W) float32 metres, 0 = invalid
    labels: np.ndarray  # (H, W) int64, IGNORE_LABEL = no label
    intrinsics: Optional[Intrinsics]

    @property
    def size(self) -> tuple[int, int]:
        return self.depth.shape[0], self.depth.shape[1]


# --- geometric and photometric steps (numpy + OpenCV) ---

def rotate(frame: Frame, degrees: float) -> Frame:
    """Turn the frame by `degrees` (counter-clockwise, as PIL's rotate) about the principal point.
    """
    if degrees == 0.0:
        return frame
    height, width = frame.size
    if frame.intrinsics is not None:
        centre = (frame.intrinsics.cx, frame.intrinsics.cy)
    else:
        centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)  # (2, 3)
    size = (width, height)
    image = cv2.warpAffine(frame.image, matrix, size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0.0, 0.0, 0.0))
    depth = cv2.warpAffine(frame.depth, matrix, size, flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    labels = cv2.warpAffine(frame.labels.astype(np.float32), matrix, size,
                            flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=float(IGNORE_LABEL))
    return Frame(image, depth, labels.astype(np.int64), frame.intrinsics)


def crop(frame: Frame, top: int, left: int, height: int, width: int) -> Frame:
    """Cut a window; the principal point moves by (-left, -top)."""
    intrinsics = frame.intrinsics
    if intrinsics is not None:
        intrinsics = dataclasses.replace(intrinsics, cx=intrinsics.cx - left,
                                         cy=intrinsics.cy - top, width=width, height=height)
    window = (slice(top, top + height), slice(left, left + width))
    return Frame(frame.image[window], frame.depth[window], frame.labels[window], intrinsics)


def flip(frame: Frame) -> Frame:
    """Mirror left-right; pixel u goes to W - 1 - u, so cx' = W - 1 - cx."""
    intrinsics = frame.intrinsics
    if intrinsics is not None:
        intrinsics = dataclasses.replace(intrinsics, cx=intrinsics.width - 1 - intrinsics.cx)
    return Frame(np.ascontiguousarray(frame.image[:, ::-1]),
                 np.ascontiguousarray(frame.depth[:, ::-1]),
                 np.ascontiguousarray(frame.labels[:, ::-1]), intrinsics)


def resize(frame: Frame, height: int, width: int, resize_depth: bool = True) -> Frame:
    """Resize the image (area when shrinking, else bilinear); depth and labels nearest."""
    if frame.size == (height, width):
        return frame
    shrinking = height < frame.size[0]
    image = cv2.resize(frame.image, (width, height),
                       interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    depth, labels = frame.depth, frame.labels
    if resize_depth:
        depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
        labels = cv2.resize(labels.astype(np.float32), (width, height),
                            interpolation=cv2.INTER_NEAREST).astype(np.int64)
    intrinsics = frame.intrinsics.scaled(width, height) if frame.intrinsics is not None else None
    return Frame(image, depth, labels, intrinsics)


def jitter_colour(image: np.ndarray, gamma: float, brightness: float,
                  gains: Sequence[float]) -> np.ndarray:
    """ZoeDepth's `augment_image`: clip(image ** gamma * brightness * gain_c, 0, 1)."""
    augmented = np.power(image, gamma) * brightness
    augmented = augmented * np.asarray(gains, dtype=np.float32).reshape(1, 1, 3)
    return np.clip(augmented, 0.0, 1.0).astype(np.float32)


def augment(frame: Frame, options: Augmentation, rng: np.random.Generator,
            brightness_range: Optional[tuple[float, float]] = None) -> Frame:
    """Apply ZoeDepth's training augmentations in its order (see the module docstring)."""
    if options.rotation_degrees > 0:
        frame = rotate(frame, float(rng.uniform(-1.0, 1.0)) * options.rotation_degrees)
    if options.crop_size is not None:
        crop_height, crop_width = options.crop_size
        height, width = frame.size
        if crop_height > height or crop_width > width:
            raise DatasetError(f'crop {crop_height}x{crop_width} is larger than the frame '
                               f'{height}x{width}')
        top = int(rng.integers(0, height - crop_height + 1))
        left = int(rng.integers(0, width - crop_width + 1))
        frame = crop(frame, top, left, crop_height, crop_width)
    if rng.random() < options.flip_probability:
        frame = flip(frame)
    if rng.random() < options.colour_probability:
        low, high = brightness_range or options.brightness_range
        image = jitter_colour(frame.image, float(rng.uniform(*options.gamma_range)),
                              float(rng.uniform(low, high)),
                              rng.uniform(*options.colour_range, size=3))
        frame = dataclasses.replace(frame, image=image)
    return frame


# --- torch datasets ---

class DepthTrainingDataset(Dataset):
    """An `RGBDDataset` as tensors for the network.

    Each item: image (3, h, w) normalised for the model, depth (1, H, W) metres, mask (1, H, W)
    bool (min_depth < depth < max_depth, ZoeDepth's training mask), segmentation (H, W) int64
    (-1 = ignore), intrinsics (4,) fx, fy, cx, cy of the network image (NaN when unknown),
    metric (bool: SILog on metric depth, else the scale-and-shift-invariant loss), name.
    (H, W) is the network size (h, w) with `depth_resolution='network'`, the source size with
    'native' (ZoeDepth: the prediction is upsampled to the ground truth in the loss).
    """

    def __init__(self, dataset: RGBDDataset, input_size: tuple[int, int],
                 mean: Sequence[float], std: Sequence[float],
                 augmentation: Optional[Augmentation] = None, supervision: str = 'metric',
                 labels_dir: Optional[Union[str, Path]] = None,
                 mask_min_depth: Optional[float] = None, mask_max_depth: Optional[float] = None,
                 depth_resolution: str = 'network',
                 brightness_range: Optional[tuple[float, float]] = None,
                 indices: Optional[Sequence[int]] = None, cache: bool = False) -> None:
        if supervision not in SUPERVISION:
            raise ValueError(f'supervision must be one of {SUPERVISION}, got {supervision!r}')
        if depth_resolution not in ('network', 'native'):
            raise ValueError(f"depth_resolution must be 'network' or 'native', got "
                             f'{depth_resolution!r}')
        self.dataset = dataset
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.mean = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
        self.augmentation = augmentation
        self.supervision = supervision
        self.labels_dir = Path(labels_dir) if labels_dir else None
        self.min_depth = float(mask_min_depth if mask_min_depth is not None
                               else dataset.min_depth)
        self.max_depth = float(mask_max_depth if mask_max_depth is not None
                               else dataset.max_depth)
        self.depth_resolution = depth_resolution
        self.brightness_range = tuple(brightness_range) if brightness_range else None
        self.indices = list(indices) if indices is not None else list(range(len(dataset)))
        if not self.indices:
            raise DatasetError(f'{dataset.name}: the selected range holds no samples')
        self.cache: Optional[dict[int, RGBDSample]] = {} if cache else None

    def __len__(self) -> int:
        return len(self.indices)

    def _sample(self, index: int) -> RGBDSample:
        source_index = self.indices[index]
        if self.cache is not None and source_index in self.cache:
            return self.cache[source_index]
        sample = self.dataset[source_index]
        if self.cache is not None:
            self.cache[source_index] = sample
        return sample

    def _labels(self, sample: RGBDSample) -> np.ndarray:
        """Teacher maps (labels_dir/<name>.png) first, then the dataset's labels, else ignore."""
        height, width = sample.depth.shape
        if self.labels_dir is not None:
            path = self.labels_dir / f'{sample.name}.png'
            raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if raw is None:
                raise DatasetError(f'{path}: teacher label map is missing or unreadable')
            if raw.ndim != 2:
                raise DatasetError(f'{path}: a label map has one channel, got shape {raw.shape}')
            if raw.shape != (height, width):
                raw = cv2.resize(raw, (width, height), interpolation=cv2.INTER_NEAREST)
            return raw.astype(np.int64)
        if sample.segmentation is not None:
            return sample.segmentation.astype(np.int64)
        return np.full((height, width), IGNORE_LABEL, dtype=np.int64)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self._sample(index)
        frame = Frame(sample.image.astype(np.float32) / 255.0, sample.depth.copy(),
                      self._labels(sample), sample.intrinsics)
        if self.augmentation is not None:
            # A per-item generator drawn from torch's RNG: seeded by seed_everything in the main
            # process and per worker by the DataLoader, so runs repeat exactly.
            rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,)).item()))
            frame = augment(frame, self.augmentation, rng, self.brightness_range)
        native_depth, native_labels = frame.depth, frame.labels
        frame = resize(frame, *self.input_size)
        if self.depth_resolution == 'native':
            depth, labels = native_depth, native_labels
        else:
            depth, labels = frame.depth, frame.labels
        image = (frame.image.transpose(2, 0, 1) - self.mean) / self.std  # (3, h, w)
        with np.errstate(invalid='ignore'):
            mask = (depth > self.min_depth) & (depth < self.max_depth) & np.isfinite(depth)
        intrinsics = (np.array([frame.intrinsics.fx, frame.intrinsics.fy, frame.intrinsics.cx,
                                frame.intrinsics.cy], dtype=np.float32)
                      if frame.intrinsics is not None else np.full(4, np.nan, np.float32))
        return {
            'image': torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            'depth': torch.from_numpy(np.nan_to_num(depth, nan=0.0)[None].astype(np.float32)),
            'mask': torch.from_numpy(mask[None]),
            'segmentation': torch.from_numpy(labels),
            'intrinsics': torch.from_numpy(intrinsics),
            'metric': self.supervision == 'metric',
            'name': sample.name,
            # the evaluation protocol of the source dataset, for validation metrics
            'eval_crop': self.dataset.eval_crop or '',
            'eval_dataset': 'kitti' if self.dataset.name.startswith('kitti') else 'nyu',
            'eval_min_depth': float(self.dataset.min_depth),
            'eval_max_depth': float(self.dataset.max_depth),
        }


def open_spec(spec: Union[str, dict[str, Any]]) -> tuple[RGBDDataset, dict[str, Any]]:
    """A dataset spec -> the reader and the training options of the spec.

    A spec is a dataset name or path, or a mapping: `dataset` (name, path or name:path), optional
    `start` / `stop` / `step` (which samples), `supervision` ('metric' or 'relative'), `labels`
    (folder of teacher label PNGs named <sample name>.png), `mask_min_depth` / `mask_max_depth`,
    `brightness_range`; every other key is a reader option (see depth_estimation.datasets).
    """
    if isinstance(spec, str):
        spec = {'dataset': spec}
    spec = dict(spec)
    if 'dataset' not in spec:
        raise ValueError(f'a dataset spec needs a `dataset` key (name or path), got {spec}')
    reader_options = {k: v for k, v in spec.items() if k not in SPEC_KEYS}
    dataset = get_dataset(spec['dataset'], **reader_options)
    options = {k: spec[k] for k in SPEC_KEYS if k in spec and k != 'dataset'}
    return dataset, options


def build_dataset(spec: Union[str, dict[str, Any]], input_size: tuple[int, int],
                  mean: Sequence[float], std: Sequence[float],
                  augmentation: Optional[Augmentation], depth_resolution: str,
                  cache: bool = False) -> DepthTrainingDataset:
    """The torch dataset of a spec; DatasetError when its `frames` do not match the reader."""
    dataset, options = open_spec(spec)
    indices = range(len(dataset))[slice(options.get('start'), options.get('stop'),
                                        options.get('step'))]
    expected = options.get('frames')
    if expected is not None and len(indices) > 0:
        found = [dataset.sample_name(indices[0]), dataset.sample_name(indices[-1])]
        if found != [str(name) for name in expected]:
            raise DatasetError(f'{dataset.name}: the range {indices.start}:{indices.stop} runs '
                               f'from {found[0]} to {found[1]}, the split expects '
                               f'{expected[0]} to {expected[-1]} (different data?)')
    return DepthTrainingDataset(
        dataset, input_size, mean, std, augmentation=augmentation,
        supervision=options.get('supervision', 'metric'), labels_dir=options.get('labels'),
        mask_min_depth=options.get('mask_min_depth'),
        mask_max_depth=options.get('mask_max_depth'), depth_resolution=depth_resolution,
        brightness_range=options.get('brightness_range'), indices=indices, cache=cache)


@dataclasses.dataclass
class Split:
    """A split file's dataset specs per set, and the data it leaves out with the reason."""

    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    evaluate: list[dict[str, Any]]
    excluded: dict[str, str]  # path (under the data root) -> why no set uses it


def read_split(path: Union[str, Path], data_root: Union[str, Path, None] = None) -> Split:
    """Read a split file (format in training/splits/real_rgbd.yaml) into dataset specs.

    Each spec is its source's entry (reader options, `weight`) updated by the set entry (`start`,
    `stop`, `frames`), with `source` set and `dataset` resolved against `data_root`.
    """
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise DatasetError(f'{path}: cannot read the split file ({error})') from None
    if not isinstance(content, dict) or content.get('format') != SPLIT_FORMAT:
        raise DatasetError(f'{path}: not a split file (format: {SPLIT_FORMAT} expected)')
    root = Path(data_root) if data_root is not None else Path('.')
    sources = content.get('sources') or {}
    sets: dict[str, list[dict[str, Any]]] = {}
    for set_name in ('train', 'val', 'evaluate'):
        sets[set_name] = []
        for entry in content.get(set_name) or []:
            name = entry.get('source') if isinstance(entry, dict) else None
            if name not in sources or 'dataset' not in sources[name]:
                raise DatasetError(f'{path}: {set_name} entry {entry!r} does not name one of the '
                                   f'sources {sorted(sources)}')
            spec = {**sources[name], **entry, 'source': name}
            spec['dataset'] = str(root / spec['dataset'])
            sets[set_name].append(spec)
    excluded = {str(root / key): str(reason)
                for key, reason in (content.get('excluded') or {}).items()}
    return Split(excluded=excluded, **sets)


def mixture_weights(parts: Sequence[Dataset], specs: Sequence[Union[str, dict[str, Any]]]
                    ) -> torch.Tensor:
    """(N,) draw weight per sample of the concatenated `parts`: a source's `weight` share of the
    draws, split evenly among its samples. A source is the spec's `source` (else its dataset)."""
    names, weights, counts = [], {}, {}
    for part, spec in zip(parts, specs):
        spec = {'dataset': spec} if isinstance(spec, str) else spec
        name = str(spec.get('source') or spec['dataset'])
        weight = float(spec.get('weight', 1.0))
        if not weight > 0 or weights.setdefault(name, weight) != weight:
            raise ValueError(f'source {name}: weight must be positive and the same in every '
                             f'entry, got {weight} and {weights[name]}')
        counts[name] = counts.get(name, 0) + len(part)
        names.append(name)
    total = sum(weights.values())
    return torch.cat([torch.full((len(part),), weights[name] / total / counts[name],
                                 dtype=torch.float64)
                      for part, name in zip(parts, names)])


class RGBDDataModule(L.LightningDataModule):
    """Train / validation loaders over one or more dataset specs (see `open_spec`).

    The network input size and normalisation come from the model being trained
    (`trainer.lightning_module.model.config`) unless given here. Validation frames are not
    augmented and keep their native depth resolution (metrics at ground-truth resolution, as
    ZoeDepth evaluates); with frames of different sizes keep `val_batch_size` at 1.
    """

    def __init__(self, train: Optional[list[Union[str, dict[str, Any]]]] = None,
                 val: Optional[list[Union[str, dict[str, Any]]]] = None,
                 split: Optional[str] = None, data_root: Optional[str] = None,
                 mixture: str = 'proportional',
                 batch_size: int = 16, val_batch_size: int = 1, num_workers: int = 4,
                 augment: bool = True, flip_probability: float = 0.5,
                 rotation_degrees: float = 1.0, crop_size: Optional[tuple[int, int]] = None,
                 colour_probability: float = 0.5,
                 gamma_range: tuple[float, float] = (0.9, 1.1),
                 brightness_range: tuple[float, float] = (0.75, 1.25),
                 colour_range: tuple[float, float] = (0.9, 1.1),
                 depth_resolution: str = 'native', cache: bool = False,
                 input_size: Optional[tuple[int, int]] = None,
                 mean: Optional[tuple[float, float, float]] = None,
                 std: Optional[tuple[float, float, float]] = None,
                 pin_memory: bool = True) -> None:
        """Datasets and augmentation; each argument is a YAML key under `data:`.

        Args:
            train: training dataset specs (concatenated), added to those of `split`.
            val: validation dataset specs, added to those of `split`; none: no validation.
            split: a split file (training/splits/*.yaml) giving the train and val specs.
            data_root: folder the split file's dataset paths are relative to.
            mixture: 'proportional' (every training frame once an epoch, shuffled) or
                'weighted' (draws with replacement, each source its `weight` share).
            batch_size: training batch size per device (ZoeDepth: 16 in total).
            val_batch_size: validation batch size.
            num_workers: DataLoader worker processes (0 loads in the training process).
            augment: apply ZoeDepth's augmentations to the training frames.
            flip_probability: horizontal flip probability.
            rotation_degrees: maximum absolute random rotation (ZoeDepth NYU/KITTI: 1.0).
            crop_size: (height, width) random crop in source pixels; None: no crop.
            colour_probability: probability of the gamma / brightness / colour jitter.
            gamma_range: gamma exponent range.
            brightness_range: brightness factor range (ZoeDepth: 0.75-1.25 NYU, 0.9-1.1 others).
            colour_range: per-channel gain range.
            depth_resolution: training targets at 'native' (source) or 'network' resolution.
            cache: keep decoded frames in memory (per worker); for small datasets and few cores.
            input_size: (height, width) network input; None: from the model config.
            mean: normalisation mean; None: from the model config.
            std: normalisation std; None: from the model config.
            pin_memory: pin host memory of batches (only used with a GPU).
        """
        super().__init__()
        if mixture not in MIXTURES:
            raise ValueError(f'mixture must be one of {MIXTURES}, got {mixture!r}')
        self.split = read_split(split, data_root) if split else None
        self.train_specs = (self.split.train if self.split else []) + list(train or [])
        self.val_specs = (self.split.val if self.split else []) + list(val or [])
        if not self.train_specs:
            raise ValueError('at least one training dataset is needed (train or split)')
        self.mixture = mixture
        self.train_weights: Optional[torch.Tensor] = None
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.num_workers = num_workers
        self.augmentation = Augmentation(
            flip_probability=flip_probability, rotation_degrees=rotation_degrees,
            crop_size=tuple(crop_size) if crop_size else None,
            colour_probability=colour_probability, gamma_range=tuple(gamma_range),
            brightness_range=tuple(brightness_range),
            colour_range=tuple(colour_range)) if augment else None
        self.depth_resolution = depth_resolution
        self.cache = cache
        self.input_size = tuple(input_size) if input_size else None
        self.mean = tuple(mean) if mean else None
        self.std = tuple(std) if std else None
        self.pin_memory = pin_memory
        self.train_dataset: Optional[Dataset] = None
        self.val_dataset: Optional[Dataset] = None

    def _preprocessing(self) -> tuple[tuple[int, int], tuple[float, ...], tuple[float, ...]]:
        config = None
        trainer = getattr(self, 'trainer', None)
        module = trainer.lightning_module if trainer is not None else None
        if module is not None and hasattr(module, 'model'):
            config = module.model.config
        if config is None and (self.input_size is None or self.mean is None or self.std is None):
            raise ValueError('input_size, mean and std are needed when the data module is used '
                             'without a depth model')
        input_size = self.input_size or config.input_size
        mean = self.mean or tuple(config.mean)
        std = self.std or tuple(config.std)
        return input_size, mean, std

    def setup(self, stage: Optional[str] = None) -> None:
        input_size, mean, std = self._preprocessing()
        if self.train_dataset is None and stage in (None, 'fit'):
            parts = [build_dataset(spec, input_size, mean, std, self.augmentation,
                                   self.depth_resolution, self.cache)
                     for spec in self.train_specs]
            self.train_dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
            if self.mixture == 'weighted':
                self.train_weights = mixture_weights(parts, self.train_specs)
            LOGGER.info('training samples: %d', len(self.train_dataset))
        if self.val_dataset is None and self.val_specs and stage in (None, 'fit', 'validate'):
            parts = [build_dataset(spec, input_size, mean, std, None, 'native', self.cache)
                     for spec in self.val_specs]
            self.val_dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool,
                drop_last: bool, sampler: Optional[Sampler] = None) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler,
                          num_workers=self.num_workers, drop_last=drop_last,
                          pin_memory=self.pin_memory and torch.cuda.is_available(),
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        drop_last = len(self.train_dataset) > self.batch_size
        if self.train_weights is None:
            return self._loader(self.train_dataset, self.batch_size, shuffle=True,
                                drop_last=drop_last)
        # As many draws an epoch as there are frames; torch's RNG (seed_everything) draws them.
        sampler = WeightedRandomSampler(self.train_weights, len(self.train_dataset),
                                        replacement=True)
        return self._loader(self.train_dataset, self.batch_size, shuffle=False,
                            drop_last=drop_last, sampler=sampler)

    def val_dataloader(self) -> Union[DataLoader, list]:
        if self.val_dataset is None:
            return []
        return self._loader(self.val_dataset, self.val_batch_size, shuffle=False,
                            drop_last=False)
