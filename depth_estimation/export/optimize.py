"""Constant folding and graph simplification of a static-shape ONNX model (onnxslim).

Why onnxslim: a pure-Python wheel that installs on top of our onnx pin with one small extra
dependency (colorama), and on our graphs it folds the TorchScript export's shape arithmetic and
the BEiT relative-position tables (a Resize of a constant in every block) into constants: the
tiny preset goes from 2726 to 588 nodes. TensorRT's parser then sees only the real network, and
ONNX Runtime no longer warns that it cannot fold those Resize nodes. The inputs and outputs must
come out unchanged and `onnx.checker` must pass, else the result is refused; the parity check
against PyTorch runs on the simplified file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Union

PathLike = Union[str, Path]


@dataclass
class SimplifyReport:
    tool: str
    version: str
    nodes_before: int
    nodes_after: int
    seconds: float


def simplify_onnx(source: PathLike, output: PathLike) -> SimplifyReport:
    """Fold constants and drop dead nodes of `source`, write `output` (may be the same path)."""
    import onnx
    import onnxslim

    start = time.perf_counter()
    model = onnx.load(str(source))
    nodes_before = len(model.graph.node)
    simplified = onnxslim.slim(model)
    if simplified is None:
        raise RuntimeError(f'onnxslim could not simplify {source}')
    for original, new in zip(model.graph.input, simplified.graph.input):
        if original.type != new.type or original.name != new.name:
            raise RuntimeError(f'onnxslim changed input {original.name!r}; not using its result')
    if [o.name for o in model.graph.output] != [o.name for o in simplified.graph.output]:
        raise RuntimeError('onnxslim changed the outputs; not using its result')
    try:
        onnx.checker.check_model(simplified)
        onnx.save(simplified, str(output))
    except ValueError:  # over protobuf's 2 GB: weights go to a file beside the model
        onnx.save(simplified, str(output), save_as_external_data=True,
                  location=f'{Path(output).name}.data')
        onnx.checker.check_model(str(output))
    return SimplifyReport('onnxslim', onnxslim.__version__, nodes_before,
                          len(simplified.graph.node), time.perf_counter() - start)
