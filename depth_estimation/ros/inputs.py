"""The node's latest inputs, shared by the subscription callbacks and the worker thread (no rclpy).

Only the newest image waits (a replaced one counts as dropped), so a slow model drops frames and
latency stays bounded by one inference instead of a queue.
"""

from __future__ import annotations

from collections import deque
import threading
from typing import Any, Callable, Optional

CAMERA_INFO_BUFFER = 10  # CameraInfo messages kept to match image stamps


def stamp_key(msg: Any) -> tuple[int, int]:
    """(sec, nanosec) of a message's header stamp."""
    return (int(msg.header.stamp.sec), int(msg.header.stamp.nanosec))


class LatestInputs:
    """The newest image, recent CameraInfos and the latest sparse sample, and the worker thread."""

    def __init__(self, camera_infos: int = CAMERA_INFO_BUFFER) -> None:
        self._condition = threading.Condition()
        self._image: Optional[tuple[Any, float]] = None  # newest image and its arrival time
        self._camera_infos: deque[Any] = deque(maxlen=camera_infos)
        self._sample: Optional[Any] = None
        self._stopping = False
        self._worker: Optional[threading.Thread] = None

    def start(self, process: Callable[[Any, float], None]) -> None:
        """Forget everything stored and start the worker: `process(image, arrival time)`."""
        with self._condition:
            self._stopping, self._image, self._sample = False, None, None
            self._camera_infos.clear()
        self._worker = threading.Thread(target=self._work, args=(process,),
                                        name='depth_inference', daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Drop the waiting image and stop the worker (after the frame it is on)."""
        with self._condition:
            self._stopping, self._image = True, None
            self._condition.notify_all()
        worker, self._worker = self._worker, None
        if worker is not None and worker.is_alive() and worker is not threading.current_thread():
            worker.join(timeout=60.0)

    def _work(self, process: Callable[[Any, float], None]) -> None:
        while (taken := self.take()) is not None:
            process(*taken)

    def put_image(self, msg: Any, received_at: float) -> bool:
        """Store the newest image; True when it replaced one the worker had not taken."""
        with self._condition:
            replaced = self._image is not None
            self._image = (msg, received_at)
            self._condition.notify()
        return replaced

    def put_camera_info(self, msg: Any) -> None:
        with self._condition:
            self._camera_infos.append(msg)

    def put_sample(self, sample: Any) -> None:
        with self._condition:
            self._sample = sample

    def take(self) -> Optional[tuple[Any, float]]:
        """Wait for the next image: (message, arrival time), or None once stopped."""
        with self._condition:
            while self._image is None and not self._stopping:
                self._condition.wait()
            image, self._image = self._image, None
            return None if self._stopping else image

    def for_image(self, image: Any) -> tuple[Optional[Any], Optional[Any]]:
        """(CameraInfo with the image's stamp, else the latest, or None; latest sparse sample)."""
        with self._condition:
            infos, sample = list(self._camera_infos), self._sample
        stamp = stamp_key(image)
        matched = [info for info in reversed(infos) if stamp_key(info) == stamp]
        return (matched or infos[-1:] or [None])[0], sample


__all__ = ['CAMERA_INFO_BUFFER', 'LatestInputs', 'stamp_key']
