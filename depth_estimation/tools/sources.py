"""Frames of image files, folders and videos as RGB: what `predict` and the player read."""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
from typing import Any, Iterator, Optional, Union

IMAGE_SUFFIXES = frozenset({'.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.ppm', '.pgm',
                            '.pnm', '.webp', '.jp2'})
VIDEO_SUFFIXES = frozenset({'.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg',
                            '.wmv', '.ogv'})


@dataclass
class Frame:
    """One image to process: output name, human-readable source, RGB uint8 (H, W, 3)."""

    name: str
    source: str
    rgb: Any
    from_video: bool = False


@dataclass
class Skipped:
    """An input (or frame) that could not be processed, and why."""

    source: str
    reason: str
    counted: int = 0  # progress-bar units this input had in the expected total


def folder_files(folder: Path, suffixes: frozenset[str]) -> list[Path]:
    """The files of a folder with one of `suffixes`, sorted by name, not recursive."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in suffixes)


def collect_files(inputs: list[Path]) -> tuple[list[Path], list[Skipped]]:
    """Expand folders (images and videos by suffix, sorted, not recursive); missing paths skip."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for path in inputs:
        if path.is_dir():
            found = folder_files(path, IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not found:
                skipped.append(Skipped(str(path), 'folder holds no image or video files'))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            skipped.append(Skipped(str(path), 'no such file or folder'))
    return files, skipped


def video_properties(path: Path) -> Optional[tuple[int, float]]:
    """(frame count the container claims, maybe approximate; frames per second) of a video, or
    None when OpenCV cannot open it."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return None
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS))
    finally:
        capture.release()


def read_video(path: Path, stride: int) -> Iterator[Union[tuple[int, Any], Skipped]]:
    """(frame index, RGB uint8) for every `stride`-th frame of a video, or one Skipped."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            yield Skipped(str(path), 'cannot open as a video')
            return
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok or bgr is None:
                break
            if index % stride == 0:
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
        if index == 0:
            yield Skipped(str(path), 'no frame could be decoded')
    finally:
        capture.release()


def unique_name(base: str, used: set[str]) -> str:
    """`base`, or `base-2`, `base-3`, ... if already used, so no output overwrites another."""
    name, number = base, 1
    while name in used:
        number += 1
        name = f'{base}-{number}'
    used.add(name)
    return name


def iter_frames(files: list[Path], stride: int = 1) -> Iterator[Union[Frame, Skipped]]:
    """Frames of the files in order, with a Skipped for each unreadable file."""
    from depth_estimation.samples import read_rgb

    used: set[str] = set()
    for path in files:
        suffix = path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            try:
                rgb = read_rgb(path)
            except ValueError:
                if suffix in IMAGE_SUFFIXES:
                    yield Skipped(str(path), 'cannot read as an image (corrupt or unsupported)',
                                  counted=1)
                    continue
            else:
                yield Frame(unique_name(path.stem, used), str(path), rgb)
                continue
        for item in read_video(path, stride):
            if isinstance(item, Skipped):
                if suffix not in VIDEO_SUFFIXES:
                    item.reason, item.counted = 'cannot read as an image or a video', 1
                yield item
            else:
                index, rgb = item
                yield Frame(unique_name(f'{path.stem}_{index:06d}', used), f'{path}#{index}',
                            rgb, from_video=True)


def expected_frames(files: list[Path], stride: int) -> int:
    """Frames the inputs will give: one per image, every `stride`-th of a video (0 if unknown)."""
    total = 0
    for path in files:
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            total += 1
            continue
        count = (video_properties(path) or (0, 0.0))[0]
        total += math.ceil(count / stride) if count > 0 else 0
    return total
