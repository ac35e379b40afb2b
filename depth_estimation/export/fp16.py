"""Mixed-precision ONNX: the backbone and neck in FP16, the metric head and risky ops in FP32.

ZoeDepth loses accuracy when its metric head (seed bins, attractors, log-binomial distribution)
runs in FP16, and MiDaS-style backbones overflow FP16 in a few activations (../shared/REFERENCE.md,
isl-org/MiDaS issue 56). So only the nodes of the named scopes (by default the BEiT/Swin
backbone and the DPT neck, whose node names start with `/backbone/` and `/neck/` in graphs
written by the TorchScript exporter) run in FP16, and even there the ops that square, exponentiate
or reduce (`FP32_OP_TYPES`: LayerNorm's variance, softmax, powers, logs, sums) stay in FP32. The
graph input and output stay float32, so every runtime feeds and reads the variant exactly like the
FP32 model; Cast nodes sit at each precision boundary. A strongly typed TensorRT network takes its
precision from these casts, which is why this file exists instead of TensorRT precision flags.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    import onnx

DEFAULT_FP16_SCOPES = ('/backbone/', '/neck/')
# Ops that stay FP32 even inside an FP16 scope: their intermediates overflow or lose precision in
# FP16 (x^2 in LayerNorm variances and the attractors' Pow, exp in softmax, sums over many
# elements).
FP32_OP_TYPES = frozenset({
    'LayerNormalization', 'Softmax', 'LogSoftmax', 'Exp', 'Log', 'Pow', 'Sqrt', 'Reciprocal',
    'ReduceMean', 'ReduceSum', 'ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp', 'ReduceProd',
    'Softplus', 'CumSum',
})
# Nodes whose float inputs are shape-like or have their own type parameter: never cast.
_KEEP_FLOAT_INPUTS = {'Resize': (1, 2), 'Upsample': (1,)}
FP16_MAX = float(np.finfo(np.float16).max)


class MixedPrecisionError(ValueError):
    """The graph cannot be converted (subgraphs, unknown tensor types)."""


@dataclass
class MixedPrecisionReport:
    """What the conversion did, for the metadata and the log."""

    fp16_scopes: list[str]
    fp32_op_types: list[str]
    nodes_fp16: int = 0
    nodes_fp32: int = 0
    casts_inserted: int = 0
    initializers_converted: int = 0
    values_clipped: int = 0  # initializer values beyond the FP16 range, clipped to +-65504
    fp16_op_types: dict[str, int] = field(default_factory=dict)


def convert_to_mixed_fp16(model: onnx.ModelProto,
                          fp16_scopes: Sequence[str] = DEFAULT_FP16_SCOPES,
                          fp32_op_types: Iterable[str] = FP32_OP_TYPES
                          ) -> tuple[onnx.ModelProto, MixedPrecisionReport]:
    """Return a copy of `model` whose nodes in `fp16_scopes` compute in FP16 (see module doc).

    Tensor types come from ONNX shape inference, so the model must have static, inferable
    shapes (ours do). The converted model is checked with `onnx.checker` before it is returned.
    """
    import onnx

    fp32_op_types = frozenset(fp32_op_types)
    report = MixedPrecisionReport(list(fp16_scopes), sorted(fp32_op_types))
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    graph = model.graph
    nodes = list(graph.node)  # one Python object per node: `half` is keyed by id()
    _require_flat_graph(nodes)
    rewriter = _MixedPrecisionRewriter(graph, _element_types(graph, nodes), report)
    half = _half_nodes(nodes, rewriter.is_float, fp16_scopes, fp32_op_types)
    for node in nodes:
        rewriter.add(node, half[id(node)])
    rewriter.cast_outputs_to_float()
    rewriter.replace_graph_nodes()
    report.fp16_op_types = dict(sorted(rewriter.fp16_ops.items()))
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model, report


def _require_flat_graph(nodes: Sequence[onnx.NodeProto]) -> None:
    """Raise `MixedPrecisionError` when a node carries a subgraph (If, Loop, Scan)."""
    import onnx

    for node in nodes:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for a in node.attribute):
            raise MixedPrecisionError(f'node {node.name!r} ({node.op_type}) has a subgraph; '
                                      'mixed precision supports flat graphs only')


def _element_types(graph: onnx.GraphProto, nodes: Sequence[onnx.NodeProto]) -> dict[str, int]:
    """The ONNX element type of every named tensor: values, initializers and Constant outputs."""
    elem_type: dict[str, int] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        elem_type[value.name] = value.type.tensor_type.elem_type
    for initializer in graph.initializer:
        elem_type[initializer.name] = initializer.data_type
    for node in nodes:
        if node.op_type == 'Constant':
            for attribute in node.attribute:
                if attribute.name == 'value':
                    elem_type[node.output[0]] = attribute.t.data_type
    return elem_type


def _half_nodes(nodes: Sequence[onnx.NodeProto], is_float: Callable[[str], bool],
                fp16_scopes: Sequence[str], fp32_op_types: frozenset[str]) -> dict[int, bool]:
    """Whether each node (by id()) computes in FP16.

    A node in an FP16 scope does unless its op type stays FP32; a float Constant feeding only
    FP16 nodes becomes an FP16 constant instead of a Cast.
    """
    def half_node(node: onnx.NodeProto) -> bool:
        return (node.name.startswith(tuple(fp16_scopes)) and node.op_type not in fp32_op_types
                and node.op_type != 'Constant')

    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    half = {id(node): half_node(node) for node in nodes}
    for node in nodes:
        if node.op_type == 'Constant' and is_float(node.output[0]):
            users = consumers.get(node.output[0], [])
            half[id(node)] = bool(users) and all(
                half[id(u)] and _input_wants_half(u, node.output[0]) for u in users)
    return half


def _clipped_half(array: np.ndarray, report: MixedPrecisionReport) -> np.ndarray:
    """`array` in float16, values beyond the FP16 range clipped (and counted in `report`)."""
    report.values_clipped += int(np.count_nonzero(np.abs(array) > FP16_MAX))
    return np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16)


class _MixedPrecisionRewriter:
    """Builds the new node list: FP16 nodes retyped, Casts (or FP16 initializers) at each
    precision boundary."""

    def __init__(self, graph: onnx.GraphProto, elem_type: dict[str, int],
                 report: MixedPrecisionReport) -> None:
        self.graph = graph
        self.elem_type = elem_type
        self.report = report
        self.initializers = {i.name: i for i in graph.initializer}
        self.produced_half: set[str] = set()  # float tensors that are produced in FP16
        self.new_nodes: list[onnx.NodeProto] = []
        self.cast_cache: dict[tuple[str, bool], str] = {}
        self.fp16_ops: Counter[str] = Counter()

    def is_float(self, name: str) -> bool:
        from onnx import TensorProto

        return bool(name) and self.elem_type.get(name) == TensorProto.FLOAT

    def cast(self, name: str, to_half: bool) -> str:
        """The name of `name` in the other precision: an FP16 initializer or a Cast's output."""
        from onnx import TensorProto, helper, numpy_helper

        key = (name, to_half)
        if key not in self.cast_cache:
            if name in self.initializers:
                if not to_half:
                    raise MixedPrecisionError(f'initializer {name} asked for FP32 twice')
                array = numpy_helper.to_array(self.initializers[name])
                new_name = f'{name}__fp16'
                self.graph.initializer.append(
                    numpy_helper.from_array(_clipped_half(array, self.report), new_name))
                self.report.initializers_converted += 1
            else:
                suffix = 'fp16' if to_half else 'fp32'
                new_name = f'{name}__to_{suffix}'
                self.new_nodes.append(helper.make_node(
                    'Cast', [name], [new_name], name=f'{name}__cast_to_{suffix}',
                    to=TensorProto.FLOAT16 if to_half else TensorProto.FLOAT))
                self.report.casts_inserted += 1
            self.cast_cache[key] = new_name
        return self.cast_cache[key]

    def add(self, node: onnx.NodeProto, node_half: bool) -> None:
        """Append `node`, its float inputs cast to its precision, retyped when FP16."""
        if node.op_type == 'Constant':
            self._add_constant(node, node_half)
            return
        for index, name in enumerate(node.input):
            if not self.is_float(name):
                continue
            want_half = node_half and _input_wants_half(node, name, index)
            is_half = name in self.produced_half
            if want_half != is_half:
                node.input[index] = self.cast(name, want_half)
        if node_half:
            self._retype_half(node)
        else:
            self.report.nodes_fp32 += 1
        self.new_nodes.append(node)

    def _add_constant(self, node: onnx.NodeProto, node_half: bool) -> None:
        from onnx import numpy_helper

        if node_half:
            for attribute in node.attribute:
                if attribute.name == 'value':
                    array = numpy_helper.to_array(attribute.t)
                    attribute.t.CopyFrom(numpy_helper.from_array(
                        _clipped_half(array, self.report), attribute.t.name))
            self.produced_half.add(node.output[0])
        self.new_nodes.append(node)

    def _retype_half(self, node: onnx.NodeProto) -> None:
        """An FP16 node: float Cast targets and ConstantOfShape values become FP16."""
        from onnx import TensorProto, numpy_helper

        self.report.nodes_fp16 += 1
        self.fp16_ops[node.op_type] += 1
        for attribute in node.attribute:
            if node.op_type == 'Cast' and attribute.name == 'to' and \
                    attribute.i == TensorProto.FLOAT:
                attribute.i = TensorProto.FLOAT16
            if node.op_type == 'ConstantOfShape' and attribute.name == 'value' and \
                    attribute.t.data_type == TensorProto.FLOAT:
                attribute.t.CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(attribute.t).astype(np.float16), attribute.t.name))
        self.produced_half.update(o for o in node.output if self.is_float(o))

    def cast_outputs_to_float(self) -> None:
        """The graph outputs stay float32: rename an FP16 producer's output and cast it back."""
        from onnx import TensorProto, helper

        for output in self.graph.output:
            if output.name in self.produced_half:
                inner = f'{output.name}__fp16_out'
                for node in self.new_nodes:
                    node.output[:] = [inner if o == output.name else o for o in node.output]
                    node.input[:] = [inner if i == output.name else i for i in node.input]
                self.new_nodes.append(helper.make_node('Cast', [inner], [output.name],
                                                       name=f'{output.name}__cast_out',
                                                       to=TensorProto.FLOAT))
                self.report.casts_inserted += 1

    def replace_graph_nodes(self) -> None:
        """Put the new nodes in the graph; drop FP32 initializers no node reads any more."""
        graph = self.graph
        used = {name for node in self.new_nodes for name in node.input}
        kept = [i for i in graph.initializer if i.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
        del graph.node[:]
        graph.node.extend(self.new_nodes)
        del graph.value_info[:]


def _input_wants_half(node: onnx.NodeProto, name: str,
                      index: Optional[int] = None) -> bool:
    """Whether input `name` (at `index`) of an FP16 node is cast to FP16 (not Resize scales)."""
    keep = _KEEP_FLOAT_INPUTS.get(node.op_type, ())
    indices = [index] if index is not None else [i for i, n in enumerate(node.input) if n == name]
    return not any(i in keep for i in indices)
