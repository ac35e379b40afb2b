"""Metadata that travels beside every model artifact (`model.onnx` -> `model.onnx.json`), and the
models the package ships.

Runtime code reads the network input size, normalisation and depth range from here instead of
re-declaring them. Torch-free: ONNX Runtime and TensorRT deployments need only numpy.

The shipped models live in `depth_estimation/resources/models/` (package data), each `.onnx` with
its metadata beside it. `DEFAULT_MODEL` names the one that the node (empty `model_path`),
`predict`, `evaluate` and `demo` run when no model is given; `depth-estimation models` lists
them all and `depth-estimation models --default` prints the default's path.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from dataclasses import asdict, dataclass, field, fields, MISSING
from pathlib import Path
from typing import Any, Mapping, Optional, Union

METADATA_FORMAT = 'depth_estimation.artifact/1'
PathLike = Union[str, Path]
# The default model, relative to resources/models/: switching the default is this line.
DEFAULT_MODEL = 'zoedepth_fastdepth_real/zoedepth_fastdepth_real.onnx'


def file_sha256(path: PathLike) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB chunks (engines can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ArtifactMetadata:
    """What a runtime must know to feed an artifact and read its output."""

    model_name: str
    input_name: str  # (1, 3, input_height, input_width) float32, RGB as (x / 255 - mean) / std
    output_name: str  # (1, 1, input_height, input_width) float32 metres
    input_height: int
    input_width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    min_depth: float  # metres; the model's output range
    max_depth: float
    model_config: dict[str, Any] = field(default_factory=dict)
    keep_aspect_ratio: bool = True  # False: frames are stretched to the input (processing.py)
    config_hash: str = ''
    source: dict[str, Any] = field(default_factory=dict)  # what it was made from, with sha256
    versions: dict[str, str] = field(default_factory=dict)  # library versions at export
    extra: dict[str, Any] = field(default_factory=dict)  # exporter details: opset, parity, ...

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.input_height, self.input_width)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data['format'] = METADATA_FORMAT
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactMetadata:
        data = dict(data)
        version = data.pop('format', None)
        if version != METADATA_FORMAT:
            raise ValueError(f'metadata format {version!r} is not {METADATA_FORMAT!r}')
        names = {f.name for f in fields(cls)}
        missing = sorted(f.name for f in fields(cls) if f.name not in data
                         and f.default is MISSING and f.default_factory is MISSING)
        if missing:
            raise ValueError(f'metadata lacks {missing}')
        values = {k: v for k, v in data.items() if k in names}
        values['mean'] = tuple(float(v) for v in values['mean'])
        values['std'] = tuple(float(v) for v in values['std'])
        return cls(**values)

    @classmethod
    def from_model_config(cls, config: Any, **kwargs: Any) -> ArtifactMetadata:
        """Metadata of an artifact made from a `ZoeDepthConfig` (input 'image', output 'depth')."""
        return cls(model_name=config.name, input_name=kwargs.pop('input_name', 'image'),
                   output_name=kwargs.pop('output_name', 'depth'),
                   input_height=config.input_height, input_width=config.input_width,
                   mean=tuple(config.mean), std=tuple(config.std),
                   min_depth=config.min_depth, max_depth=config.max_depth,
                   model_config=config.to_dict(), keep_aspect_ratio=config.keep_aspect_ratio,
                   config_hash=config.config_hash(), **kwargs)


def metadata_path(artifact: PathLike) -> Path:
    """The metadata file of an artifact: its full name plus `.json`."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + '.json')


def write_metadata(artifact: PathLike, metadata: ArtifactMetadata) -> Path:
    path = metadata_path(artifact)
    path.write_text(json.dumps(metadata.to_dict(), indent=2, sort_keys=True) + '\n')
    return path


def read_metadata(artifact: PathLike) -> ArtifactMetadata:
    """Read and validate the metadata beside an artifact, with an error that says what is wrong."""
    path = metadata_path(artifact)
    if not path.is_file():
        raise FileNotFoundError(
            f'no metadata beside {artifact}: expected {path}. Re-export the model with '
            '`depth-estimation export`, which writes it.')
    try:
        return ArtifactMetadata.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as error:
        raise ValueError(f'invalid artifact metadata {path}: {error}') from error


def shipped_models_dir() -> Path:
    """The package data folder of the shipped models (resources/models/)."""
    return Path(str(importlib.resources.files('depth_estimation') / 'resources' / 'models'))


def shipped_models() -> list[Path]:
    """Every shipped `.onnx` that has its metadata beside it, sorted by path."""
    folder = shipped_models_dir()
    found = folder.rglob('*.onnx') if folder.is_dir() else []
    return sorted(path for path in found if metadata_path(path).is_file())


def default_model_path(missing_ok: bool = False) -> Optional[Path]:
    """The default shipped ONNX model (`DEFAULT_MODEL`, with its metadata beside it).

    When it is not installed: None with `missing_ok`, else FileNotFoundError saying what is there.
    """
    path = shipped_models_dir() / DEFAULT_MODEL
    if path.is_file() and metadata_path(path).is_file():
        return path
    if missing_ok:
        return None
    shipped = ', '.join(str(p.relative_to(shipped_models_dir())) for p in shipped_models())
    raise FileNotFoundError(f'the default model {path} (with {metadata_path(path).name}) is not '
                            f'installed; shipped models: {shipped or "none"}. Name one with '
                            '--model (or model_path:=...).')


def model_option() -> dict[str, Any]:
    """argparse keywords of a `--model` option that defaults to the default model (and is
    required when that is not installed): one default for predict, evaluate and the others."""
    default = default_model_path(missing_ok=True)
    return {'type': Path, 'default': default, 'required': default is None}


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (missing ones are left out)."""
    from importlib import metadata as importlib_metadata

    import depth_estimation

    versions = {'depth_estimation': depth_estimation.__version__}
    for name in names:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return versions
