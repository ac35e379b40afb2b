"""Tiny ONNX depth models written with onnx.helper: the real input and output names and metadata.

Each model takes the project's input (`image`, (1, 3, 96, 128) float32, normalised as the tiny
preset says) and gives `depth` (1, 1, 96, 128) metres, with the tiny preset's `.onnx.json`
beside it, so `open_backend` and the node load it like an exported artifact; a few arithmetic
nodes decide what depth it gives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

from depth_estimation.artifacts import ArtifactMetadata, write_metadata
from depth_estimation.model.presets import get_preset


def _write(path: Path, scale: float, offset: float) -> Path:
    """depth = scale * image[:, :1] + offset (the normalised red channel), with its metadata."""
    metadata = ArtifactMetadata.from_model_config(get_preset('tiny'),
                                                  source={'graph': 'onnx.helper test model'})
    shape = [1, 3, metadata.input_height, metadata.input_width]
    constants = {'starts': [0], 'ends': [1], 'axes': [1]}
    initializers = [numpy_helper.from_array(np.array(values, np.int64), name)
                    for name, values in constants.items()]
    initializers += [numpy_helper.from_array(np.array(scale, np.float32), 'scale'),
                     numpy_helper.from_array(np.array(offset, np.float32), 'offset')]
    nodes = [helper.make_node('Slice', ['image', 'starts', 'ends', 'axes'], ['red']),
             helper.make_node('Mul', ['red', 'scale'], ['scaled']),
             helper.make_node('Add', ['scaled', 'offset'], [metadata.output_name])]
    graph = helper.make_graph(
        nodes, 'test_depth',
        [helper.make_tensor_value_info(metadata.input_name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(metadata.output_name, TensorProto.FLOAT,
                                       [1, 1] + shape[2:])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)],
                              ir_version=8)  # onnx 1.23 writes IR 14: newer than ORT reads
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    write_metadata(path, metadata)
    return path


def constant_depth_model(path: Path, value: float) -> Path:
    """A model whose depth is `value` metres everywhere (finite; <= 0 is no valid depth)."""
    return _write(path, 0.0, value)


def brightness_depth_model(path: Path) -> Path:
    """Depth from the red channel: about 2 m for a white image, -0.05 m (invalid) for black.

    With the tiny preset's normalisation (x / 255 - 0.5) / 0.5 the depth is 2 r / 255 - 0.05:
    valid for all but the darkest pixels of a camera image, for none of a black frame.
    """
    return _write(path, 1.0, 0.95)


__all__ = ['brightness_depth_model', 'constant_depth_model']
