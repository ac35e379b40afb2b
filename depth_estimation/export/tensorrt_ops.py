"""Will TensorRT's ONNX parser take this graph? Checked here, without TensorRT installed.

The supported-operator table is `depth_estimation/resources/tensorrt/onnx_operators.tsv`, copied
from onnx-tensorrt's `docs/operators.md` with the TensorRT version it documents. Beyond "is the
op in the table", the restrictions that our exports can actually hit are checked on the node
attributes (Resize modes, antialiasing, constant reduction axes, LayerNorm's extra outputs,
custom domains, the opset range), so a graph that passes here parses on the first try.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    import onnx

OPERATOR_TABLE = Path(__file__).resolve().parents[1] / 'resources' / 'tensorrt' / \
    'onnx_operators.tsv'
_RESIZE_COORDINATE_MODES = {'half_pixel', 'pytorch_half_pixel', 'tf_half_pixel_for_nn',
                            'asymmetric', 'align_corners'}
_RESIZE_NEAREST_MODES = {'floor', 'ceil', 'round_prefer_floor', 'round_prefer_ceil'}
_AXES_MUST_BE_CONSTANT = {'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceMax',
                          'ReduceMean', 'ReduceMin', 'ReduceProd', 'ReduceSum', 'ReduceSumSquare',
                          'Squeeze', 'Unsqueeze'}


class TensorRTSupportError(ValueError):
    """The graph uses operators or attributes that TensorRT's ONNX parser rejects."""


@dataclass(frozen=True)
class OperatorTable:
    """The parsed support table: which ops, which types, which restrictions."""

    tensorrt_version: str
    opset_min: int
    opset_max: int
    supported: dict[str, str]  # op -> supported types
    restrictions: dict[str, str]  # op -> restriction text (supported ops only)
    unsupported: frozenset[str]
    source: str


@dataclass
class SupportReport:
    """Result of `check_tensorrt_support`: empty `problems` means the parser should accept it."""

    tensorrt_version: str
    opset: int
    op_counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # restrictions of ops we use, checked or not

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {'tensorrt_version': self.tensorrt_version, 'opset': self.opset, 'ok': self.ok,
                'problems': list(self.problems), 'op_counts': dict(self.op_counts)}


@lru_cache(maxsize=None)
def load_operator_table(path: Union[str, Path] = OPERATOR_TABLE) -> OperatorTable:
    """Parse the TSV table (`# key: value` header lines, then operator rows)."""
    header: dict[str, str] = {}
    supported: dict[str, str] = {}
    restrictions: dict[str, str] = {}
    unsupported: set[str] = set()
    lines = Path(path).read_text().splitlines()
    for line in lines:
        if line.startswith('#'):
            key, _, value = line.lstrip('# ').partition(':')
            if value and key.isidentifier():  # '# key: value'; prose lines have spaces
                header[key] = value.strip()
            continue
        if not line.strip() or line.startswith('operator\t'):
            continue
        operator, flag, types, restriction = (line.split('\t') + ['', '', ''])[:4]
        if flag == 'Y':
            supported[operator] = types
            if restriction:
                restrictions[operator] = restriction
        elif flag == 'N':
            unsupported.add(operator)
        else:
            raise ValueError(f'{path}: bad row {line!r}')
    missing = {'tensorrt_version', 'opset_min', 'opset_max'} - set(header)
    if missing or not supported:
        raise ValueError(f'{path}: not an operator table (missing {sorted(missing)})')
    return OperatorTable(header['tensorrt_version'], int(header['opset_min']),
                         int(header['opset_max']), supported, restrictions,
                         frozenset(unsupported), header.get('source', ''))


def check_tensorrt_support(model: Union[str, Path, onnx.ModelProto],
                           table: OperatorTable | None = None) -> SupportReport:
    """List every reason TensorRT's ONNX parser would reject `model` (a path or a ModelProto)."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    table = table or load_operator_table()
    opset = max((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')),
                default=0)
    report = SupportReport(table.tensorrt_version, opset)
    if not table.opset_min <= opset <= table.opset_max:
        report.problems.append(f'opset {opset} is outside TensorRT {table.tensorrt_version}\'s '
                               f'range {table.opset_min}..{table.opset_max}')
    graph = model.graph
    constants = {i.name for i in graph.initializer}
    constants.update(o for n in graph.node if n.op_type == 'Constant' for o in n.output)
    consumed = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    counts: Counter[str] = Counter()
    for node in graph.node:
        where = f'{node.name or "(unnamed)"} ({node.op_type})'
        if node.domain not in ('', 'ai.onnx'):
            report.problems.append(f'{where}: custom domain {node.domain!r} needs a TensorRT '
                                   'plugin')
            continue
        counts[node.op_type] += 1
        if node.op_type in table.unsupported:
            report.problems.append(f'{where}: not supported by TensorRT '
                                   f'{table.tensorrt_version}\'s ONNX parser')
            continue
        if node.op_type not in table.supported:
            report.problems.append(f'{where}: not in the TensorRT {table.tensorrt_version} '
                                   'operator table')
            continue
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        report.problems.extend(f'{where}: {p}' for p in _attribute_problems(
            node, attributes, constants, consumed))
    report.op_counts = dict(sorted(counts.items()))
    report.notes = [f'{op}: {table.restrictions[op]}' for op in report.op_counts
                    if op in table.restrictions]
    return report


def _attribute_problems(node: onnx.NodeProto, attributes: dict[str, object],
                        constants: set[str], consumed: set[str]) -> list[str]:
    """The table's restrictions that can be decided from one node."""
    problems = []

    def text(name: str, default: str) -> str:
        value = attributes.get(name, default)
        return value.decode() if isinstance(value, bytes) else str(value)

    if node.op_type == 'Resize':
        mode = text('mode', 'nearest')
        coordinates = text('coordinate_transformation_mode', 'half_pixel')
        if mode not in ('nearest', 'linear'):
            problems.append(f'Resize mode {mode!r} (TensorRT: nearest, linear)')
        if coordinates not in _RESIZE_COORDINATE_MODES:
            problems.append(f'Resize coordinate_transformation_mode {coordinates!r}')
        if mode == 'nearest' and text('nearest_mode', 'round_prefer_floor') not in \
                _RESIZE_NEAREST_MODES:
            problems.append(f'Resize nearest_mode {text("nearest_mode", "")!r}')
        if attributes.get('antialias', 0):
            problems.append('Resize antialias is not supported')
        if text('keep_aspect_ratio_policy', 'stretch') != 'stretch':
            problems.append('Resize keep_aspect_ratio_policy must be stretch')
    if node.op_type in _AXES_MUST_BE_CONSTANT and len(node.input) > 1 and node.input[1] and \
            node.input[1] not in constants:
        problems.append(f'axes input {node.input[1]!r} must be a constant (initializer)')
    if node.op_type == 'LayerNormalization' and any(o and o in consumed for o in node.output[1:]):
        problems.append('only the first output of LayerNormalization is supported')
    if node.op_type == 'Constant' and {'sparse_value', 'value_string', 'value_strings'} & \
            set(attributes):
        problems.append('Constant sparse_value / value_string(s) are unsupported')
    if node.op_type == 'ScatterND' and text('reduction', 'none') != 'none':
        problems.append('ScatterND reduction other than none')
    if node.op_type == 'Dropout' and len(node.input) > 2 and node.input[2] and \
            node.input[2] not in constants:
        problems.append('Dropout is_training must be an initializer')
    if node.op_type == 'TopK' and not attributes.get('sorted', 1):
        problems.append('TopK sorted must be 1')
    return problems


def require_tensorrt_support(model: Union[str, Path, onnx.ModelProto]) -> SupportReport:
    """`check_tensorrt_support`, raising `TensorRTSupportError` with every problem listed."""
    report = check_tensorrt_support(model)
    if not report.ok:
        listed = '\n  '.join(report.problems[:50])
        more = f'\n  ... and {len(report.problems) - 50} more' if len(report.problems) > 50 else ''
        raise TensorRTSupportError(
            f'TensorRT {report.tensorrt_version}\'s ONNX parser would reject this graph '
            f'({len(report.problems)} problems):\n  {listed}{more}')
    return report
