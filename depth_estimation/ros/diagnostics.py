"""The node's diagnostics: plain statistics into diagnostic_msgs (topic_monitor style).

Also the model's identity for diagnostics and logs: backend, model, config hash and a hash of the
artifact file, so an operator can tell exactly which engine or ONNX file is running.
"""

from __future__ import annotations

from pathlib import Path
import time
from typing import Any, Mapping, Optional, Union

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from depth_estimation.artifacts import file_sha256
from depth_estimation.pipeline.stats import FrameStatistics, OK, WARN


def model_identity(model_path: Union[str, Path], description: Mapping[str, Any]) -> dict[str, str]:
    """Backend description plus the artifact path and the first 16 hex digits of its SHA-256."""
    identity = {str(key): str(value) for key, value in description.items()}
    identity['model_path'] = str(model_path)
    identity['artifact_sha256'] = file_sha256(model_path)[:16]
    return identity


def node_diagnostics(stamp: Any, name: str, statistics: FrameStatistics, refiner: Optional[Any],
                     settings: Any, active: bool, identity: Mapping[str, str]
                     ) -> DiagnosticArray:
    """The node's status: frame statistics, the refiner's read-outs, the model's identity."""
    level, message, values = statistics.report(time.monotonic(), active, dict(identity))
    if refiner is not None:
        values += refiner.diagnostics(settings)
        warning = refiner.warning(settings) if active else None
        if warning and level == OK:
            level, message = WARN, warning
    hardware_id = f'{identity.get("backend", "")} {identity.get("model", "")}'.strip()
    array = DiagnosticArray(status=[DiagnosticStatus(
        level=bytes([level]), name=name, message=message, hardware_id=hardware_id,
        values=[KeyValue(key=key, value=value) for key, value in values])])
    array.header.stamp = stamp  # builtin_interfaces/Time: the node clock's now
    return array


__all__ = ['model_identity', 'node_diagnostics']
