"""Dataset readers on fixtures written in each dataset's real on-disk format, plus real frames."""

from __future__ import annotations

import json
import logging
import pickle

import cv2
import numpy as np
import pytest
import yaml

from depth_estimation.datasets import (DatasetError, FolderDataset, FolderWriter, RGBDSample,
                                       get_dataset)
from depth_estimation.geometry import Intrinsics

RNG = np.random.default_rng(4)


def _random_rgb(height: int, width: int) -> np.ndarray:
    return RNG.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _write_png(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


# --- plain folder --------------------------------------------------------------------------------

def _write_folder(root, ids, width=32, height=24, scale=0.001, splits=None, seg=True):
    """Write the folder format by hand (not with FolderWriter) and return the raw arrays."""
    meta = {'format': 'depth_estimation.rgbd_folder/1', 'depth_scale': scale, 'width': width,
            'height': height, 'intrinsics': {'fx': 30.0, 'fy': 31.0, 'cx': 15.5, 'cy': 11.5},
            'min_depth': 0.1, 'max_depth': 10.0, 'eval_crop': None, 'name': 'fixture',
            'generator': 'test'}
    root.mkdir(parents=True, exist_ok=True)
    (root / 'dataset.yaml').write_text(yaml.safe_dump(meta))
    written = {}
    for sample_id in ids:
        rgb = _random_rgb(height, width)
        raw = RNG.integers(0, 9000, size=(height, width), dtype=np.uint16)
        raw[0, :4] = 0
        labels = RNG.integers(0, 40, size=(height, width), dtype=np.uint8)
        _write_png(root / 'rgb' / f'{sample_id}.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        _write_png(root / 'depth' / f'{sample_id}.png', raw)
        if seg:
            _write_png(root / 'segmentation' / f'{sample_id}.png', labels)
        written[sample_id] = (rgb, raw, labels)
    for split, members in (splits or {}).items():
        (root / f'{split}.txt').write_text('\n'.join(members) + '\n')
    return written


def test_folder_reads_values_intrinsics_and_splits(tmp_path):
    ids = ['a/000001', 'a/000002', 'b/000001']
    written = _write_folder(tmp_path / 'ds', ids, splits={'train': ids[:2], 'test': ids[2:]})
    everything = FolderDataset(tmp_path / 'ds')
    assert [everything.sample_name(i) for i in range(len(everything))] == sorted(ids)
    assert everything.name == 'fixture' and everything.eval_crop is None
    assert (everything.min_depth, everything.max_depth) == (0.1, 10.0)
    assert everything.metadata['generator'] == 'test'
    train = FolderDataset(tmp_path / 'ds', split='train')
    assert len(train) == 2
    sample = train[1]
    rgb, raw, labels = written['a/000002']
    assert isinstance(sample, RGBDSample) and sample.name == 'a/000002'
    np.testing.assert_array_equal(sample.image, rgb)
    assert sample.depth.dtype == np.float32
    np.testing.assert_array_equal(sample.depth, raw.astype(np.float32) / np.float32(1000))
    assert (sample.depth[0, :4] == 0).all()
    np.testing.assert_array_equal(sample.segmentation, labels.astype(np.int64))
    assert sample.intrinsics == Intrinsics(30.0, 31.0, 15.5, 11.5, 32, 24)
    assert len(get_dataset(str(tmp_path / 'ds'), split='test')) == 1
    assert len(get_dataset(f'folder:{tmp_path / "ds"}')) == 3


def test_folder_scales_intrinsics_for_other_frame_sizes(tmp_path):
    _write_folder(tmp_path / 'ds', ['x'], width=32, height=24)
    meta = yaml.safe_load((tmp_path / 'ds' / 'dataset.yaml').read_text())
    meta.update(width=64, height=48)  # calibration given at twice the stored frame size
    (tmp_path / 'ds' / 'dataset.yaml').write_text(yaml.safe_dump(meta))
    intrinsics = FolderDataset(tmp_path / 'ds')[0].intrinsics
    assert intrinsics == Intrinsics(30.0, 31.0, 15.5, 11.5, 64, 48).scaled(32, 24)


def test_folder_writer_round_trip(tmp_path):
    intrinsics = Intrinsics(50.0, 50.0, 19.5, 14.5, 40, 30)
    depth = RNG.uniform(0.2, 8.0, size=(30, 40)).astype(np.float32)
    depth[3, 3] = np.nan
    depth[4, 4] = 0.0
    rgb = _random_rgb(30, 40)
    with FolderWriter(tmp_path / 'w', intrinsics, depth_scale=0.0005, name='sim',
                      extra={'seed': 3}) as writer:
        writer.add('0001', rgb, depth, segmentation=np.full((30, 40), -1), split='val')
    dataset = FolderDataset(tmp_path / 'w', split='val')
    sample = dataset[0]
    np.testing.assert_array_equal(sample.image, rgb)
    valid = np.isfinite(depth) & (depth > 0)
    assert np.abs(sample.depth[valid] - depth[valid]).max() <= 0.00025 + 1e-6
    assert sample.depth[3, 3] == 0 and sample.depth[4, 4] == 0
    assert (sample.segmentation == 255).all()
    assert sample.intrinsics == intrinsics and dataset.metadata['seed'] == 3


def test_folder_errors_name_the_file_and_skip_broken(tmp_path, caplog):
    root = tmp_path / 'ds'
    _write_folder(root, ['0', '1', '2'], seg=False)
    (root / 'depth' / '1.png').write_bytes(b'not a png')
    dataset = FolderDataset(root)
    with pytest.raises(DatasetError, match=r'1\.png'):
        dataset[1]
    skipping = FolderDataset(root, skip_broken=True)
    with caplog.at_level(logging.WARNING, logger='depth_estimation.datasets'):
        assert skipping[1].name == '2'
    assert 'skipping broken sample 1' in caplog.text
    _write_png(root / 'depth' / '2.png', np.zeros((5, 5), np.uint16))
    with pytest.raises(DatasetError, match=r'2\.png.*5x5'):
        dataset[2]
    _write_png(root / 'depth' / '0.png', np.zeros((24, 32), np.uint8))
    with pytest.raises(DatasetError, match='16-bit'):
        dataset[0]
    with pytest.raises(DatasetError, match='val.txt'):
        FolderDataset(root, split='val')
    (root / 'dataset.yaml').write_text('format: something/2\n')
    with pytest.raises(DatasetError, match='dataset.yaml.*format'):
        FolderDataset(root)
    with pytest.raises(DatasetError, match='cannot tell'):
        get_dataset(str(tmp_path / 'ds' / 'rgb'))


# --- NYU Depth v2: labelled .mat (MATLAB v7.3 = HDF5) and the sync split-file layout ------------

def _write_nyu_mat(path, frames=6, height=12, width=16):
    """A labelled-set .mat as MATLAB v7.3 stores it: HDF5 with a 512-byte MATLAB header block and
    column-major arrays, so h5py sees images as (N, 3, W, H) and depths as (N, W, H)."""
    h5py = pytest.importorskip('h5py')
    images = RNG.integers(0, 256, size=(frames, height, width, 3), dtype=np.uint8)
    raw = RNG.uniform(0.5, 9.0, size=(frames, height, width)).astype(np.float32)
    raw[:, 0, :3] = 0.0  # Kinect holes
    filled = RNG.uniform(0.5, 9.0, size=(frames, height, width)).astype(np.float32)
    labels = RNG.integers(0, 894, size=(frames, height, width), dtype=np.uint16)
    with h5py.File(path, 'w', userblock_size=512) as handle:
        handle['images'] = images.transpose(0, 3, 2, 1)
        handle['rawDepths'] = raw.transpose(0, 2, 1)
        handle['depths'] = filled.transpose(0, 2, 1)
        handle['labels'] = labels.transpose(0, 2, 1)
    header = b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5'
    with open(path, 'r+b') as stream:
        stream.write(header.ljust(116) + b'\x00' * 8 + b'\x00\x02IM')
    return images, raw, filled, labels


def test_nyu_mat_decodes_matlab_layout_and_splits(tmp_path):
    from scipy.io import savemat

    from depth_estimation.datasets.nyu import NYU_INTRINSICS, NYUMatDataset

    path = tmp_path / 'nyu_depth_v2_labeled.mat'
    images, raw, filled, labels = _write_nyu_mat(path)
    dataset = get_dataset(str(path), split=[2, 5])
    assert isinstance(dataset, NYUMatDataset) and len(dataset) == 2
    assert (dataset.eval_crop, dataset.min_depth, dataset.max_depth) == ('eigen', 1e-3, 10.0)
    sample = dataset[1]  # MATLAB frame 5 = h5py index 4
    assert sample.name == '00004'
    np.testing.assert_array_equal(sample.image, images[4])
    np.testing.assert_array_equal(sample.depth, raw[4])
    assert (sample.depth[0, :3] == 0).all()
    expected_labels = labels[4].astype(np.int64)
    expected_labels[expected_labels == 0] = -1
    np.testing.assert_array_equal(sample.segmentation, expected_labels)
    assert sample.intrinsics == NYU_INTRINSICS.scaled(16, 12)
    np.testing.assert_array_equal(NYUMatDataset(path, split='all', depth='filled')[0].depth,
                                  filled[0])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(dataset))[0].image, images[1])
    bordered = NYUMatDataset(path, split=[1], black_border=True)[0].image
    assert (bordered[:7] == 0).all() and (bordered[:, -7:] == 0).all()
    np.testing.assert_array_equal(bordered[7:-7, 7:-7], images[0][7:-7, 7:-7])

    savemat(tmp_path / 'splits.mat', {'trainNdxs': np.array([[1], [2], [4], [6]]),
                                      'testNdxs': np.array([[3], [5]])})
    test = NYUMatDataset(path, split='test', splits_file=tmp_path / 'splits.mat')
    train = NYUMatDataset(path, split='train', splits_file=tmp_path / 'splits.mat')
    assert [test.sample_name(i) for i in range(2)] == ['00002', '00004']
    assert [train.sample_name(i) for i in range(4)] == ['00000', '00001', '00003', '00005']
    # The shipped 654-frame split needs the whole 1449-frame file.
    with pytest.raises(DatasetError, match='holds 6 frames'):
        NYUMatDataset(path)


def test_nyu_shipped_eigen_test_split_is_the_official_654_frames():
    from depth_estimation.datasets.nyu import NYU_FRAMES, eigen_test_indices

    indices = eigen_test_indices()
    assert len(indices) == 654 and len(set(indices)) == 654
    assert indices == sorted(indices) and 1 <= indices[0] and indices[-1] <= NYU_FRAMES


def test_nyu_mat_errors_name_the_file(tmp_path):
    from depth_estimation.datasets.nyu import NYUMatDataset

    bad = tmp_path / 'nyu_depth_v2_labeled.mat'
    bad.write_bytes(b'MATLAB 5.0 MAT-file' + b'\x00' * 200)
    with pytest.raises(DatasetError, match='nyu_depth_v2_labeled.mat.*v7.3'):
        NYUMatDataset(bad, split='all')


def _write_sync_layout(root, rows, size=(24, 32), prefix=''):
    lines, written = [], {}
    for index, (scene, focal) in enumerate(rows):
        rgb = _random_rgb(*size)
        raw = RNG.integers(0, 60000, size=size, dtype=np.uint16)
        raw[1, 1] = 0
        rgb_rel, depth_rel = f'{scene}/rgb_{index:05d}.jpg', f'{scene}/sync_depth_{index:05d}.png'
        _write_png(root / rgb_rel, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        _write_png(root / depth_rel, raw)
        lines.append(f'{prefix}{rgb_rel} {prefix}{depth_rel} {focal}')
        written[f'{scene}/rgb_{index:05d}'] = (cv2.cvtColor(cv2.imread(str(root / rgb_rel)),
                                                            cv2.COLOR_BGR2RGB), raw)
    return lines, written


def test_nyu_sync_split_file(tmp_path):
    from depth_estimation.datasets.nyu import NYU_INTRINSICS

    rows = [('kitchen', 518.8579), ('office', 518.8579)]
    lines, written = _write_sync_layout(tmp_path / 'sync', rows, prefix='/')
    lines.append('/bathroom/rgb_00099.jpg None 518.8579')
    split = tmp_path / 'nyudepthv2_test_files_with_gt.txt'
    split.write_text('\n'.join(lines) + '\n')
    dataset = get_dataset(f'nyu_sync:{split}', data_path=tmp_path / 'sync')
    assert len(dataset) == 2 and dataset.dropped_without_gt == 1
    sample = dataset[1]
    rgb, raw = written['office/rgb_00001']
    assert sample.name == 'office/rgb_00001'
    np.testing.assert_array_equal(sample.image, rgb)
    np.testing.assert_array_equal(sample.depth, raw.astype(np.float32) / np.float32(1000.0))
    assert sample.intrinsics == NYU_INTRINSICS.scaled(32, 24)
    with pytest.raises(DatasetError, match='line 3 has no ground truth'):
        get_dataset(f'nyu_sync:{split}', data_path=tmp_path / 'sync', skip_missing_gt=False)
    (tmp_path / 'sync' / 'kitchen' / 'sync_depth_00000.png').unlink()
    with pytest.raises(DatasetError, match='sync_depth_00000.png.*missing'):
        dataset[0]


def test_nyu_sync_reads_the_shared_nyu_frames():
    from conftest import SHARED_DATA, require_shared

    root = require_shared(SHARED_DATA / 'metric3d_demo' / 'nyu_demo')
    from depth_estimation.datasets.nyu import NYUSyncDataset

    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        split = f'{folder}/split.txt'
        with open(split, 'w') as stream:
            for number in ('00000', '00050', '00100'):
                stream.write(f'rgb/rgb_{number}.jpg depth/sync_depth_{number}.png 518.8579\n')
        dataset = NYUSyncDataset(split, data_path=root)
        for index in range(3):
            sample = dataset[index]
            raw = cv2.imread(str(dataset.paths(index)[1]), cv2.IMREAD_UNCHANGED)
            assert sample.image.shape == (480, 640, 3)
            np.testing.assert_array_equal(sample.depth, raw.astype(np.float32) / 1000)
            valid = sample.depth > 0
            assert 0.5 < valid.mean() < 0.9 and 0.5 < np.median(sample.depth[valid]) < 8


# --- KITTI Eigen split ---------------------------------------------------------------------------

def test_kitti_kb_crop_calibration_and_scale(tmp_path):
    height, width = 375, 1242
    date, drive = '2011_09_26', '2011_09_26_drive_0002_sync'
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0] = np.arange(width) % 256
    rgb[..., 1] = (np.arange(height) % 256)[:, None]
    raw = np.zeros((height, width), np.uint16)
    raw[200:, ::7] = RNG.integers(256, 256 * 90, size=raw[200:, ::7].shape, dtype=np.uint16)
    _write_png(tmp_path / 'raw' / date / drive / 'image_02' / 'data' / '0000000069.png',
               cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    _write_png(tmp_path / 'gt' / drive / 'proj_depth' / 'groundtruth' / 'image_02' /
               '0000000069.png', raw)
    split = tmp_path / 'kitti_eigen_test_files_with_gt.txt'
    split.write_text(f'{date}/{drive}/image_02/data/0000000069.png '
                     f'{drive}/proj_depth/groundtruth/image_02/0000000069.png 721.5377\n'
                     f'{date}/{drive}/image_02/data/0000000070.png None 721.5377\n')
    dataset = get_dataset(f'kitti:{split}', data_path=tmp_path / 'raw', gt_path=tmp_path / 'gt')
    assert len(dataset) == 1
    assert (dataset.eval_crop, dataset.min_depth, dataset.max_depth) == ('garg', 1e-3, 80.0)
    sample = dataset[0]
    top, left = height - 352, (width - 1216) // 2
    np.testing.assert_array_equal(sample.image, rgb[top:, left:left + 1216])
    np.testing.assert_array_equal(sample.depth, raw[top:, left:left + 1216] / np.float32(256))
    assert sample.intrinsics.fx == 721.5377 and sample.intrinsics.cx == (width - 1) / 2 - left
    (tmp_path / 'raw' / date / 'calib_cam_to_cam.txt').write_text(
        'calib_time: 09-Jan-2012 13:57:47\nS_rect_02: 1.242000e+03 3.750000e+02\n'
        'P_rect_02: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 '
        '7.215377e+02 1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 '
        '2.745884e-03\n')
    calibrated = get_dataset(f'kitti:{split}', data_path=tmp_path / 'raw',
                             gt_path=tmp_path / 'gt')[0].intrinsics
    assert (calibrated.cx, calibrated.cy) == pytest.approx((609.5593 - left, 172.854 - top))
    uncropped = get_dataset(f'kitti:{split}', data_path=tmp_path / 'raw', gt_path=tmp_path / 'gt',
                            kb_crop=False)[0]
    assert uncropped.depth.shape == (height, width)


def test_kitti_reads_the_shared_kitti_frames(tmp_path):
    from conftest import SHARED_DATA, require_shared

    root = require_shared(SHARED_DATA / 'metric3d_demo' / 'kitti_demo')
    split = tmp_path / 'split.txt'
    split.write_text(''.join(f'rgb/{n}.png depth/{n}.png 707.0493\n'
                             for n in ('0000000005', '0000000050', '0000000100')))
    dataset = get_dataset(f'kitti:{split}', data_path=root)
    for index in range(3):
        sample = dataset[index]
        raw = cv2.imread(str(dataset.paths(index)[1]), cv2.IMREAD_UNCHANGED)
        assert sample.image.shape == (352, 1216, 3)
        expected = raw[375 - 352:, 13:13 + 1216] / np.float32(256)
        np.testing.assert_array_equal(sample.depth, expected)
        valid = sample.depth > 0
        assert 0.1 < valid.mean() < 0.4 and 3 < np.median(sample.depth[valid]) < 60


# --- iBims-1 -------------------------------------------------------------------------------------

def test_ibims_mat_masks_and_calibration(tmp_path):
    from scipy.io import savemat

    height, width = 24, 32
    rgb = _random_rgb(height, width)
    depth = RNG.uniform(0.3, 12.0, size=(height, width))
    depth[0, 0] = 0.0  # missing
    mask_invalid = np.ones((height, width), np.uint8)
    mask_invalid[1, :] = 0
    mask_transp = np.ones((height, width), np.uint8)
    mask_transp[:, 2] = 0
    calib = np.array([[559.6, 0, 0], [0, 558.4, 0], [321.1, 241.3, 1]])  # MATLAB layout
    savemat(tmp_path / 'corridor_01.mat', {'data': {
        'rgb': rgb, 'depth': depth, 'mask_invalid': mask_invalid, 'mask_transp': mask_transp,
        'calib': calib, 'edges': np.zeros((height, width), np.uint8),
        'mask_wall': np.zeros((height, width), np.uint8), 'mask_wall_paras': np.zeros((0, 7))}})
    (tmp_path / 'imagelist.txt').write_text('corridor_01\n')
    dataset = get_dataset(str(tmp_path))
    assert dataset.name == 'ibims' and dataset.eval_crop == 'eigen'
    sample = dataset[0]
    np.testing.assert_array_equal(sample.image, rgb)
    keep = (mask_invalid == 1) & (mask_transp == 1) & (depth > 0)
    np.testing.assert_array_equal(sample.depth, np.where(keep, depth, 0).astype(np.float32))
    assert sample.depth[1].max() == 0 and sample.depth[:, 2].max() == 0
    assert sample.intrinsics == Intrinsics(559.6, 558.4, 320.1, 240.3, width, height)
    (tmp_path / 'imagelist.txt').write_text('corridor_01\nmissing_02\n')
    with pytest.raises(DatasetError, match=r'missing_02\.mat'):
        get_dataset(str(tmp_path))[1]
    savemat(tmp_path / 'missing_02.mat', {'data': {'rgb': rgb}})
    with pytest.raises(DatasetError, match=r'missing_02\.mat.*depth'):
        get_dataset(str(tmp_path))[1]


# --- TUM RGB-D -----------------------------------------------------------------------------------

def test_tum_association_scale_and_calibration(tmp_path):
    from depth_estimation.datasets.tum import TUM_CALIBRATIONS

    root = tmp_path / 'rgbd_dataset_freiburg1_xyz'
    colour_stamps = [1305031102.175304, 1305031102.211214, 1305031102.243211, 1305031102.500]
    depth_stamps = [1305031102.160407, 1305031102.226738, 1305031102.265000, 1305031102.300]
    written = {}
    for stamp in colour_stamps:
        rgb = _random_rgb(12, 16)
        _write_png(root / 'rgb' / f'{stamp:.6f}.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        written[stamp] = rgb
    for stamp in depth_stamps:
        raw = RNG.integers(0, 40000, size=(12, 16), dtype=np.uint16)
        _write_png(root / 'depth' / f'{stamp:.6f}.png', raw)
        written[stamp] = raw
    (root / 'rgb.txt').write_text('# color images\n# file: rgbd_dataset_freiburg1_xyz.bag\n'
                                  '# timestamp filename\n' + ''.join(
                                      f'{s:.6f} rgb/{s:.6f}.png\n' for s in colour_stamps))
    (root / 'depth.txt').write_text('# depth maps\n' + ''.join(
        f'{s:.6f} depth/{s:.6f}.png\n' for s in depth_stamps))
    dataset = get_dataset(str(root))
    # associate.py: 0.175<->0.160 (15 ms), 0.211<->0.227 (16 ms); 0.243<->0.265 (22 ms) is not
    # < 20 ms; 0.500 has nothing within 20 ms.
    assert [dataset.timestamps(i) for i in range(len(dataset))] == [
        (colour_stamps[0], depth_stamps[0]), (colour_stamps[1], depth_stamps[1])]
    sample = dataset[1]
    np.testing.assert_array_equal(sample.image, written[colour_stamps[1]])
    np.testing.assert_array_equal(sample.depth,
                                  written[depth_stamps[1]].astype(np.float32) / np.float32(5000))
    assert sample.intrinsics == TUM_CALIBRATIONS['fr1'].scaled(16, 12)
    wide = get_dataset(str(root), max_difference=0.05, calibration='fr3')
    assert len(wide) == 3 and wide[2].intrinsics == TUM_CALIBRATIONS['fr3'].scaled(16, 12)


def test_associate_stamps_takes_closest_pairs_first():
    from depth_estimation.datasets.base import associate_stamps

    # 1.012 <-> 1.010 (2 ms) is taken first, so 1.000 (whose nearest is also 1.010) gets
    # nothing: 1.030 is 30 ms away. 2.0 and 5.0 have no partner.
    assert associate_stamps([1.0, 1.012, 2.0], [1.01, 1.03, 5.0], 0.02) == [(1, 0)]
    assert associate_stamps([1.0, 1.012], [1.01, 1.03], 0.035) == [(0, 1), (1, 0)]
    assert associate_stamps([], [1.0], 0.02) == []


def test_tum_reads_the_shared_tum_frame(tmp_path):
    from conftest import SHARED_DATA, require_shared

    folder = require_shared(SHARED_DATA / 'open3d_rgbd' / 'other_formats')
    (tmp_path / 'rgb.txt').write_text(f'1.000000 {folder / "TUM_color.png"}\n')
    (tmp_path / 'depth.txt').write_text(f'1.010000 {folder / "TUM_depth.png"}\n')
    sample = get_dataset(f'tum:{tmp_path}', calibration='ros')[0]
    raw = cv2.imread(str(folder / 'TUM_depth.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(sample.depth, raw.astype(np.float32) / 5000)
    valid = sample.depth > 0
    assert sample.image.shape == (480, 640, 3) and 0.7 < valid.mean() < 0.9
    assert 1.5 < np.median(sample.depth[valid]) < 3.5


def _write_tum_frames(root, stamps, suffix='.png', depth_stamps=None, size=(12, 16)):
    """Colour and depth files named by stamp; returns {relative path: array as written}."""
    written = {}
    for number, stamp in enumerate(stamps):
        rgb = _random_rgb(*size)
        colour = f'rgb/{stamp}{suffix}'
        if suffix == '.png':
            _write_png(root / colour, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            written[colour] = rgb
        else:  # a JPEG does not read back exactly: keep what it decodes to
            _write_png(root / colour, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            written[colour] = cv2.cvtColor(cv2.imread(str(root / colour)), cv2.COLOR_BGR2RGB)
        depth = f'depth/{(depth_stamps or stamps)[number]}.png'
        raw = RNG.integers(0, 40000, size=size, dtype=np.uint16)
        _write_png(root / depth, raw)
        written[depth] = raw
    return written


def test_tum_associations_file_and_intrinsics_json(tmp_path):
    """The associate.py output is used as given (no re-pairing) and intrinsics.json wins."""
    root = tmp_path / 'fr2_desk'
    colour = ['1311868164.430940', '1311868164.363181']  # listed out of order
    depth = ['1311868164.437021', '1311868164.373557']
    written = _write_tum_frames(root, colour, depth_stamps=depth)
    (root / 'associations.txt').write_text(
        '# rgb_timestamp rgb_file depth_timestamp depth_file (nearest, |dt|<20ms)\n' + ''.join(
            f'{c} rgb/{c}.png {d} depth/{d}.png\n' for c, d in zip(colour, depth)))
    # A decoy rgb.txt / depth.txt that would pair differently: associations.txt comes first.
    (root / 'rgb.txt').write_text(f'{colour[0]} rgb/{colour[0]}.png\n')
    (root / 'depth.txt').write_text(f'{depth[1]} depth/{depth[1]}.png\n')
    (root / 'intrinsics.json').write_text(json.dumps(
        {'fx': 400.0, 'fy': 401.0, 'cx': 7.5, 'cy': 5.5, 'width': 16, 'height': 12,
         'depth_scale': 1000.0}))
    dataset = get_dataset(str(root))
    assert type(dataset).__name__ == 'TUMDataset' and len(dataset) == 2
    assert [dataset.sample_name(i) for i in range(2)] == ['fr2_desk/1311868164.363181',
                                                          'fr2_desk/1311868164.430940']
    assert dataset.timestamps(0) == (1311868164.363181, 1311868164.373557)
    sample = dataset[0]
    np.testing.assert_array_equal(sample.image, written[f'rgb/{colour[1]}.png'])
    np.testing.assert_array_equal(
        sample.depth, written[f'depth/{depth[1]}.png'].astype(np.float32) / np.float32(1000))
    assert sample.intrinsics == Intrinsics(400.0, 401.0, 7.5, 5.5, 16, 12)
    # An explicit depth factor and calibration override the JSON.
    other = get_dataset(f'tum:{root}', depth_factor=5000, calibration='fr2')
    np.testing.assert_array_equal(
        other[0].depth, written[f'depth/{depth[1]}.png'].astype(np.float32) / np.float32(5000))
    assert other[0].intrinsics.fx == pytest.approx(520.9 * 16 / 640)
    (root / 'associations.txt').write_text(f'{colour[0]} rgb/{colour[0]}.png\n')
    with pytest.raises(DatasetError, match=r'associations\.txt: line 1 .* is not "rgb_stamp'):
        get_dataset(str(root))


def test_tum_pairs_list_takes_stamps_from_file_names(tmp_path):
    """The keyframe layout: `rgb_path depth_path source...` lines, stamps in the names."""
    root = tmp_path / 'fr3_cabinet_kf'
    names = ['0001_1341841279.5107', '0000_1341841278.8427', '0002_1341841280.1825']
    written = _write_tum_frames(root, names, suffix='.jpg')
    (root / 'pairs.txt').write_text('# rgb_file depth_file source_rgb source_depth\n' + ''.join(
        f'rgb/{n}.jpg depth/{n}.png data/raw_imgs/{n[:4]}_rgb_raw.jpg '
        f'data/depth_imgs/{n[:4]}_depth_raw.png\n' for n in names))
    dataset = get_dataset(str(root))
    assert [dataset.timestamps(i)[0] for i in range(3)] == [1341841278.8427, 1341841279.5107,
                                                            1341841280.1825]
    assert dataset.sample_name(0) == 'fr3_cabinet_kf/1341841278.842700'
    sample = dataset[2]
    np.testing.assert_array_equal(sample.image, written[f'rgb/{names[2]}.jpg'])
    np.testing.assert_array_equal(
        sample.depth, written[f'depth/{names[2]}.png'].astype(np.float32) / np.float32(5000))
    # No intrinsics.json: the folder name says fr3.
    assert sample.intrinsics.fx == pytest.approx(535.4 * 16 / 640)
    (root / 'pairs.txt').write_text('rgb/x.jpg\n')
    with pytest.raises(DatasetError, match=r'pairs\.txt: line 1'):
        get_dataset(str(root))
    (root / 'pairs.txt').unlink()
    with pytest.raises(DatasetError, match='cannot tell the dataset format'):
        get_dataset(str(root))


# Frames, intrinsics, pixel pairing (dt) and median depth range of the shared sequences, from
# their intrinsics.json (MANIFEST.md of ../shared/data).
SHARED_TUM = {
    'fr1_rpy': (50, (517.3, 516.5, 318.6, 255.3), 0.016, (0.9, 2.3)),
    'fr2_desk': (25, (520.9, 521.0, 325.1, 249.7), 0.017, (1.5, 1.9)),
    'fr3_cabinet_kf': (58, (535.4, 539.2, 320.1, 247.6), 0.0, (1.2, 1.7)),
    'fr1_desk': (9, (517.3, 516.5, 318.6, 255.3), 0.015, (1.05, 1.2)),
}


@pytest.mark.parametrize('sequence', sorted(SHARED_TUM))
def test_tum_reads_the_shared_sequences(sequence):
    from conftest import SHARED_DATA, require_shared

    root = require_shared(SHARED_DATA / 'tum_rgbd' / sequence)
    frames, calibration, max_dt, median_range = SHARED_TUM[sequence]
    dataset = get_dataset(str(root))
    assert len(dataset) == frames
    stamps = [dataset.timestamps(i) for i in range(frames)]
    assert all(abs(colour - depth) <= max_dt for colour, depth in stamps)
    assert [colour for colour, _ in stamps] == sorted(colour for colour, _ in stamps)
    for index in (0, frames - 1):
        sample = dataset[index]
        assert sample.intrinsics == Intrinsics(*calibration, 640, 480)
        assert sample.image.shape == (480, 640, 3)
        colour_file, depth_file = dataset.pairs[index][0][1], dataset.pairs[index][1][1]
        raw = cv2.imread(str(root / depth_file), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(sample.depth, raw.astype(np.float32) / 5000)
        valid = sample.depth > 0
        assert 0.6 < valid.mean() < 0.9, colour_file
        assert median_range[0] < np.median(sample.depth[valid]) < median_range[1], colour_file


def test_annotations_json_per_frame_intrinsics_and_scale(tmp_path):
    root = tmp_path / 'nyu_demo'
    rgb_a, rgb_b = _random_rgb(12, 16), _random_rgb(12, 16)
    raw = RNG.integers(0, 9000, size=(12, 16), dtype=np.uint16)
    _write_png(root / 'rgb' / 'a.png', cv2.cvtColor(rgb_a, cv2.COLOR_RGB2BGR))
    _write_png(root / 'rgb' / 'b.png', cv2.cvtColor(rgb_b, cv2.COLOR_RGB2BGR))
    _write_png(root / 'depth' / 'a.png', raw)
    _write_png(root / 'depth' / 'b.png', raw)
    files = [{'cam_in': [10.0, 11.0, 7.0, 5.0], 'rgb': 'data/nyu_demo/rgb/a.png',
              'depth': 'data/nyu_demo/depth/a.png', 'depth_scale': 1000.0},
             {'cam_in': [20.0, 21.0, 8.0, 6.0], 'rgb': 'data/nyu_demo/rgb/b.png',
              'depth': 'data/nyu_demo/depth/b.png', 'depth_scale': 256.0}]
    (root / 'test_annotations.json').write_text(json.dumps({'files': files}))
    dataset = get_dataset(str(root), eval_crop='eigen')
    assert type(dataset).__name__ == 'AnnotationsDataset' and dataset.eval_crop == 'eigen'
    first, second = dataset[0], dataset[1]
    np.testing.assert_array_equal(first.image, rgb_a)
    np.testing.assert_array_equal(first.depth, raw.astype(np.float32) / np.float32(1000))
    np.testing.assert_array_equal(second.depth, raw.astype(np.float32) / np.float32(256))
    assert first.intrinsics == Intrinsics(10.0, 11.0, 7.0, 5.0, 16, 12)
    assert second.intrinsics == Intrinsics(20.0, 21.0, 8.0, 6.0, 16, 12)
    del files[1]['cam_in']
    (root / 'test_annotations.json').write_text(json.dumps({'files': files}))
    with pytest.raises(DatasetError, match='entry 1 needs rgb, depth, cam_in'):
        get_dataset(str(root / 'test_annotations.json'))


def test_annotations_reads_the_shared_nyu_frames():
    from conftest import SHARED_DATA, require_shared

    root = require_shared(SHARED_DATA / 'metric3d_demo' / 'nyu_demo')
    dataset = get_dataset(str(root), eval_crop='eigen')
    assert [dataset.sample_name(i) for i in range(3)] == ['rgb_00000', 'rgb_00050', 'rgb_00100']
    for index in range(3):
        sample = dataset[index]
        raw = cv2.imread(str(root / 'depth' / f'sync_depth_{sample.name[4:]}.png'),
                         cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(sample.depth, raw.astype(np.float32) / 1000)
        assert sample.intrinsics == Intrinsics(518.8579, 519.46961, 325.58245, 253.73617, 640,
                                               480)


# --- 7-Scenes ------------------------------------------------------------------------------------

def test_sevenscenes_frames_invalid_marker_and_pose(tmp_path):
    from depth_estimation.datasets.sevenscenes import SEVENSCENES_INTRINSICS

    written = {}
    for seq in ('seq-01', 'seq-02'):
        for number in (0, 1):
            stem = tmp_path / seq / f'frame-{number:06d}'
            rgb = _random_rgb(12, 16)
            raw = RNG.integers(500, 4000, size=(12, 16), dtype=np.uint16)
            raw[0, 0] = 65535
            _write_png(stem.with_name(stem.name + '.color.png'), cv2.cvtColor(rgb,
                                                                              cv2.COLOR_RGB2BGR))
            _write_png(stem.with_name(stem.name + '.depth.png'), raw)
            pose = np.eye(4)
            pose[:3, 3] = [number, 2.0, 3.0]
            np.savetxt(stem.with_name(stem.name + '.pose.txt'), pose)
            written[f'{seq}/{number:06d}'] = (rgb, raw, pose)
    dataset = get_dataset(str(tmp_path))
    assert [dataset.sample_name(i) for i in range(4)] == sorted(written)
    sample = dataset[3]
    rgb, raw, pose = written['seq-02/000001']
    np.testing.assert_array_equal(sample.image, rgb)
    expected = raw.astype(np.float32) / 1000
    expected[0, 0] = 0
    np.testing.assert_array_equal(sample.depth, expected)
    np.testing.assert_array_equal(dataset.pose(3), pose)
    assert sample.intrinsics == SEVENSCENES_INTRINSICS.scaled(16, 12)


def test_sevenscenes_reads_the_shared_redkitchen_frames():
    from conftest import SHARED_DATA, require_shared

    root = require_shared(SHARED_DATA / 'sevenscenes_redkitchen' / 'frames')
    dataset = get_dataset(str(root))
    assert len(dataset) == 300 and dataset.sample_name(1) == '000002'
    sample = dataset[0]
    raw = cv2.imread(str(root / 'frame-000000.depth.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(sample.depth, raw.astype(np.float32) / 1000)
    assert sample.intrinsics == Intrinsics(585.0, 585.0, 320.0, 240.0, 640, 480)
    assert dataset.pose(0).shape == (4, 4)
    valid = sample.depth > 0
    assert 0.8 < valid.mean() and 0.7 < sample.depth[valid].min() < sample.depth.max() < 4


# --- rosbag2 (db3 and mcap) ----------------------------------------------------------------------

def _write_rgbd_bag(path, storage, frames, depth_encoding='16UC1', compressed=False):
    """Record colour (bgr8 Image with row padding, or JPEG CompressedImage), depth and
    camera_info topics with the rosbags writer; return what was recorded per colour stamp."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    types = store.types
    Header, Time = types['std_msgs/msg/Header'], types['builtin_interfaces/msg/Time']
    Image, Info = types['sensor_msgs/msg/Image'], types['sensor_msgs/msg/CameraInfo']
    Compressed, Roi = types['sensor_msgs/msg/CompressedImage'], types[
        'sensor_msgs/msg/RegionOfInterest']
    height, width = 12, 16
    plugin = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}[storage]
    recorded = {}

    def header(stamp_ns, frame='camera_color_optical_frame'):
        return Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
                      frame_id=frame)

    with Writer(path, version=9, storage_plugin=plugin) as writer:
        colour_type = Compressed.__msgtype__ if compressed else Image.__msgtype__
        colour = writer.add_connection('/camera/color/image_raw', colour_type, typestore=store)
        depth = writer.add_connection('/camera/aligned_depth_to_color/image_raw',
                                      Image.__msgtype__, typestore=store)
        info = writer.add_connection('/camera/color/camera_info', Info.__msgtype__,
                                     typestore=store)
        k = np.array([100.0, 0, 7.5, 0, 101.0, 5.5, 0, 0, 1])
        p = np.array([100.0, 0, 7.25, 0, 0, 101.0, 5.25, 0, 0, 0, 1, 0])
        message = Info(header=header(frames[0][0]), height=height, width=width,
                       distortion_model='plumb_bob', d=np.zeros(5), k=k, r=np.eye(3).reshape(-1),
                       p=p, binning_x=0, binning_y=0,
                       roi=Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
        writer.write(info, frames[0][0], store.serialize_cdr(message, Info.__msgtype__))
        for colour_ns, depth_ns in frames:
            rgb = (np.full((height, width, 3), 40, np.uint8) if compressed
                   else _random_rgb(height, width))
            if compressed:
                rgb[:, :8] = (200, 30, 90)
                ok, jpeg = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                message = Compressed(header=header(colour_ns), format='png',
                                     data=np.frombuffer(jpeg.tobytes(), np.uint8))
            else:
                padded = np.zeros((height, width * 3 + 4), np.uint8)  # 4 bytes of row padding
                padded[:, :width * 3] = rgb[..., ::-1].reshape(height, -1)
                message = Image(header=header(colour_ns), height=height, width=width,
                                encoding='bgr8', is_bigendian=0, step=width * 3 + 4,
                                data=padded.reshape(-1))
            writer.write(colour, colour_ns, store.serialize_cdr(message, colour_type))
            if depth_encoding == '16UC1':
                values = RNG.integers(0, 9000, size=(height, width), dtype=np.uint16)
                expected = values.astype(np.float32) / np.float32(1000)
                data = values.astype('<u2').view(np.uint8).reshape(-1)
            else:
                values = RNG.uniform(0.3, 5.0, size=(height, width)).astype(np.float32)
                values[0, 0] = np.nan
                expected = np.where(np.isfinite(values), values, 0).astype(np.float32)
                data = values.astype('<f4').view(np.uint8).reshape(-1)
            itemsize = 2 if depth_encoding == '16UC1' else 4
            message = Image(header=header(depth_ns, 'camera_depth_optical_frame'), height=height,
                            width=width, encoding=depth_encoding, is_bigendian=0,
                            step=width * itemsize, data=data)
            writer.write(depth, depth_ns + 1000, store.serialize_cdr(message, Image.__msgtype__))
            recorded[colour_ns] = (rgb, expected)
    return recorded


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_rosbag2_pairs_colour_and_depth_by_stamp(tmp_path, storage):
    from depth_estimation.datasets.rosbag import RosbagDataset

    base = 1_700_000_000 * 10**9
    frames = [(base, base + 3_000_000), (base + 100_000_000, base + 95_000_000),
              (base + 200_000_000, base + 260_000_000)]  # the third depth is 60 ms off
    recorded = _write_rgbd_bag(tmp_path / 'bag', storage, frames)
    storage_file = next((tmp_path / 'bag').glob('*.mcap' if storage == 'mcap' else '*.db3'))
    dataset = get_dataset(str(storage_file))
    assert isinstance(dataset, RosbagDataset) and len(dataset) == 2
    assert dataset.color_topic == '/camera/color/image_raw'
    assert dataset.depth_topic == '/camera/aligned_depth_to_color/image_raw'
    assert dataset.camera_info_topic == '/camera/color/camera_info'
    for index, (colour_ns, depth_ns) in enumerate(frames[:2]):
        sample = dataset[index]
        rgb, depth = recorded[colour_ns]
        np.testing.assert_array_equal(sample.image, rgb)
        np.testing.assert_array_equal(sample.depth, depth)
        assert dataset.timestamps(index) == pytest.approx((colour_ns * 1e-9, depth_ns * 1e-9))
        assert sample.intrinsics == Intrinsics(100.0, 101.0, 7.25, 5.25, 16, 12)
    assert len(get_dataset(str(tmp_path / 'bag'), max_difference=0.1)) == 3
    # DataLoader workers get a pickled copy (spawn) or a fork; both reopen the bag themselves.
    copy = pickle.loads(pickle.dumps(dataset))
    np.testing.assert_array_equal(copy[1].depth, recorded[frames[1][0]][1])


def test_rosbag2_float_depth_and_compressed_colour(tmp_path):
    base = 1_700_000_000 * 10**9
    recorded = _write_rgbd_bag(tmp_path / 'bag', 'mcap', [(base, base)], depth_encoding='32FC1',
                               compressed=True)
    sample = get_dataset(f'rosbag:{tmp_path / "bag"}')[0]
    rgb, depth = recorded[base]
    np.testing.assert_array_equal(sample.image, rgb)
    np.testing.assert_array_equal(sample.depth, depth)
    assert sample.depth[0, 0] == 0.0
    with pytest.raises(DatasetError, match="no Image topic '/nope'"):
        get_dataset(f'rosbag:{tmp_path / "bag"}', color_topic='/nope')


def test_every_reader_imports_without_rclpy_and_h5py_scipy_lazily():
    import subprocess
    import sys

    code = ('import sys, depth_estimation.datasets as d\n'
            'for name in d.READERS: d.reader_class(name)\n'
            'bad = [m for m in ("rclpy", "h5py", "scipy", "torch") if m in sys.modules]\n'
            'assert not bad, bad\n')
    subprocess.run([sys.executable, '-c', code], check=True)
