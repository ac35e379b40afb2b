"""The real-data training mixture: the written split (training/splits/real_rgbd.yaml) keeps its
evaluation-only frames out of training and validation, one batch of the real_rgbd config loads
with each source's intrinsics, and the weighted mixture draws each source its share.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO_ROOT, require_shared, SHARED_DATA
from depth_estimation.datasets import DatasetError, FolderWriter, get_dataset
from depth_estimation.geometry import Intrinsics
from training.data import build_dataset, mixture_weights, read_split, RGBDDataModule

SPLIT_FILE = REPO_ROOT / 'training' / 'splits' / 'real_rgbd.yaml'
REAL_CONFIG = REPO_ROOT / 'training' / 'configs' / 'real_rgbd.yaml'
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def _data_section() -> dict:
    data = yaml.safe_load(REAL_CONFIG.read_text())['data']
    data['data_root'] = str(REPO_ROOT / data['data_root'])
    data['split'] = str(REPO_ROOT / data['split'])
    return data


def _frame_fingerprints(spec: dict) -> dict[str, str]:
    """{sha256 of the depth values or of the colour pixels: sample name} of a spec's frames."""
    dataset = get_dataset(spec['dataset'], **{k: v for k, v in spec.items() if k in (
        'eval_crop',)})
    indices = range(len(dataset))[slice(spec.get('start'), spec.get('stop'), spec.get('step'))]
    fingerprints = {}
    for index in indices:
        sample = dataset[index]
        name = f'{spec["source"]}:{sample.name}'
        fingerprints[hashlib.sha256(sample.depth.tobytes()).hexdigest()] = name
        fingerprints[hashlib.sha256(sample.image.tobytes()).hexdigest()] = name
    return fingerprints


def test_split_never_trains_or_validates_on_an_evaluation_frame():
    """Compared by content (depth values and colour pixels), so a copy of an evaluation frame
    under another path or name would be caught as well."""
    split = read_split(SPLIT_FILE, SHARED_DATA)
    for spec in split.train + split.val + split.evaluate:
        require_shared(Path(spec['dataset']))
    sets = {}
    for set_name in ('train', 'val', 'evaluate'):
        sets[set_name] = {}
        for spec in getattr(split, set_name):
            sets[set_name].update(_frame_fingerprints(spec))
    seen_in_training = set(sets['train']) | set(sets['val'])
    leaks = sorted(sets['evaluate'][key] for key in set(sets['evaluate']) & seen_in_training)
    assert not leaks, leaks
    assert not set(sets['train']) & set(sets['val'])
    # 25 + 9 + 3 evaluation frames, each with a depth and a colour fingerprint.
    assert len(sets['evaluate']) == 2 * 37
    # The demo sequence and whole sequences are evaluation-only; the NYU frames too.
    assert {spec['source'] for spec in split.evaluate} == {'tum_fr2_desk', 'tum_fr1_desk',
                                                           'nyu_test'}
    used = [Path(spec['dataset']) for spec in split.train + split.val + split.evaluate]
    for excluded in map(Path, split.excluded):
        assert not any(excluded == path or excluded in path.parents for path in used)


def test_split_blocks_are_contiguous_and_apart():
    """7-Scenes and fr3_cabinet validation are whole blocks with a gap to every training frame."""
    split = read_split(SPLIT_FILE, SHARED_DATA)
    for source, gap in (('sevenscenes_redkitchen', 20), ('tum_fr3_cabinet', 2)):
        train = [range(s.get('start') or 0, s['stop']) for s in split.train
                 if s['source'] == source]
        val = [range(s['start'], s['stop']) for s in split.val if s['source'] == source]
        assert len(val) == 1 and val[0].step == 1
        assert min(abs(t - v) for block in train for t in block for v in val[0]) > gap


def test_real_config_loads_a_batch_with_each_sources_intrinsics():
    require_shared(SHARED_DATA / 'tum_rgbd')
    require_shared(SHARED_DATA / 'sevenscenes_redkitchen')
    data = dict(_data_section(), num_workers=0, augment=False)
    module = RGBDDataModule(**data, mean=MEAN, std=STD)
    module.setup('fit')
    height, width = data['input_size']
    assert (height, width) == (192, 256) and 4 * height == 3 * width
    parts = module.train_dataset.datasets
    expected = {'sevenscenes_redkitchen': (585.0, 585.0, 320.0, 240.0),
                'tum_fr1_rpy': (517.3, 516.5, 318.6, 255.3),
                'tum_fr3_cabinet': (535.4, 539.2, 320.1, 247.6)}
    for part, spec in zip(parts, module.train_specs):
        item = part[0]
        assert item['image'].shape == (3, height, width)
        assert item['depth'].shape == (1, height, width) and item['mask'].any()
        native = Intrinsics(*expected[spec['source']], 640, 480).scaled(width, height)
        np.testing.assert_allclose(item['intrinsics'].numpy(),
                                   [native.fx, native.fy, native.cx, native.cy], rtol=1e-6)
        depth = item['depth'][item['mask']]
        assert 0.5 < depth.median() < 3.0  # metres: each source's depth scale applied
    assert [len(p) for p in parts] == [210, 50, 25, 19]
    assert [len(p) for p in module.val_dataset.datasets] == [70, 10]
    batch = next(iter(module.train_dataloader()))
    assert batch['image'].shape == (8, 3, height, width)
    assert batch['depth'].shape == (8, 1, height, width)
    assert batch['intrinsics'].shape == (8, 4) and torch.isfinite(batch['intrinsics']).all()
    val_batch = next(iter(module.val_dataloader()))
    assert val_batch['depth'].shape == (4, 1, 480, 640)  # validation at native resolution


def test_weighted_mixture_gives_each_source_its_share():
    require_shared(SHARED_DATA / 'tum_rgbd')
    require_shared(SHARED_DATA / 'sevenscenes_redkitchen')
    module = RGBDDataModule(**dict(_data_section(), num_workers=0), mean=MEAN, std=STD)
    module.setup('fit')
    sources = [spec['source'] for spec, part in zip(module.train_specs,
                                                    module.train_dataset.datasets)
               for _ in range(len(part))]
    torch.manual_seed(0)
    drawn = list(module.train_dataloader().sampler)
    assert len(drawn) == 304
    torch.manual_seed(0)
    draws = torch.multinomial(module.train_weights, 30000, replacement=True).tolist()
    shares = {name: sum(sources[i] == name for i in draws) / len(draws) for name in set(sources)}
    for name, share in shares.items():
        assert share == pytest.approx(1 / 3, abs=0.02), shares


def _folder(root: Path, count: int) -> Path:
    intrinsics = Intrinsics(20.0, 20.0, 15.5, 11.5, 32, 24)
    with FolderWriter(root, intrinsics) as writer:
        for index in range(count):
            writer.add(f'{index:03d}', np.full((24, 32, 3), index, np.uint8),
                       np.full((24, 32), 1.0 + index / 10, np.float32))
    return root


def test_mixture_weights_and_frame_checks_on_folders(tmp_path):
    big, small = _folder(tmp_path / 'big', 6), _folder(tmp_path / 'small', 2)
    specs = [{'dataset': str(big), 'source': 'a', 'weight': 3.0, 'stop': 4},
             {'dataset': str(small), 'source': 'b', 'weight': 1.0},
             {'dataset': str(big), 'source': 'a', 'weight': 3.0, 'start': 5}]
    parts = [build_dataset(spec, (24, 32), MEAN, STD, None, 'network') for spec in specs]
    weights = mixture_weights(parts, specs)
    # source a: 3/4 of the draws over its 4 + 1 frames; source b: 1/4 over 2 frames.
    np.testing.assert_allclose(weights.numpy(), [0.15] * 4 + [0.125] * 2 + [0.15])
    with pytest.raises(ValueError, match='same in every entry'):
        mixture_weights(parts, [specs[0], specs[1], dict(specs[2], weight=2.0)])
    build_dataset(dict(specs[0], frames=['000', '003']), (24, 32), MEAN, STD, None, 'network')
    with pytest.raises(DatasetError, match='runs from 000 to 003, the split expects 001'):
        build_dataset(dict(specs[0], frames=['001', '004']), (24, 32), MEAN, STD, None,
                      'network')


def test_read_split_resolves_sources_and_rejects_unknown_ones(tmp_path):
    split_file = tmp_path / 'split.yaml'
    content = {'format': 'depth_estimation.real_split/1',
               'sources': {'kitchen': {'dataset': 'kitchen', 'weight': 2.0},
                           'desk': {'dataset': 'tum/desk', 'calibration': 'fr2'}},
               'train': [{'source': 'kitchen', 'stop': 10}],
               'val': [{'source': 'kitchen', 'start': 12}],
               'evaluate': [{'source': 'desk'}],
               'excluded': {'synthetic': 'rendered, not real'}}
    split_file.write_text(yaml.safe_dump(content))
    split = read_split(split_file, tmp_path / 'data')
    assert split.train == [{'dataset': str(tmp_path / 'data' / 'kitchen'), 'weight': 2.0,
                            'source': 'kitchen', 'stop': 10}]
    assert split.evaluate[0]['calibration'] == 'fr2'
    assert split.excluded == {str(tmp_path / 'data' / 'synthetic'): 'rendered, not real'}
    content['val'] = [{'source': 'garden'}]
    split_file.write_text(yaml.safe_dump(content))
    with pytest.raises(DatasetError, match="val entry .* does not name one of the sources"):
        read_split(split_file)
    split_file.write_text('train: []\n')
    with pytest.raises(DatasetError, match='not a split file'):
        read_split(split_file)


def test_real_config_parses_with_the_training_command():
    """LightningCLI checks every key of the config against the module signatures."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, '-m', 'training.train', 'fit', '--config',
                          str(REAL_CONFIG), '--print_config'], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    printed = yaml.safe_load(run.stdout)
    assert printed['data']['split'] == 'training/splits/real_rgbd.yaml'
    assert printed['data']['mixture'] == 'weighted'
    assert printed['data']['input_size'] == [192, 256]
