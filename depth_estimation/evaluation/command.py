"""`depth-estimation evaluate`: score a checkpoint or an exported model on an RGB-D dataset.

Writes into `--output`: results.json (every number, per sample too), results.md (the table of the
papers: δ1 δ2 δ3 REL Sq-REL RMSE RMSE-log log10 SILog), depth_ranges.png (error by ground-truth
depth) and error_map_*.png for a few samples. The crop and depth range default to the dataset's
(the papers' protocol: NYU Eigen crop 1e-3..10 m, KITTI Garg crop 1e-3..80 m, iBims Eigen crop
1e-3..10 m); the metric function is ZoeDepth's, reproduced exactly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional

from depth_estimation.artifacts import model_option

TORCH_SUFFIXES = ('.pt', '.pth', '.ckpt')


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'evaluate', help='metrics of a model on a dataset (the papers\' protocol), with plots',
        description='Evaluate a checkpoint (.pt) or an exported model (.onnx) on an RGB-D '
                    'dataset: folder, nyu (labelled .mat), nyu_sync, kitti, ibims, tum, '
                    'sevenscenes or rosbag. Writes results.json, results.md, depth_ranges.png '
                    'and error maps. Metrics are ZoeDepth\'s compute_metrics, reproduced exactly; '
                    'crop and depth caps default to the dataset\'s paper protocol.')
    parser.add_argument('--model', '-m', **model_option(),
                        help='.onnx (with its .onnx.json) or one of our .pt checkpoints '
                             '(default: the shipped default model, `depth-estimation models '
                             '--default`)')
    parser.add_argument('--dataset', '-d', required=True,
                        help="dataset path (format detected), or NAME:PATH, e.g. "
                             "nyu:nyu_depth_v2_labeled.mat, kitti:eigen_test_files.txt, "
                             "rosbag:recording/")
    parser.add_argument('--split', help='split: folder <split>.txt name, or nyu test/train/all')
    parser.add_argument('--data-path', type=Path,
                        help='colour root of a split file (nyu_sync, kitti)')
    parser.add_argument('--gt-path', type=Path, help='depth root of a split file (kitti)')
    parser.add_argument('--option', '-O', action='append', default=[], metavar='KEY=VALUE',
                        help='any other reader option (value parsed as YAML), repeatable, '
                             'e.g. -O calibration=fr1 -O depth_topic=/camera/depth/image_raw')
    parser.add_argument('--output', '-o', type=Path, default=Path('evaluation'),
                        help='output folder (default: ./evaluation)')
    parser.add_argument('--backend', default='auto', choices=('auto', 'onnxruntime', 'torch'),
                        help='inference backend (default: from the model suffix)')
    parser.add_argument('--protocol', choices=('letterbox', 'official'), default='letterbox',
                        help='torch only: letterbox pre/post-processing shared by all backends '
                             '(default) or ZoeDepth\'s own infer() (resize to a multiple of 32, '
                             'reflect padding)')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    parser.add_argument('--threads', type=int, default=0, help='CPU threads (0: default)')
    parser.add_argument('--flip', action='store_true',
                        help='average with the prediction of the mirrored image (the papers\' '
                             'protocol; two forward passes)')
    parser.add_argument('--crop', default='auto', choices=('auto', 'none', 'eigen', 'garg'),
                        help="evaluation crop (default 'auto': the dataset's, e.g. eigen for NYU "
                             'and iBims, garg for KITTI)')
    parser.add_argument('--min-depth', type=float, help='min ground truth depth scored (metres)')
    parser.add_argument('--max-depth', type=float, help='max ground truth depth scored (metres)')
    parser.add_argument('--limit', type=int, help='evaluate only the first N samples')
    parser.add_argument('--error-maps', type=int, default=4,
                        help='error-map PNGs to write, spread over the samples (default 4)')
    parser.add_argument('--skip-broken', action='store_true',
                        help='skip unreadable samples with a warning instead of stopping')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.set_defaults(handler=run)


def parse_options(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> reader options (values parsed as YAML: numbers, lists, null)."""
    import yaml

    options: dict[str, Any] = {}
    for item in items:
        key, separator, value = item.partition('=')
        if not separator or not key.strip():
            raise ValueError(f'--option expects KEY=VALUE, got {item!r}')
        options[key.strip().replace('-', '_')] = yaml.safe_load(value)
    return options


def open_model(model: Path, backend: str, threads: int, protocol: str,
               device: str) -> Any:
    """The inference backend for a checkpoint or an exported model (inference.open_backend)."""
    from depth_estimation.inference import open_backend

    uses_torch = backend == 'torch' or (backend == 'auto'
                                        and model.suffix.lower() in TORCH_SUFFIXES)
    if uses_torch:
        return open_backend(model, backend, num_threads=threads, protocol=protocol,
                            device=device)
    if protocol != 'letterbox':
        raise ValueError('--protocol official needs a torch checkpoint (an exported model has '
                         'its letterbox pre/post-processing fixed)')
    return open_backend(model, backend, num_threads=threads)


def run(args: argparse.Namespace) -> int:
    from depth_estimation.datasets import get_dataset
    from depth_estimation.evaluation.evaluate import Protocol, evaluate, write_report

    options = parse_options(args.option)
    for key, value in (('split', args.split), ('data_path', args.data_path),
                       ('gt_path', args.gt_path)):
        if value is not None:
            options[key] = value
    if args.limit is not None and args.limit < 1:
        raise ValueError(f'--limit must be >= 1, got {args.limit}')
    try:
        dataset = get_dataset(args.dataset, **options)
    except TypeError as error:  # an option the reader does not take
        raise ValueError(f'dataset {args.dataset!r}: {error}') from None
    protocol = Protocol.for_dataset(dataset, args.crop, args.min_depth, args.max_depth,
                                    args.flip)
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    indices: Optional[list[int]] = list(range(count))
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    print(f'evaluate: {dataset!r}: {count} sample(s); crop {protocol.crop or "none"}, depth '
          f'{protocol.min_depth:g}..{protocol.max_depth:g} m, flip '
          f'{"on" if protocol.flip else "off"}', file=sys.stderr)
    from depth_estimation.progress import Progress

    progress = Progress(count, 'sample', 'evaluate', enabled=not args.no_progress)
    try:
        with open_model(args.model, args.backend, args.threads, args.protocol,
                        args.device) as backend:
            describe = {**backend.describe(), 'path': str(args.model)}
            results = evaluate(backend, dataset, protocol, indices, output, args.error_maps,
                               progress, describe, skip_broken=args.skip_broken)
    finally:
        progress.close()
    paths = write_report(results, output)
    metrics = results['metrics_rounded']
    if metrics is None:
        print('evaluate: no sample could be scored', file=sys.stderr)
    else:
        from depth_estimation.evaluation.evaluate import markdown_table

        print('\n'.join(markdown_table(results['metrics'])))
    if results['skipped']:
        print(f'evaluate: {len(results["skipped"])} sample(s) skipped (listed in '
              f'{paths["markdown"]})', file=sys.stderr)
    print(f'evaluate: wrote {paths["markdown"]}, {paths["json"]}, {paths["chart"]} and '
          f'{len(results["error_maps"])} error map(s) in {output.resolve()}', file=sys.stderr)
    return 0 if metrics is not None else 1


__all__ = ['open_model', 'parse_options', 'register', 'run']
