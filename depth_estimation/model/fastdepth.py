"""FastDepth (Wofk et al., ICRA 2019): MobileNet encoder, depthwise NNConv5 decoder, skip adds.

The network of dwofk/fast-depth `models.py` (`MobileNetSkipAdd`), as the pruned NYU Depth v2 model
was published (MIT licence): 14 encoder layers (a 3x3 convolution, then 13 depthwise-separable
3x3 blocks, ReLU6), 5 decoder blocks (depthwise 5x5 + pointwise 1x1, ReLU, each followed by a
nearest x2 upsampling; the outputs of encoder layers 5, 3 and 1 are added after decoder blocks 2,
3 and 4, counting from 1), and a 1x1 convolution to one channel with a ReLU: depth in metres.
Batch norm is folded into the convolutions (as in the TFLite file the weights come from), so
every convolution has a bias. The input is RGB in [0, 1] without any further normalisation;
height and width must be multiples of 32.

`FastDepth.forward_features` keeps the intermediate maps the ZoeDepth head needs: the encoder
bottleneck (H/32) and every decoder block's output.

`read_tflite_state_dict` imports the weights of the fully int8 TFLite file (OpenMV's
`fast_depth_224.tflite`), read with the `tflite` flatbuffer package: every convolution of the
graph, in graph order, is checked (kind, stride, explicit symmetric padding, fused activation,
shape) against the layer it maps to, then dequantised (per-output-channel scales, zero points) and
transposed from TFLite's layouts (OHWI, depthwise 1HWO) to PyTorch's OIHW. `zoedepth_from_tflite`
puts them into the core of a ZoeDepth (`depth-estimation convert fast_depth_224.tflite out.pt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from depth_estimation.model.presets import (FASTDEPTH_NYU_DECODER_CHANNELS,
                                            FASTDEPTH_NYU_ENCODER_CHANNELS)

if TYPE_CHECKING:
    from depth_estimation.model.zoedepth import ZoeDepth

PathLike = Union[str, Path]

# The pruned NYU model (dwofk/fast-depth, "MobileNet-NNConv5(depthwise), with additive skip
# connections, pruned"): output channels of the 14 encoder layers and the 5 decoder blocks.
NYU_ENCODER_CHANNELS = FASTDEPTH_NYU_ENCODER_CHANNELS
NYU_DECODER_CHANNELS = FASTDEPTH_NYU_DECODER_CHANNELS
ENCODER_STRIDES = (2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)  # MobileNet v1
# decoder block (0-based) -> encoder layer (0-based) whose output is added after the block's
# upsampling
SKIP_SOURCES = {1: 5, 2: 3, 3: 1}
INPUT_MULTIPLE = 32  # five stride-2 layers, five x2 upsamplings
LICENCE = 'MIT, Copyright (c) 2019 Diana Wofk'
CITATION = ('D. Wofk, F. Ma, T.-J. Yang, S. Karaman, V. Sze: "FastDepth: Fast Monocular Depth '
            'Estimation on Embedded Systems", ICRA 2019 (github.com/dwofk/fast-depth)')


class SeparableConv(nn.Module):
    """Depthwise k x k convolution and pointwise 1x1 convolution, each followed by `activation`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 activation: type[nn.Module]) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride,
                                   padding=kernel_size // 2, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)
        self.activation = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.depthwise(x))
        return self.activation(self.pointwise(x))


@dataclass
class FastDepthFeatures:
    """What one FastDepth pass computes."""

    depth: torch.Tensor  # (B, 1, H, W) metres
    bottleneck: torch.Tensor  # (B, C_enc, H/32, W/32) the encoder's last map
    # Output of each decoder block before its upsampling, coarse to fine: H/32, H/16, H/8, H/4,
    # H/2.
    decoder: list[torch.Tensor]
    # Input of each decoder block after the first (upsampled, skip added): H/16, H/8, H/4, H/2.
    decoder_inputs: list[torch.Tensor]


class FastDepth(nn.Module):
    """RGB in [0, 1] (B, 3, H, W) -> depth in metres (B, 1, H, W); H, W multiples of 32."""

    def __init__(self, encoder_channels: tuple[int, ...] = NYU_ENCODER_CHANNELS,
                 decoder_channels: tuple[int, ...] = NYU_DECODER_CHANNELS) -> None:
        super().__init__()
        if len(encoder_channels) != len(ENCODER_STRIDES) or len(decoder_channels) != 5:
            raise ValueError('FastDepth has 14 encoder layers and 5 decoder blocks, got '
                             f'{len(encoder_channels)} and {len(decoder_channels)} widths')
        self.encoder_channels = tuple(encoder_channels)
        self.decoder_channels = tuple(decoder_channels)
        first = nn.Sequential(nn.Conv2d(3, encoder_channels[0], 3, ENCODER_STRIDES[0], padding=1),
                              nn.ReLU6())
        layers: list[nn.Module] = [first]
        for index in range(1, len(encoder_channels)):
            layers.append(SeparableConv(encoder_channels[index - 1], encoder_channels[index], 3,
                                        ENCODER_STRIDES[index], nn.ReLU6))
        self.encoder = nn.ModuleList(layers)
        inputs = (encoder_channels[-1],) + tuple(decoder_channels[:-1])
        for block, layer in SKIP_SOURCES.items():
            if encoder_channels[layer] != decoder_channels[block]:
                raise ValueError(f'skip from encoder layer {layer} ({encoder_channels[layer]} '
                                 f'channels) into decoder block {block} '
                                 f'({decoder_channels[block]} channels)')
        self.decoder = nn.ModuleList(
            SeparableConv(inputs[index], decoder_channels[index], 5, 1, nn.ReLU)
            for index in range(len(decoder_channels)))
        self.output_conv = nn.Conv2d(decoder_channels[-1], 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.forward_features(image).depth

    def forward_features(self, image: torch.Tensor) -> FastDepthFeatures:
        height, width = image.shape[-2:]
        if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
            raise ValueError(
                f'FastDepth input {height}x{width} is not a multiple of {INPUT_MULTIPLE}')
        skips: dict[int, torch.Tensor] = {}
        x = image
        wanted = set(SKIP_SOURCES.values())
        for index, layer in enumerate(self.encoder):
            x = layer(x)
            if index in wanted:
                skips[index] = x
        bottleneck = x  # (B, 512, H/32, W/32)
        decoder, decoder_inputs = [], []
        for index, block in enumerate(self.decoder):
            if index:
                decoder_inputs.append(x)
            x = block(x)
            decoder.append(x)
            x = F.interpolate(x, scale_factor=2.0, mode='nearest')
            if index in SKIP_SOURCES:
                x = x + skips[SKIP_SOURCES[index]]
        depth = F.relu(self.output_conv(x))  # (B, 1, H, W) metres
        return FastDepthFeatures(depth, bottleneck, decoder, decoder_inputs)


# ---------------------------------------------------------------------------------------------
# TFLite import
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _LayerSpec:
    """One convolution of our module and what its TFLite operator must look like."""

    key: str  # our parameter prefix ('<key>.weight', '<key>.bias')
    depthwise: bool
    stride: int
    activation: str  # TFLite fused activation name: 'RELU6', 'RELU'
    padding: int  # explicit symmetric PAD before the convolution (0: none)


def layer_specs(model: FastDepth) -> list[_LayerSpec]:
    """Our convolutions in the order the TFLite graph runs them (the explicit key mapping)."""
    specs = [_LayerSpec('encoder.0.0', False, ENCODER_STRIDES[0], 'RELU6', 1)]
    for index in range(1, len(model.encoder)):
        specs.append(_LayerSpec(f'encoder.{index}.depthwise', True, ENCODER_STRIDES[index],
                                'RELU6', 1))
        specs.append(_LayerSpec(f'encoder.{index}.pointwise', False, 1, 'RELU6', 0))
    for index in range(len(model.decoder)):
        specs.append(_LayerSpec(f'decoder.{index}.depthwise', True, 1, 'RELU', 2))
        specs.append(_LayerSpec(f'decoder.{index}.pointwise', False, 1, 'RELU', 0))
    specs.append(_LayerSpec('output_conv', False, 1, 'RELU', 0))
    return specs


class TFLiteImportError(ValueError):
    """The TFLite graph does not map exactly onto our FastDepth."""


def _enum_names(enum_class: type) -> dict[int, str]:
    return {value: name for name, value in vars(enum_class).items() if not name.startswith('_')}


class _TFLiteGraph:
    """The parts of a TFLite model this import reads (via the `tflite` flatbuffer package)."""

    def __init__(self, path: PathLike) -> None:
        import tflite

        self.tflite = tflite
        self.model = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0)
        if self.model.SubgraphsLength() != 1:
            raise TFLiteImportError(f'{path}: expected one subgraph')
        self.graph = self.model.Subgraphs(0)
        self.operator_names = _enum_names(tflite.BuiltinOperator)
        self.activation_names = _enum_names(tflite.ActivationFunctionType)
        self.producers = {}
        for index in range(self.graph.OperatorsLength()):
            for output in self.graph.Operators(index).OutputsAsNumpy():
                self.producers[int(output)] = index

    def operator(self, index: int) -> tuple[str, list[int], list[int]]:
        operator = self.graph.Operators(index)
        code = self.model.OperatorCodes(operator.OpcodeIndex())
        kind = self.operator_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        return kind, [int(i) for i in operator.InputsAsNumpy()], [
            int(i) for i in operator.OutputsAsNumpy()]

    def options(self, index: int, kind: str):  # noqa: ANN201 - a tflite options table
        options_class = {'CONV_2D': self.tflite.Conv2DOptions,
                         'DEPTHWISE_CONV_2D': self.tflite.DepthwiseConv2DOptions}[kind]
        table = self.graph.Operators(index).BuiltinOptions()
        options = options_class()
        options.Init(table.Bytes, table.Pos)
        return options

    def constant(self, tensor_index: int) -> np.ndarray:
        """A constant tensor, dequantised to float64: scale * (q - zero_point) per channel."""
        tensor = self.graph.Tensors(tensor_index)
        dtype = {self.tflite.TensorType.INT8: np.int8, self.tflite.TensorType.INT32: np.int32,
                 self.tflite.TensorType.FLOAT32: np.float32}[tensor.Type()]
        raw = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        values = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(tensor.ShapeAsNumpy())
        quantization = tensor.Quantization()
        if dtype == np.float32 or quantization is None or not quantization.ScaleLength():
            return values.astype(np.float64)
        scale = quantization.ScaleAsNumpy().astype(np.float64)
        zero_point = quantization.ZeroPointAsNumpy().astype(np.float64)
        shape = [1] * values.ndim
        if scale.size > 1:
            shape[quantization.QuantizedDimension()] = scale.size
        return (values - zero_point.reshape(shape)) * scale.reshape(shape)

    def padding_before(self, tensor_index: int) -> int:
        """Symmetric spatial padding of the PAD operator producing `tensor_index` (0: none)."""
        producer = self.producers.get(tensor_index)
        if producer is None:
            return 0
        kind, inputs, _ = self.operator(producer)
        if kind != 'PAD':
            return 0
        pads = self.constant(inputs[1]).astype(int)  # (4, 2) NHWC before/after
        if pads[0].any() or pads[3].any() or len({*pads[1], *pads[2]}) != 1:
            raise TFLiteImportError(f'PAD {pads.tolist()} is not symmetric in H and W')
        return int(pads[1, 0])


def read_tflite_state_dict(path: PathLike, model: FastDepth) -> dict[str, torch.Tensor]:
    """Float state dict of `model` from a FastDepth TFLite file; raises TFLiteImportError."""
    graph = _TFLiteGraph(path)
    convolutions = [index for index in range(graph.graph.OperatorsLength())
                    if graph.operator(index)[0] in ('CONV_2D', 'DEPTHWISE_CONV_2D')]
    specs = layer_specs(model)
    if len(convolutions) != len(specs):
        raise TFLiteImportError(f'{path}: {len(convolutions)} convolutions in the graph, our '
                                f'FastDepth has {len(specs)}')
    expected = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for operator_index, spec in zip(convolutions, specs):
        kind, inputs, _ = graph.operator(operator_index)
        options = graph.options(operator_index, kind)
        found = (kind == 'DEPTHWISE_CONV_2D', options.StrideH(), options.StrideW(),
                 graph.activation_names[options.FusedActivationFunction()],
                 graph.padding_before(inputs[0]))
        wanted = (spec.depthwise, spec.stride, spec.stride, spec.activation, spec.padding)
        if found != wanted or options.Padding() != graph.tflite.Padding.VALID:
            raise TFLiteImportError(f'operator {operator_index} ({kind}) does not match '
                                    f'{spec.key}: (depthwise, strides, activation, padding) '
                                    f'{found} != {wanted}')
        weight = graph.constant(inputs[1])
        # OHWI -> OIHW; depthwise 1HWO -> O1HW
        weight = weight.transpose(3, 0, 1, 2) if spec.depthwise else weight.transpose(0, 3, 1, 2)
        bias = graph.constant(inputs[2])
        for name, value in (('weight', weight), ('bias', bias)):
            key = f'{spec.key}.{name}'
            if tuple(value.shape) != tuple(expected[key].shape):
                raise TFLiteImportError(f'{key}: TFLite shape {tuple(value.shape)}, ours '
                                        f'{tuple(expected[key].shape)}')
            state[key] = torch.from_numpy(np.ascontiguousarray(value)).float()
    return state


def load_fastdepth_tflite(path: PathLike) -> FastDepth:
    """The float FastDepth of a TFLite file (the pruned NYU widths), in eval mode."""
    model = FastDepth()
    model.load_state_dict(read_tflite_state_dict(path, model), strict=True)
    return model.eval()


def zoedepth_from_tflite(path: PathLike, preset: str = 'zoedepth_fastdepth',
                         seed: int = 0) -> 'ZoeDepth':
    """A ZoeDepth whose FastDepth core holds the TFLite file's weights, in eval mode.

    The core's keys are `core.` + the keys of `layer_specs`; the metric head is freshly
    initialised (PyTorch's default initialisation, seeded) and must be trained.
    """
    from depth_estimation.model.presets import get_preset
    from depth_estimation.model.zoedepth import ZoeDepth

    config = get_preset(preset)
    if config.backbone.model_type != 'fastdepth':
        raise ValueError(f'preset {preset!r} has no FastDepth core')
    torch.manual_seed(seed)
    model = ZoeDepth(config)
    model.core.load_state_dict(read_tflite_state_dict(path, model.core), strict=True)
    return model.eval()
