"""Accuracy on the real evaluation-only frames: every model, every source, one table.

Sources are the `evaluate` set of the real-data split (training/splits/real_rgbd.yaml, read with
training/data.py): no model trained on the real split has seen them. Models:

- `fastdepth_int8`: the pretrained FastDepth (NYU v2) int8 TFLite file run with ai-edge-litert,
  the whole frame resized to its 224 x 224 input (INTER_AREA), as in its README;
- `fastdepth_float`: the same network imported into PyTorch (depth_estimation.model.fastdepth),
  the same 224 x 224 input in [0, 1];
- `zoedepth_fastdepth`: ZoeDepth's metric bins head on that core, the exported ONNX with its
  confidence output, through `depth_estimation.inference.open_backend` (the node's path);
- `zoedepth_small_sim`: the sim-trained model the package shipped before (no longer in the tree;
  take it from the history: `git show 42fd46a:depth_estimation/resources/models/demo/` names
  `zoedepth_small_sim.onnx` and its `.onnx.json`; write both to outputs/), the same path.

Per source and model: REL, delta1, RMSE (`depth_estimation.evaluation.metrics.compute_metrics`,
the source's crop and depth range, averaged over frames as ZoeDepth's evaluate.py does) and REL
after per-frame median scaling (prediction x median(gt) / median(prediction) over the scored
pixels); for a model with a confidence output, the Spearman rank correlation between confidence
and absolute error over the scored pixels of each frame, averaged over frames (negative: low
confidence where the error is large).

    for f in zoedepth_small_sim.onnx zoedepth_small_sim.onnx.json; do git show \
        42fd46a:depth_estimation/resources/models/demo/$f > outputs/$f; done
    .venv/bin/python benchmarks/real_accuracy.py --source-step sevenscenes_redkitchen=2

Prints the markdown table and writes <output>/real_accuracy.{json,md}, real_accuracy_bars.png and
real_accuracy_panels.png (colour | sensor | each model, one row per source).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from refinement_data import pyplot  # noqa: E402

from depth_estimation.evaluation.metrics import (frame_scores,  # noqa: E402
                                                 resize_bilinear_align_corners,
                                                 RunningAverageDict)
from depth_estimation.progress import Progress  # noqa: E402

SHARED = REPO_ROOT.parent / 'shared'
DEFAULT_SPLIT = REPO_ROOT / 'training' / 'splits' / 'real_rgbd.yaml'
DEFAULT_TFLITE = SHARED / 'weights' / 'fastdepth' / 'fast_depth_224.tflite'
DEFAULT_MODEL = (REPO_ROOT / 'depth_estimation' / 'resources' / 'models'
                 / 'zoedepth_fastdepth_real' / 'zoedepth_fastdepth_real.onnx')
DEFAULT_SIM_MODEL = REPO_ROOT / 'outputs' / 'zoedepth_small_sim.onnx'
FASTDEPTH_SIZE = (224, 224)  # (width, height) of FastDepth's own input
REPORTED = (('abs_rel', 'REL'), ('a1', 'delta1'), ('rmse', 'RMSE m'))
CONFIDENCE_TARGET = -0.3

Predictor = Callable[[np.ndarray], tuple[np.ndarray, Optional[np.ndarray]]]


def fastdepth_input(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> (224, 224, 3) uint8: the whole frame resized, as its README."""
    import cv2

    return cv2.resize(rgb, FASTDEPTH_SIZE, interpolation=cv2.INTER_AREA)


def litert_predictor(path: Path, threads: int) -> Predictor:
    """The int8 TFLite file in ai-edge-litert: depth (224, 224) metres, no confidence."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(path), num_threads=threads)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero_point = target['quantization']

    def predict(rgb: np.ndarray) -> tuple[np.ndarray, None]:
        interpreter.set_tensor(source['index'], fastdepth_input(rgb)[np.newaxis])
        interpreter.invoke()
        quantised = interpreter.get_tensor(target['index'])[0, :, :, 0]  # (224, 224) uint8
        return ((quantised.astype(np.float32) - zero_point) * np.float32(scale)), None

    return predict


def float_fastdepth_predictor(path: Path, threads: int) -> Predictor:
    """The TFLite weights imported into PyTorch (float activations): depth (224, 224) metres."""
    import torch

    from depth_estimation.model.fastdepth import load_fastdepth_tflite

    torch.set_num_threads(threads)
    model = load_fastdepth_tflite(path)

    def predict(rgb: np.ndarray) -> tuple[np.ndarray, None]:
        image = torch.from_numpy(fastdepth_input(rgb)).permute(2, 0, 1)[None].float() / 255.0
        with torch.inference_mode():
            return model(image)[0, 0].numpy(), None  # (224, 224) metres

    return predict


def backend_predictor(path: Path, threads: int) -> Predictor:
    """An exported model through open_backend: depth and confidence (when it has one) at the
    frame's size, as the node gets them."""
    from depth_estimation.inference import open_backend

    backend = open_backend(path, num_threads=threads)

    def predict(rgb: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
        result = backend.infer_outputs(rgb, confidence=True)
        return result.depth, result.confidence

    return predict


def confidence_method(path: Path) -> Optional[str]:
    """The confidence method an exported model was written with (its metadata), if any."""
    from depth_estimation.artifacts import read_metadata

    outputs = read_metadata(path).extra.get('outputs', {})
    return outputs.get('confidence', {}).get('method')


def open_models(args: argparse.Namespace) -> tuple[dict[str, Predictor], dict[str, str]]:
    """The predictors that can run here, and the reason for each one that cannot."""
    wanted = {'fastdepth_int8': (litert_predictor, args.tflite),
              'fastdepth_float': (float_fastdepth_predictor, args.tflite),
              'zoedepth_fastdepth': (backend_predictor, args.model),
              'zoedepth_small_sim': (backend_predictor, args.sim_model)}
    models, skipped = {}, {}
    for name, (factory, path) in wanted.items():
        if name in args.skip:
            skipped[name] = 'left out with --skip'
        elif path is None or not Path(path).is_file():
            skipped[name] = f'{path} is absent'
        else:
            try:
                models[name] = factory(Path(path), args.threads)
            except ImportError as error:  # ai-edge-litert is a test dependency only
                skipped[name] = f'{type(error).__name__}: {error}'
    return models, skipped


def evaluation_sources(split: Path, data_root: Path, step: int, max_frames: Optional[int],
                       source_steps: dict[str, int]) -> dict[str, tuple[Any, list[int]]]:
    """source name -> (reader, indices): the split's `evaluate` set, every `step`-th frame (or
    the source's own step)."""
    from training.data import open_spec, read_split

    sources: dict[str, tuple[Any, list[int]]] = {}
    for spec in read_split(split, data_root).evaluate:
        reader_spec = {key: value for key, value in spec.items()
                       if key not in ('source', 'frames', 'weight')}
        dataset, options = open_spec(reader_spec)
        indices = list(range(len(dataset)))[slice(options.get('start'), options.get('stop'))]
        name = spec['source']
        indices = indices[::source_steps.get(name, step)][:max_frames]
        previous = sources.get(name, (dataset, []))[1]
        sources[name] = (dataset, previous + indices)
    return sources


def score_frame(sample: Any, prediction: tuple[np.ndarray, Optional[np.ndarray]],
                protocol: dict[str, Any]) -> dict[str, float]:
    """The metrics of one model on one frame (plus median-scaled REL and confidence rho)."""
    depth, confidence = prediction
    crop = 'eigen' if protocol['eigen_crop'] else ('garg' if protocol['garg_crop'] else None)
    return frame_scores(sample.depth, depth, confidence, crop, protocol['min_depth_eval'],
                        protocol['max_depth_eval'])


def evaluate(models: dict[str, Predictor], sources: dict[str, tuple[Any, list[int]]]
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results per source and model, the middle frame's predictions per source for the panels)."""
    results: dict[str, Any] = {}
    examples: dict[str, Any] = {}
    total = sum(len(indices) for _, indices in sources.values())
    with Progress(total, 'frame', 'real accuracy') as progress:
        for name, (dataset, indices) in sources.items():
            protocol = {'eigen_crop': dataset.eval_crop == 'eigen', 'garg_crop': False,
                        'min_depth_eval': dataset.min_depth, 'max_depth_eval': dataset.max_depth}
            averages = {model: RunningAverageDict() for model in models}
            for position, index in enumerate(indices):
                sample = dataset[index]
                predictions = {model: predict(sample.image) for model, predict in models.items()}
                for model, prediction in predictions.items():
                    averages[model].update(score_frame(sample, prediction, protocol))
                if position == len(indices) // 2:
                    examples[name] = (sample, predictions)
                progress.update()
            results[name] = {'frames': len(indices), 'reader': dataset.name,
                             'protocol': protocol,
                             'models': {model: {key: float(value) for key, value in
                                                average.get_value().items()}
                                        for model, average in averages.items()
                                        if average.count}}
    return results, examples


def to_markdown(report: dict[str, Any]) -> str:
    """The table: one row per source and model, then the confidence rank correlations."""
    lines = ['| source | frames | model | REL | delta1 | RMSE m | REL, median-scaled |',
             '|---|---|---|---|---|---|---|']
    for source, result in report['sources'].items():
        for model, scores in result['models'].items():
            lines.append(f"| {source} | {result['frames']} | {model} | {scores['abs_rel']:.3f} | "
                         f"{scores['a1']:.3f} | {scores['rmse']:.3f} | "
                         f"{scores['abs_rel_median_scaled']:.3f} |")
    methods = report.get('confidence_methods', {})
    correlations = [(source, f'{model} ({methods.get(model)})', scores['confidence_spearman'])
                    for source, result in report['sources'].items()
                    for model, scores in result['models'].items()
                    if 'confidence_spearman' in scores]
    if correlations:
        lines += ['', f'| source | model (confidence method) | Spearman(confidence, abs error), '
                      f'mean over frames | '
                      f'target <= {CONFIDENCE_TARGET} |', '|---|---|---|---|']
        lines += [f'| {source} | {model} | {rho:.3f} | '
                  f'{"met" if rho <= CONFIDENCE_TARGET else "not met"} |'
                  for source, model, rho in correlations]
    if report['skipped']:
        lines += [''] + [f'- {model} not run: {reason}'
                         for model, reason in report['skipped'].items()]
    return '\n'.join(lines) + '\n'


def plot_bars(report: dict[str, Any], path: Path) -> Path:
    """REL and median-scaled REL per source, one bar per model."""
    plt = pyplot()
    sources = list(report['sources'])
    models = list(dict.fromkeys(model for result in report['sources'].values()
                                for model in result['models']))
    figure, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    width = 0.8 / max(1, len(models))
    for axis, (key, label) in zip(axes, (('abs_rel', 'REL'),
                                         ('abs_rel_median_scaled', 'REL after median scaling'),
                                         ('a1', 'delta1 (higher is better)'))):
        for number, model in enumerate(models):
            values = [report['sources'][source]['models'].get(model, {}).get(key, np.nan)
                      for source in sources]
            axis.bar(np.arange(len(sources)) + (number - (len(models) - 1) / 2) * width, values,
                     width, label=model)
        axis.set_xticks(range(len(sources)), sources, fontsize=7, rotation=15)
        axis.set_title(label)
        axis.grid(alpha=0.3, axis='y')
    axes[0].legend(fontsize=7)
    figure.suptitle(f"Real evaluation-only frames ({report['machine']})", fontsize=9)
    figure.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(figure)
    return path


def plot_panels(examples: dict[str, Any], path: Path) -> Path:
    """One row per source (its middle frame): colour | sensor | each model, one depth scale a row,
    and the confidence of the model that has one."""
    from depth_estimation.visualize import auto_range, colorize_depth

    plt = pyplot()
    models = list(next(iter(examples.values()))[1]) if examples else []
    with_confidence = [m for m in models if next(iter(examples.values()))[1][m][1] is not None]
    columns = 2 + len(models) + len(with_confidence)
    figure, axes = plt.subplots(len(examples), columns, figsize=(2.6 * columns,
                                                                 2.2 * len(examples)),
                                squeeze=False)
    for row, (source, (sample, predictions)) in zip(axes, examples.items()):
        low, high = auto_range(sample.depth) or (0.1, 10.0)
        tiles = [(sample.image, f'{source}: {sample.name}'),
                 (colorize_depth(sample.depth, low, high), f'sensor ({low:.1f}-{high:.1f} m)')]
        size = sample.depth.shape  # FastDepth's 224 x 224 back to the frame, as the metrics do
        tiles += [(colorize_depth(resize_bilinear_align_corners(predictions[m][0], size), low,
                                  high), m) for m in models]
        tiles += [(predictions[m][1], f'{m} confidence') for m in with_confidence]
        for axis, (image, title) in zip(row, tiles):
            axis.imshow(image, cmap='gray', vmin=0.0, vmax=1.0)
            axis.set_title(title, fontsize=7)
            axis.axis('off')
    figure.savefig(path, dpi=90, bbox_inches='tight')
    plt.close(figure)
    return path


def machine_line() -> str:
    """'N-core <arch> VM, load average L' with the 1-minute load at the time of writing."""
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    return f'{os.cpu_count()}-core {platform.machine()} machine, load average {load:.1f}'


def parse_arguments(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', type=Path, default=DEFAULT_MODEL,
                        help='the exported ZoeDepth-on-FastDepth .onnx (with confidence)')
    parser.add_argument('--sim-model', type=Path, default=DEFAULT_SIM_MODEL,
                        help='the sim-trained model shipped today')
    parser.add_argument('--tflite', type=Path, default=DEFAULT_TFLITE,
                        help='FastDepth\'s int8 TFLite file (also the float import\'s weights)')
    parser.add_argument('--split', type=Path, default=DEFAULT_SPLIT,
                        help='split file whose `evaluate` set is scored')
    parser.add_argument('--data-root', type=Path, default=SHARED / 'data')
    parser.add_argument('--step', type=int, default=1, help='every STEP-th frame of a source')
    parser.add_argument('--source-step', action='append', default=[], metavar='SOURCE=N',
                        help='every N-th frame of one source (repeatable), e.g. '
                             'sevenscenes_redkitchen=2')
    parser.add_argument('--max-frames', type=int, default=None, help='at most N frames a source')
    parser.add_argument('--skip', nargs='*', default=[], help='model names to leave out')
    parser.add_argument('--threads', type=int, default=2, help='threads of every model')
    parser.add_argument('--output', type=Path, default=REPO_ROOT / 'outputs' / 'real_accuracy')
    args = parser.parse_args(argv)
    try:
        args.source_steps = {name: int(value) for name, _, value in
                             (text.partition('=') for text in args.source_step)}
    except ValueError:
        parser.error(f'--source-step takes SOURCE=N, got {args.source_step}')
    if min([args.step, args.max_frames or 1, *args.source_steps.values()]) < 1:
        parser.error('--step, --source-step and --max-frames must be >= 1')
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_arguments(argv)
    if not args.data_root.is_dir():
        raise SystemExit(f'{args.data_root} is absent: this benchmark needs the real frames')
    models, skipped = open_models(args)
    if not models:
        raise SystemExit(f'no model could be opened: {skipped}')
    sources = evaluation_sources(args.split, args.data_root, args.step, args.max_frames,
                                 args.source_steps)
    results, examples = evaluate(models, sources)
    report = {'format': 'depth_estimation.real_accuracy/1', 'machine': machine_line(),
              'split': str(args.split), 'step': args.step, 'max_frames': args.max_frames,
              'source_steps': args.source_steps,
              'models': {'fastdepth_int8': str(args.tflite), 'fastdepth_float': str(args.tflite),
                         'zoedepth_fastdepth': str(args.model),
                         'zoedepth_small_sim': str(args.sim_model)},
              'confidence_methods': {name: confidence_method(path) for name, path in (
                  ('zoedepth_fastdepth', args.model), ('zoedepth_small_sim', args.sim_model))
                  if name in models},
              'skipped': skipped, 'sources': results}
    args.output.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(report)
    (args.output / 'real_accuracy.md').write_text(markdown)
    report['plots'] = [str(plot_bars(report, args.output / 'real_accuracy_bars.png')),
                       str(plot_panels(examples, args.output / 'real_accuracy_panels.png'))]
    (args.output / 'real_accuracy.json').write_text(json.dumps(report, indent=1) + '\n')
    print(f"Real evaluation-only frames, {report['machine']}\n")
    print(markdown)
    print(f'wrote {args.output}/real_accuracy.json, .md, _bars.png, _panels.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
