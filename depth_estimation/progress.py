"""One progress bar for long work (evaluate, predict, simulate, benchmark scripts): tqdm on stderr.

`Progress` is a tqdm bar whose `write` prints a message above the bar (on stderr, so that
stdout stays for results). Disabled, it counts silently and still prints messages.
"""

from __future__ import annotations

import sys
from typing import Any, Optional


class Progress:
    """A tqdm bar on stderr with `update`, `write` (a line above the bar) and `close`."""

    def __init__(self, total: Optional[int], unit: str, description: str,
                 enabled: bool = True) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar = tqdm(total=total, unit=unit, desc=description, disable=not enabled,
                        file=sys.stderr, dynamic_ncols=True)

    def update(self, count: int = 1) -> None:
        self.bar.update(count)

    def write(self, message: str) -> None:
        self._tqdm.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exception: Any) -> None:
        self.close()
