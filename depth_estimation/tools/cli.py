"""`depth-estimation` command line: one subcommand per module, each registering itself.

A command module defines `register(subparsers)`, which adds its parser and sets
`handler=function(args)` that returns an exit code. Modules are imported only to build the
parser; heavy imports live in handlers.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

COMMAND_MODULES = (
    'depth_estimation.evaluation.command',
    'depth_estimation.export.command',
    'depth_estimation.export.build_engine_command',
    'depth_estimation.tools.benchmark',
    'depth_estimation.model.convert',
    'depth_estimation.tools.predict',
    'depth_estimation.tools.demo.command',
    'depth_estimation.tools.models',
    'depth_estimation.sim.dataset',
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='depth-estimation',
        description='Metric monocular depth (ZoeDepth): export, run and evaluate models.')
    subparsers = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f'depth-estimation {args.command}: error: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
