"""`depth-estimation models`: the models shipped with the package and which one is the default.

Each shipped model is an `.onnx` under `depth_estimation/resources/models/` with its metadata
beside it; the listing reads name, preset, input size and depth range from the metadata, and the
training data and licence from its `source` (`training_data`, `licence`) or, for models released
by `training.release`, from `extra.provenance`. `--default` prints only
the default model's path (`artifacts.DEFAULT_MODEL`), for scripts.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from depth_estimation.artifacts import default_model_path, read_metadata, shipped_models

UNKNOWN = 'not in its metadata'


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'models', help='list the shipped models; --default prints the default model\'s path',
        description='List the ONNX models shipped in depth_estimation/resources/models/ (name, '
                    'path, size, preset, training data, licence). The default one is what the '
                    'node (empty model_path), predict, evaluate and demo run.')
    parser.add_argument('--default', action='store_true',
                        help='print only the default model\'s path (exit 2 if it is absent)')
    parser.set_defaults(handler=run)


def describe(path: Path) -> dict[str, Any]:
    """What the listing shows of one shipped model, from the file and its metadata."""
    metadata = read_metadata(path)
    provenance = metadata.extra.get('provenance', {})  # written by training.release
    data = '; '.join(f'{name} ({terms})'
                     for name, terms in provenance.get('training_data', {}).items())
    licence = provenance.get('core', {}).get('licence', '')
    return {'name': path.stem, 'path': str(path),
            'size': f'{path.stat().st_size / 1e6:.1f} MB',
            'preset': f'{metadata.model_name} ({metadata.input_height}x{metadata.input_width} '
                      f'input, depth {metadata.min_depth:g} to {metadata.max_depth:g} m)',
            'training data': metadata.source.get('training_data') or data or UNKNOWN,
            'licence': metadata.source.get('licence') or licence or UNKNOWN}


def run(args: argparse.Namespace) -> int:
    if args.default:
        print(default_model_path())
        return 0
    default = default_model_path(missing_ok=True)
    models = shipped_models()
    if not models:
        print('no models are shipped (depth_estimation/resources/models/ has no .onnx with '
              'its metadata)')
    for path in models:
        entry = describe(path)
        print(entry.pop('name') + ('  (default)' if path == default else ''))
        for key, value in entry.items():
            print(f'    {key}: {value}')
    if default is None:
        print('the default model is not installed: predict, evaluate, demo and the node need '
              'a model named explicitly')
    return 0
