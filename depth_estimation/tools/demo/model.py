"""The model the demo's node runs: the default model, a given one exported once, or random.

An `.onnx` with its metadata is used as is; one of our checkpoints, official ZoeDepth weights
(.pt) or a Hugging Face directory is exported to ONNX first (once, cached in `<output>/model/`).
Without `--model` the default shipped model (`artifacts.default_model_path`) runs; when it is not
installed, the `tiny` preset with random weights is exported, with a loud warning (the pipeline
runs; its depth is noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

RANDOM_BANNER = ('=' * 78 + '\n'
                 'NO DEFAULT MODEL INSTALLED: using the tiny preset with RANDOM (UNTRAINED)\n'
                 'weights. The depth values are meaningless; `depth-estimation models` lists '
                 'the\nshipped models. The pipeline (topics, headers, camera_info, point cloud, '
                 'latency)\nis real.\n' + '=' * 78)


@dataclass(frozen=True)
class ModelChoice:
    """The ONNX model the node runs, how the report names it, and whether it was trained."""

    path: Path  # .onnx with its metadata
    description: str
    trained: bool


def _exported(path: Path) -> bool:
    from depth_estimation.artifacts import metadata_path

    return path.is_file() and metadata_path(path).is_file()


def _export(model: Any, onnx_path: Path, source: dict[str, Any]) -> None:
    """Export `model` to `onnx_path`, checked against PyTorch on the shipped sample frames."""
    from depth_estimation.export.onnx_export import export_onnx
    from depth_estimation.samples import load_samples

    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    result = export_onnx(model, onnx_path, source=source,
                         check_images=[(sample.name, sample.rgb) for sample in load_samples()])
    print(f'wrote {result.onnx_path} in {result.seconds:.1f} s (max relative error against '
          f'PyTorch {result.max_rel_error:.2e})', flush=True)


def random_model(output: Path, seed: int = 0) -> Path:
    """The tiny preset exported with random weights to <output>/model/tiny.onnx (once)."""
    model_path = output / 'model' / 'tiny.onnx'
    if _exported(model_path):
        return model_path
    from depth_estimation.model import get_preset
    from depth_estimation.model.init import randomize_weights
    from depth_estimation.model.zoedepth import build_model

    print(f'exporting the tiny preset with random weights to {model_path} ...', flush=True)
    model = randomize_weights(build_model(get_preset('tiny')), seed)
    _export(model, model_path, {'preset': 'tiny', 'weights': f'random (seed {seed}), untrained'})
    return model_path


def load_weights(path: Path) -> tuple[Any, dict[str, Any]]:
    """Our checkpoint, official ZoeDepth weights or a Hugging Face directory -> (model, source)."""
    from depth_estimation.artifacts import file_sha256
    from depth_estimation.model.checkpoint import load_checkpoint, read_checkpoint
    from depth_estimation.model.official import load_official

    if path.is_file():
        source = {'checkpoint': str(path), 'sha256': file_sha256(path)}
        try:
            read_checkpoint(path)
        except ValueError:  # not ours: official ZoeDepth weights (or not a torch file)
            return load_official(path), {**source, 'source_format': 'official'}
        return load_checkpoint(path), source
    return load_official(path), {'checkpoint': str(path), 'source_format': 'huggingface'}


def prepare_model(model: Optional[Path], output: Path) -> ModelChoice:
    """The ONNX model the node will run (see the module docstring)."""
    from depth_estimation.artifacts import default_model_path, file_sha256, read_metadata

    if model is None:
        default = default_model_path(missing_ok=True)
        if default is not None:
            return ModelChoice(default, 'default model', True)
        print(RANDOM_BANNER, flush=True)
        return ModelChoice(random_model(output), 'tiny preset, RANDOM weights', False)
    model = Path(model)
    if not model.exists():
        raise FileNotFoundError(f'model {model} does not exist')
    if model.suffix == '.onnx':
        read_metadata(model)  # a clear error now rather than in the node
        return ModelChoice(model, model.name, True)
    if not (model.is_dir() or model.suffix in ('.pt', '.pth', '.ckpt')):
        raise ValueError(f'model {model}: expected .onnx, .pt/.pth or a Hugging Face directory')
    tag = file_sha256(model)[:12] if model.is_file() else 'hf'
    onnx_path = output / 'model' / f'{model.stem}-{tag}.onnx'
    if _exported(onnx_path):
        print(f'using {onnx_path}, exported earlier from {model}')
    else:
        print(f'exporting {model} to {onnx_path} (once; large models take minutes) ...',
              flush=True)
        weights, source = load_weights(model)
        _export(weights, onnx_path, source)
    return ModelChoice(onnx_path, f'{model.name} (exported to ONNX)', True)
