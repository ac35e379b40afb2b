"""`depth-estimation predict`: offline metric depth for image files, folders and videos.

For each frame NAME (an image's file stem, or `VIDEO_000123` for frame 123 of VIDEO) it writes the
`--outputs` into the output folder (see `register`). Unreadable inputs are reported and skipped;
the exit code is 1 only if no frame was processed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from depth_estimation.artifacts import model_option
from depth_estimation.tools.sources import (collect_files, expected_frames, Frame, iter_frames,
                                            Skipped)

OUTPUT_KINDS = ('npy', 'png', 'color', 'ply')
OUTPUT_SUFFIXES = {'npy': '_depth.npy', 'png': '_depth_mm.png', 'color': '_depth_color.png',
                   'ply': '_points.ply'}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'predict',
        help='metric depth for images, folders or videos (npy, 16-bit PNG, colour, PLY)',
        description='Run a depth model on image files, folders of images/videos (not recursive) '
                    'or videos, and write per frame: NAME_depth.npy (float32 metres), '
                    'NAME_depth_mm.png (uint16 millimetres, 0 = invalid), NAME_depth_color.png '
                    '(colour map + colour bar in metres) and NAME_points.ply (needs --camera or '
                    '--fov). Unreadable files are reported and skipped.')
    parser.add_argument('inputs', nargs='+', type=Path, metavar='INPUT',
                        help='image file, video file or folder of them')
    parser.add_argument('--model', '-m', **model_option(),
                        help='model artifact: .onnx (with .onnx.json beside it) or a .pt '
                             'checkpoint (default: the shipped default model, '
                             '`depth-estimation models --default`)')
    parser.add_argument('--output', '-o', type=Path, default=Path('predictions'),
                        help='output folder, created if needed (default: ./predictions)')
    parser.add_argument('--backend', default='auto',
                        choices=('auto', 'onnxruntime', 'torch'),
                        help='inference backend (default: from the model suffix)')
    parser.add_argument('--threads', type=int, default=0,
                        help='CPU threads for inference (0: the library default)')
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument('--camera', type=Path, metavar='FILE',
                        help='camera intrinsics for the point clouds: ROS camera_info YAML, '
                             'Open3D intrinsic JSON, or JSON/YAML with fx fy cx cy width height; '
                             'scaled to each image size')
    camera.add_argument('--fov', type=float, metavar='DEG',
                        help='horizontal field of view in degrees for the point clouds (square '
                             'pixels, principal point at the image centre)')
    parser.add_argument('--outputs', default=','.join(OUTPUT_KINDS),
                        help=f'comma-separated outputs to write, of {",".join(OUTPUT_KINDS)} '
                             '(default: all)')
    parser.add_argument('--colormap', default='turbo',
                        help='OpenCV colour map for the colour images (default: turbo; near is '
                             'the start of the map)')
    parser.add_argument('--color-range', default='auto', metavar='auto|model|MIN,MAX',
                        help="colour scale in metres: 'auto' (2nd-98th percentile of each "
                             "frame, the default), 'model' (the model's depth range) or "
                             'MIN,MAX fixed for every frame (best for videos)')
    parser.add_argument('--ply-ascii', action='store_true',
                        help='write ASCII PLY (default: binary little-endian)')
    parser.add_argument('--stride', type=int, default=1,
                        help='process every Nth video frame (default: 1, every frame)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.set_defaults(handler=run)


def parse_outputs(text: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(k.strip().lower() for k in text.split(',') if k.strip()))
    unknown = [k for k in kinds if k not in OUTPUT_KINDS]
    if unknown or not kinds:
        raise ValueError(f'--outputs {text!r}: expected a comma-separated subset of '
                         f'{",".join(OUTPUT_KINDS)}')
    return kinds


def parse_color_range(text: str) -> Union[str, tuple[float, float]]:
    text = text.strip().lower()
    if text in ('auto', 'model'):
        return text
    try:
        low, high = (float(v) for v in text.split(','))
    except ValueError:
        raise ValueError(f"--color-range {text!r}: expected 'auto', 'model' or MIN,MAX in "
                         'metres') from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low < high):
        raise ValueError(f'--color-range {text!r}: need 0 <= MIN < MAX')
    return low, high


@dataclass
class CameraModel:
    """Where the point-cloud intrinsics come from, resolved and cached per image size."""

    file_intrinsics: Any = None  # geometry.Intrinsics at the calibration size
    fov: Optional[float] = None
    cache: dict[tuple[int, int], Any] = field(default_factory=dict)

    def for_size(self, width: int, height: int) -> tuple[Any, Optional[str]]:
        """Intrinsics for a width x height image, and a note the first time a size is seen."""
        from depth_estimation.geometry import Intrinsics

        if (width, height) in self.cache:
            return self.cache[(width, height)], None
        if self.fov is not None:
            intrinsics = Intrinsics.from_fov(self.fov, width, height)
            note = (f'intrinsics for {width}x{height} from --fov {self.fov:g}: '
                    f'{describe_intrinsics(intrinsics)} (principal point assumed at the image '
                    'centre, square pixels)')
        else:
            calibration = self.file_intrinsics
            intrinsics = calibration.scaled(width, height)
            if (width, height) == (calibration.width, calibration.height):
                note = f'intrinsics for {width}x{height}: {describe_intrinsics(intrinsics)}'
            else:
                note = (f'intrinsics scaled from the {calibration.width}x{calibration.height} '
                        f'calibration to {width}x{height}: {describe_intrinsics(intrinsics)}')
                ratio = (width / height) / (calibration.width / calibration.height)
                if abs(ratio - 1.0) > 0.01:
                    note += ('; warning: the aspect ratio differs from the calibration, so the '
                             'image may be cropped rather than resized and the points wrong')
        self.cache[(width, height)] = intrinsics
        return intrinsics, note


def describe_intrinsics(intrinsics: Any) -> str:
    return (f'fx={intrinsics.fx:.2f} fy={intrinsics.fy:.2f} cx={intrinsics.cx:.2f} '
            f'cy={intrinsics.cy:.2f}')


def write_frame(frame: Frame, depth: Any, output: Path, kinds: tuple[str, ...],
                color_range: Union[str, tuple[float, float]], model_range: tuple[float, float],
                colormap: str, camera: CameraModel, ply_ascii: bool) -> Optional[str]:
    """Write the selected outputs of one frame; returns a note about its intrinsics or None."""
    import cv2
    import numpy as np

    from depth_estimation.geometry import depth_to_points, valid_depth_mask
    from depth_estimation.io import write_depth_png_mm, write_ply
    from depth_estimation.visualize import auto_range, colorize_with_colorbar

    note = None
    paths = {kind: output / f'{frame.name}{OUTPUT_SUFFIXES[kind]}' for kind in kinds}
    if 'npy' in paths:
        np.save(paths['npy'], np.asarray(depth, dtype=np.float32))
    if 'png' in paths:
        write_depth_png_mm(paths['png'], depth)
    if 'color' in paths:
        if color_range == 'auto':
            low, high = auto_range(depth) or model_range
        elif color_range == 'model':
            low, high = model_range
        else:
            low, high = color_range
        image = colorize_with_colorbar(depth, low, high, colormap)
        if not cv2.imwrite(str(paths['color']), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OSError(f'cannot write {paths["color"]}')
    if 'ply' in paths:  # only with intrinsics
        height, width = depth.shape
        intrinsics, note = camera.for_size(width, height)
        points = depth_to_points(depth, intrinsics)  # (H, W, 3), NaN where invalid
        valid = valid_depth_mask(depth)  # (H, W)
        write_ply(paths['ply'], points[valid], frame.rgb[valid], binary=not ply_ascii,
                  comments=('depth-estimation predict', f'source {frame.source}',
                            f'intrinsics {describe_intrinsics(intrinsics)} '
                            f'width={width} height={height}'))
    return note


def run(args: argparse.Namespace) -> int:
    from depth_estimation.inference import open_backend
    from depth_estimation.geometry import Intrinsics
    from depth_estimation.io import read_intrinsics_file
    from depth_estimation.progress import Progress
    from depth_estimation.visualize import colormap_lut

    kinds = parse_outputs(args.outputs)
    color_range = parse_color_range(args.color_range)
    colormap_lut(args.colormap)  # fail early on an unknown colour map
    if args.stride < 1:
        raise ValueError(f'--stride must be >= 1, got {args.stride}')
    if args.fov is not None:
        Intrinsics.from_fov(args.fov, 2, 2)  # validate the angle now
    camera = CameraModel(read_intrinsics_file(args.camera) if args.camera else None, args.fov)
    if 'ply' in kinds and camera.file_intrinsics is None and camera.fov is None:
        print('predict: no --camera or --fov given, so no point clouds are written',
              file=sys.stderr)
        kinds = tuple(k for k in kinds if k != 'ply')

    files, skipped = collect_files(list(args.inputs))
    total = expected_frames(files, args.stride)
    output = args.output
    output.mkdir(parents=True, exist_ok=True)

    frames = images = 0
    inference_seconds = 0.0
    progress = Progress(total or None, 'frame', 'predict', enabled=not args.no_progress)
    for item in skipped:
        progress.write(f'predict: skipped {item.source}: {item.reason}')
    opened = start = time.perf_counter()
    try:
        with open_backend(args.model, args.backend, num_threads=args.threads) as backend:
            model_range = (float(backend.metadata.min_depth), float(backend.metadata.max_depth))
            start = time.perf_counter()
            for item in iter_frames(files, args.stride):
                if isinstance(item, Skipped):
                    skipped.append(item)
                    progress.write(f'predict: skipped {item.source}: {item.reason}')
                    progress.update(item.counted)
                    continue
                try:
                    depth = backend.infer(item.rgb)
                    inference_seconds += backend.last_timings.total
                    note = write_frame(item, depth, output, kinds, color_range, model_range,
                                       args.colormap, camera, args.ply_ascii)
                except Exception as error:  # one bad frame must not stop the others
                    skipped.append(Skipped(item.source, f'{type(error).__name__}: {error}'))
                    progress.write(f'predict: failed on {item.source}: '
                                   f'{type(error).__name__}: {error}')
                else:
                    frames += 1
                    images += not item.from_video
                    if note:
                        progress.write(f'predict: {note}')
                progress.update()
    finally:
        progress.close()
    seconds = time.perf_counter() - start

    if frames:
        per_frame = seconds / frames
        print(f'predict: {frames} frame(s) ({images} image(s), {frames - images} video '
              f'frame(s)) in {seconds:.1f} s after loading the model in {start - opened:.1f} s: '
              f'{per_frame:.3f} s/frame (reading, inference and writing), of which inference '
              f'{inference_seconds / frames:.3f} s/frame')
    else:
        print('predict: no frame could be processed')
    if skipped:
        print(f'predict: {len(skipped)} skipped:')
        for item in skipped:
            print(f'  {item.source}: {item.reason}')
    print(f'predict: outputs ({", ".join(kinds)}) in {output.resolve()}')
    return 0 if frames else 1
