"""Choose the small preset's backbone by measured CPU latency (ONNX Runtime, here).

Each candidate is built with seeded random weights (speed does not depend on the values),
exported to ONNX at its input size, and timed end to end on 640 x 480 RGB frames
(pre-processing, network, post-processing) with ONNX Runtime on all cores. Prints a markdown table.

    .venv/bin/python benchmarks/small_backbones.py [--repeats 20] [--preset tiny]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from depth_estimation.export.onnx_export import export_onnx
from depth_estimation.inference import open_backend
from depth_estimation.model import get_preset
from depth_estimation.model.config import BackboneConfig, BinConfig, ZoeDepthConfig
from depth_estimation.model.init import randomize_weights
from depth_estimation.model.zoedepth import build_model


def beit(name: str, width: int, depth: int, heads: int, neck: tuple[int, ...], fusion: int,
         size: tuple[int, int]) -> ZoeDepthConfig:
    taps = tuple(depth * k // 4 for k in (1, 2, 3, 4))
    return ZoeDepthConfig(
        name=name,
        backbone=BackboneConfig(image_size=384, hidden_size=width, num_hidden_layers=depth,
                                num_attention_heads=heads, intermediate_size=4 * width,
                                out_indices=taps),
        neck_hidden_sizes=neck, fusion_hidden_size=fusion, bottleneck_features=fusion,
        bins=(BinConfig(n_bins=64),), input_height=size[0], input_width=size[1])


CANDIDATES = [
    beit('beit_s_288x384', 384, 12, 6, (48, 96, 192, 384), 64, (288, 384)),
    beit('beit_s_192x256', 384, 12, 6, (48, 96, 192, 384), 64, (192, 256)),
    beit('beit_t_288x384', 192, 12, 3, (48, 96, 192, 192), 64, (288, 384)),
    beit('beit_t_192x256', 192, 12, 3, (48, 96, 192, 192), 64, (192, 256)),
    get_preset('zoedepth_small'),  # BEiT-T, 32-channel decoder, 192 x 256: the chosen one
]


def measure(config: ZoeDepthConfig, directory: Path, repeats: int) -> dict[str, float]:
    model = randomize_weights(build_model(config), 0)
    parameters = sum(p.numel() for p in model.parameters())
    path = directory / f'{config.name}.onnx'
    export_onnx(model, path, random_checks=1, progress=lambda message: None)
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)
    totals, networks = [], []
    with open_backend(path) as backend:
        for _ in range(3):
            backend.infer(frame)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            backend.infer(frame)
            totals.append(time.perf_counter() - start)
            networks.append(backend.last_timings.inference)
    return {'parameters_m': parameters / 1e6,
            'p50_ms': 1e3 * statistics.median(totals),
            'network_p50_ms': 1e3 * statistics.median(networks),
            'fps': 1.0 / statistics.median(totals)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--preset', action='append', default=None,
                        help='measure this preset instead of the candidates (repeatable)')
    args = parser.parse_args(argv)
    candidates = [get_preset(name) for name in args.preset] if args.preset else CANDIDATES
    print(f'machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; '
          f'ONNX Runtime on all cores; 640x480 frames end to end\n')
    print('| candidate | parameters (M) | network p50 (ms) | end-to-end p50 (ms) | frames/s |')
    print('|---|---|---|---|---|')
    with tempfile.TemporaryDirectory() as directory:
        for config in candidates:
            result = measure(config, Path(directory), args.repeats)
            print(f'| {config.name} | {result["parameters_m"]:.1f} | '
                  f'{result["network_p50_ms"]:.1f} | {result["p50_ms"]:.1f} | '
                  f'{result["fps"]:.1f} |', flush=True)


if __name__ == '__main__':
    main()
