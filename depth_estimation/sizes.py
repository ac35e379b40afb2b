"""Image sizes as people type them: HEIGHTxWIDTH in pixels (rows first, like numpy shapes).

Every size option, config and metadata field of the package uses this convention and this
parser, so one message explains every malformed size.
"""

from __future__ import annotations

import argparse
from typing import Callable


def parse_size(text: str, multiple_of: int = 1) -> tuple[int, int]:
    """'192x256' -> (192, 256): (height, width) in pixels, positive multiples of `multiple_of`.

    Raises ValueError for anything else; `size_argument` wraps it for argparse.
    """
    try:
        height, width = (int(value) for value in str(text).lower().split('x'))
    except ValueError:
        raise ValueError(f'size {text!r} is not HEIGHTxWIDTH in pixels, e.g. 480x640') from None
    if height <= 0 or width <= 0 or height % multiple_of or width % multiple_of:
        rule = 'positive' if multiple_of == 1 else f'positive multiples of {multiple_of}'
        raise ValueError(f'size {text!r}: height and width must be {rule}')
    return height, width


def format_size(size: tuple[int, int]) -> str:
    """(192, 256) -> '192x256' (height x width)."""
    return f'{int(size[0])}x{int(size[1])}'


def size_argument(multiple_of: int = 1) -> Callable[[str], tuple[int, int]]:
    """An argparse `type=` that parses HEIGHTxWIDTH with `parse_size`."""
    def parse(text: str) -> tuple[int, int]:
        try:
            return parse_size(text, multiple_of)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = 'size'  # argparse names the type in its messages
    return parse
