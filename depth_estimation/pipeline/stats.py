"""Frame statistics and log throttling of the depth node, as plain classes (no rclpy).

Like ros2/demos' topic_monitor: the numbers live in small classes that tests drive with their own
clock; one function in the node (`diagnostics.py`) turns `FrameStatistics.report()` into a
diagnostic_msgs/DiagnosticStatus. Times are seconds from any monotonic clock.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
import threading
import time
from typing import Any, Optional

import numpy as np

from depth_estimation.pipeline.ranges import check_bounds

# Levels of diagnostic_msgs/DiagnosticStatus (its byte constants), without importing it.
OK, WARN, ERROR = 0, 1, 2


class RateMeter:
    """Events per second over the last `window` seconds."""

    def __init__(self, window: float = 5.0) -> None:
        check_bounds(0, window=window)
        self.window = float(window)
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window:
            self._times.popleft()

    def rate(self, now: float) -> float:
        """Events per second: events in the window over the time they span (0 with < 2)."""
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def last(self) -> Optional[float]:
        return self._times[-1] if self._times else None


class ValidDepthMonitor:
    """The share of valid depth pixels in the last frames: flags a model that stopped giving depth.

    A frame's share is the fraction of its published depth pixels that hold a measurement (finite:
    inside the depth range). `problem()` names the failure when each of the last `frames` frames
    (all of them while fewer have been seen) had less than `minimum` valid; one good frame clears
    it.
    """

    def __init__(self, frames: int = 5, minimum: float = 0.001) -> None:
        check_bounds(0, frames=frames)
        self.minimum = float(minimum)
        self._shares: deque[float] = deque(maxlen=frames)

    def add(self, share: float) -> None:
        self._shares.append(float(share))

    def last(self) -> Optional[float]:
        return self._shares[-1] if self._shares else None

    def problem(self) -> Optional[str]:
        if not self._shares or max(self._shares) >= self.minimum:
            return None
        return (f'no valid depth: the last {len(self._shares)} frames had '
                f'{max(self._shares):.1%} or less of their pixels inside the depth range (the '
                'model gives NaN, non-positive or out-of-range depth; check the model and the '
                'min_depth / max_depth parameters)')


def valid_share(depth: np.ndarray) -> float:
    """The fraction of depth pixels (H, W) that hold a measurement (finite: not NaN, not +-Inf)."""
    return float(np.count_nonzero(np.isfinite(depth))) / depth.size if depth.size else 0.0


class LatencyWindow:
    """The last `size` durations (seconds) and their percentiles."""

    def __init__(self, size: int = 500) -> None:
        check_bounds(0, size=size)
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(float(seconds))

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100, linear interpolation); NaN when empty."""
        if not self._values:
            return float('nan')
        return float(np.percentile(np.fromiter(self._values, dtype=np.float64), q))


@dataclass
class FrameStatistics:
    """Counters, rates and latencies of the node; thread-safe (callbacks and the worker)."""

    window: float = 5.0  # seconds of the rate meters and of "recent" problems
    received: int = 0
    processed: int = 0
    dropped: int = 0  # replaced by a newer frame before the worker took it
    skipped: int = 0  # bad input or a failure while processing
    skipped_by_reason: Counter = field(default_factory=Counter)
    rejected_camera_info: int = 0
    # other rejected inputs (sparse_depth, scan) and outputs left out of a frame, by reason
    problems_by_reason: Counter = field(default_factory=Counter)
    without_camera_info: int = 0  # published depth only: no intrinsics at all
    from_parameters: int = 0  # intrinsics from parameters (no camera_info)
    size_changes: int = 0  # frames whose image size differed from the one before
    total_latency: float = 0.0
    last_latency: float = 0.0  # image received -> all outputs published
    last_inference: float = 0.0  # backend.infer, all stages

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.input_rate = RateMeter(self.window)
        self.output_rate = RateMeter(self.window)
        self.latency = LatencyWindow()
        self.inference = LatencyWindow()
        self.valid_depth = ValidDepthMonitor()
        self._recent_skips: deque[tuple[float, str]] = deque()
        self._last_skip: Optional[str] = None

    @property
    def mean_latency(self) -> float:
        return self.total_latency / self.processed if self.processed else 0.0

    def summary(self) -> str:
        """One line for the log when the node stops."""
        return (f'{self.processed} frames processed, {self.dropped} dropped, {self.skipped} '
                f'skipped, mean latency {self.mean_latency * 1e3:.1f} ms')

    def on_received(self, now: float, replaced_pending: bool) -> None:
        with self._lock:
            self.received += 1
            self.dropped += int(replaced_pending)
            self.input_rate.tick(now)

    def on_skipped(self, now: float, reason: str, message: str) -> None:
        with self._lock:
            self.skipped += 1
            self.skipped_by_reason[reason] += 1
            if reason == 'model_output':  # the model gave nothing finite: no valid depth
                self.valid_depth.add(0.0)
            self._recent_skips.append((now, reason))
            self._last_skip = message

    def on_camera_info_rejected(self, now: float, message: str) -> None:
        with self._lock:
            self.rejected_camera_info += 1
            self._recent_skips.append((now, 'camera_info_rejected'))
            self._last_skip = message

    def on_problem(self, now: float, reason: str, message: str) -> None:
        """A rejected auxiliary input, or an output left out of a frame that otherwise went out."""
        with self._lock:
            self.problems_by_reason[reason] += 1
            self._recent_skips.append((now, reason))
            self._last_skip = message

    def on_processed(self, now: float, latency: float, inference: float,
                     valid: float = 1.0) -> None:
        """One published frame: its latency, inference time and valid-depth share."""
        with self._lock:
            self.valid_depth.add(valid)
            self.processed += 1
            self.total_latency += latency
            self.last_latency = latency
            self.last_inference = inference
            self.latency.add(latency)
            self.inference.add(inference)
            self.output_rate.tick(now)

    def recent_problems(self, now: float) -> Counter:
        """Skips and rejections by reason within the last `window` seconds."""
        with self._lock:
            while self._recent_skips and self._recent_skips[0][0] < now - self.window:
                self._recent_skips.popleft()
            return Counter(reason for _, reason in self._recent_skips)

    def report(self, now: float, active: bool = True,
               identity: Optional[dict[str, str]] = None
               ) -> tuple[int, str, list[tuple[str, str]]]:
        """(level, message, key-value pairs) for one DiagnosticStatus.

        OK while frames flow; ERROR when the last frames held (almost) no valid depth
        (`ValidDepthMonitor`); WARN when active without input for a whole window, or when frames
        were skipped or camera_info rejected within the window; OK with 'inactive' while a
        lifecycle node is configured but not active.
        """
        problems = self.recent_problems(now)
        with self._lock:
            last_input = self.input_rate.last()
            values = [
                ('input rate (Hz)', f'{self.input_rate.rate(now):.2f}'),
                ('output rate (Hz)', f'{self.output_rate.rate(now):.2f}'),
                ('latency p50 (ms)', _ms(self.latency.percentile(50))),
                ('latency p99 (ms)', _ms(self.latency.percentile(99))),
                ('inference p50 (ms)', _ms(self.inference.percentile(50))),
                ('inference p99 (ms)', _ms(self.inference.percentile(99))),
                ('frames received', str(self.received)),
                ('frames processed', str(self.processed)),
                ('frames dropped (newer frame won)', str(self.dropped)),
                ('frames skipped', str(self.skipped)),
                ('camera_info rejected', str(self.rejected_camera_info)),
                ('frames without intrinsics', str(self.without_camera_info)),
                ('frames with intrinsics from parameters', str(self.from_parameters)),
                ('image size changes', str(self.size_changes)),
            ]
            values += [(f'skipped: {reason}', str(count))
                       for reason, count in sorted(self.skipped_by_reason.items())]
            values += [(f'problem: {reason}', str(count))
                       for reason, count in sorted(self.problems_by_reason.items())]
            last_skip = self._last_skip
            last_valid, no_depth = self.valid_depth.last(), self.valid_depth.problem()
        values.append(('valid depth share (last frame)',
                       'n/a' if last_valid is None else f'{last_valid:.3f}'))
        values += sorted((identity or {}).items())
        if not active:
            return OK, 'inactive', values
        if no_depth:
            return ERROR, no_depth, values
        if last_input is None or last_input < now - self.window:
            return WARN, f'no image received for {self.window:g} s', values
        if problems:
            summary = ', '.join(f'{reason} x{count}' for reason, count in sorted(problems.items()))
            message = f'bad input in the last {self.window:g} s: {summary}; last: {last_skip}'
            return WARN, message, values
        return OK, 'running', values


def _ms(seconds: float) -> str:
    return 'n/a' if seconds != seconds else f'{seconds * 1e3:.1f}'


class LogThrottle:
    """At most one log line per key every `period` seconds, counting what it held back.

    rclpy's own throttling is keyed by the call site, so one site that logs different problems
    would hide all but the first; this keys by the problem instead.
    """

    def __init__(self, period: float = 5.0) -> None:
        self.period = float(period)
        self._last: dict[str, float] = {}
        self._suppressed: Counter = Counter()
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> Optional[int]:
        """None to stay quiet; otherwise the number of lines held back since the last one."""
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period:
                self._suppressed[key] += 1
                return None
            self._last[key] = now
            return self._suppressed.pop(key, 0)


class ThrottledLog(LogThrottle):
    """A logger that writes each problem (key) at most once per `period` seconds.

    `logger` is rclpy's, or anything with `error`, `warning` and `info`.
    """

    def __init__(self, logger: Any, period: float) -> None:
        super().__init__(period)
        self.logger = logger

    def __call__(self, key: str, message: str, level: str = 'warning') -> None:
        held = self.allow(key, time.monotonic())
        if held is None:
            return
        if held:
            message += f' ({held} more like this in the last {self.period:g} s)'
        # One call site per severity: rclpy refuses a call site whose severity changes.
        if level == 'error':
            self.logger.error(message)
        elif level == 'info':
            self.logger.info(message)
        else:
            self.logger.warning(message)


__all__ = ['ERROR', 'FrameStatistics', 'LatencyWindow', 'LogThrottle', 'OK', 'RateMeter',
           'ThrottledLog', 'valid_share', 'ValidDepthMonitor', 'WARN']
