"""A trained zoedepth_fastdepth checkpoint -> the shipped ONNX model, with its provenance.

    python -m training.release outputs/training/zoedepth_fastdepth_real/export/model_best.pt \
        depth_estimation/resources/models/zoedepth_fastdepth_real/zoedepth_fastdepth_real.onnx

`depth-estimation export --checkpoint ... --confidence` with two additions to the metadata
(`extra.provenance`): the pretrained core (FastDepth, its licence and citation, the file its
weights were imported from) and the training data (each source of the split with its licence).
The export is simplified and checked against PyTorch on random and the shipped sample images like
every export.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

# The confidence the shipped model exports: the bins' spread in metres ranks absolute errors
# (docs/training.md, held-out comparison).
RELEASE_CONFIDENCE_METHOD = 'metric_spread'

# Licences of the training sources of training/splits/real_rgbd.yaml (../shared/data/MANIFEST.md).
_TUM = ('TUM RGB-D benchmark (J. Sturm et al., IROS 2012): CC BY 4.0, attribution')
# 7-Scenes (non-commercial research licence) is evaluation-only, so it is not among them.
SOURCE_LICENCES = {
    'tum_fr1_rpy': _TUM,
    'tum_fr3_cabinet': _TUM,
}


def provenance(checkpoint_extra: dict[str, Any], split: Path) -> dict[str, Any]:
    """What the model is made of: its core and the data it was trained on."""
    from depth_estimation.model.fastdepth import CITATION, LICENCE
    from training.data import read_split

    sources = sorted({spec['source'] for spec in read_split(split).train})
    return {
        'core': {'name': 'FastDepth (MobileNet-NNConv5 depthwise, skip add, pruned), NYU Depth v2',
                 'licence': LICENCE, 'citation': CITATION,
                 'weights': 'fast_depth_224.tflite (openmv/openmv), dequantised to float'},
        'metric_head': "ZoeDepth's metric bins head (Bhat et al. 2023), trained here",
        'training_data': {source: SOURCE_LICENCES.get(source, 'see ../shared/data/MANIFEST.md')
                          for source in sources},
        'split': str(split),
        'training': {key: checkpoint_extra[key] for key in ('global_step', 'epoch', 'metrics')
                     if key in checkpoint_extra},
    }


def release(checkpoint: Path, output: Path, split: Path,
            confidence_method: str = RELEASE_CONFIDENCE_METHOD) -> Path:
    """Export with confidence, simplified and parity-checked; returns the .onnx path."""
    from depth_estimation.artifacts import file_sha256
    from depth_estimation.export.onnx_export import export_onnx
    from depth_estimation.model.checkpoint import load_checkpoint, read_checkpoint
    from depth_estimation.model.confidence import DepthWithConfidence
    from depth_estimation.samples import load_samples

    model = DepthWithConfidence(load_checkpoint(checkpoint), confidence_method)
    extra = read_checkpoint(checkpoint).get('extra', {})
    output.parent.mkdir(parents=True, exist_ok=True)
    result = export_onnx(
        model, output, source={'checkpoint': str(checkpoint), 'sha256': file_sha256(checkpoint)},
        check_images=[(sample.name, sample.rgb) for sample in load_samples()],
        extra_metadata={'protocol': {'flip_average': False},
                        'provenance': provenance(extra, split)},
        simplify=True, tensorrt_check='warn')
    print(f'wrote {result.onnx_path} ({result.onnx_path.stat().st_size / 1e6:.1f} MB; max '
          f'relative error against PyTorch {result.max_rel_error:.2e})')
    return result.onnx_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', type=Path, help='trained zoedepth_fastdepth checkpoint')
    parser.add_argument('output', type=Path, help='the .onnx file to write')
    parser.add_argument('--split', type=Path, default=Path('training/splits/real_rgbd.yaml'),
                        help='the split the model was trained on')
    parser.add_argument('--confidence-method', default=RELEASE_CONFIDENCE_METHOD,
                        help='how the confidence is computed from the bins (model/confidence.py; '
                             'metric_spread ranks absolute errors)')
    args = parser.parse_args(argv)
    release(args.checkpoint, args.output, args.split, args.confidence_method)
    return 0


if __name__ == '__main__':
    sys.exit(main())
