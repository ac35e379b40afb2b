"""Procedural surface textures in numpy: wood, tiles, carpet, paint, wallpaper, brick, fabric.

Monocular depth networks lean on texture gradients, so flat-coloured rooms teach them little; these
give every surface material-like detail. Every texture is periodic (its noise is built in the
Fourier domain and its patterns repeat an integer number of times across the square), so a
surface can repeat it without seams. All functions take a numpy Generator and return RGB uint8
(size, size, 3); the same generator state gives the same pixels.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np

TEXTURE_SIZE = 256
Colour = Sequence[float]  # RGB in [0, 1]


def periodic_noise(rng: np.random.Generator, size: int, smoothness: float,
                   stretch: float = 1.0) -> np.ndarray:
    """Zero-mean, unit-variance noise (size, size) float32 that tiles seamlessly.

    Gaussian noise filtered in the Fourier domain: `smoothness` is the power-law exponent of its
    spectrum (0: white, 2 to 3: cloudy); `stretch` > 1 smooths it along the u axis (columns)
    only, for streaks such as wood grain.
    """
    amplitude = _spectrum_amplitude(size, float(smoothness), float(stretch))  # (size, size//2+1)
    spectrum = amplitude * (rng.standard_normal(amplitude.shape)
                            + 1j * rng.standard_normal(amplitude.shape))
    field = np.fft.irfft2(spectrum, s=(size, size))  # (size, size)
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


@functools.lru_cache(maxsize=32)
def _spectrum_amplitude(size: int, smoothness: float, stretch: float) -> np.ndarray:
    rows = np.fft.fftfreq(size) * size  # (size,) cycles per texture
    columns = np.fft.rfftfreq(size) * size  # (size // 2 + 1,)
    radius = np.hypot(rows[:, np.newaxis], stretch * columns[np.newaxis, :])
    radius[0, 0] = 1.0
    amplitude = radius ** (-smoothness / 2.0)
    amplitude[0, 0] = 0.0
    amplitude.flags.writeable = False
    return amplitude


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _shade(base: Colour, variation: np.ndarray) -> np.ndarray:
    """base colour (3,) times (1 + variation (H, W)) -> (H, W, 3) in [0, 1]."""
    return np.asarray(base, np.float32)[np.newaxis, np.newaxis, :] \
        * (1.0 + variation[..., np.newaxis])


def paint(rng: np.random.Generator, colour: Colour, size: int = TEXTURE_SIZE) -> np.ndarray:
    """Painted plaster: the colour with faint cloudy variation and fine grain."""
    variation = 0.04 * periodic_noise(rng, size, 3.0) + 0.02 * periodic_noise(rng, size, 0.5)
    return _to_uint8(_shade(colour, variation))


def wood(rng: np.random.Generator, colour: Colour, planks: int = 4,
         size: int = TEXTURE_SIZE) -> np.ndarray:
    """Planks along the texture's u axis: per-plank tone, stretched grain and dark seams."""
    rows = np.arange(size)
    plank = rows * planks // size  # (size,) plank index of each row
    tone = rng.uniform(-0.15, 0.15, planks)[plank]  # (size,)
    grain = periodic_noise(rng, size, 1.2, stretch=12.0)  # fine streaks along u
    variation = tone[:, np.newaxis] + 0.10 * grain + 0.04 * periodic_noise(rng, size, 3.0) \
        + 0.02 * periodic_noise(rng, size, 0.5)
    seam = (rows % (size // planks)) < 2  # (size,)
    # Stagger the plank ends: each plank gets one butt joint at a random u.
    image = _shade(colour, variation)
    image[seam] *= 0.55
    joints = rng.integers(0, size, planks)
    for index, joint in enumerate(joints):
        band = slice(index * size // planks, (index + 1) * size // planks)
        image[band, joint:joint + 2] *= 0.6
    return _to_uint8(image)


def tiles(rng: np.random.Generator, colour: Colour, grout: Colour, count: int = 4,
          size: int = TEXTURE_SIZE) -> np.ndarray:
    """Square tiles (count x count per texture) with grout lines and per-tile tone."""
    index = np.arange(size) * count // size  # (size,)
    tone = rng.uniform(-0.06, 0.06, (count, count))[index[:, np.newaxis], index[np.newaxis, :]]
    image = _shade(colour, tone + 0.02 * periodic_noise(rng, size, 1.0))
    width = max(2, size // (count * 24))
    line = (np.arange(size) % (size // count)) < width  # (size,)
    mask = line[:, np.newaxis] | line[np.newaxis, :]  # (size, size)
    image[mask] = np.asarray(grout, np.float32) * (1.0 + 0.05 * periodic_noise(rng, size, 1.0)
                                                   [mask][:, np.newaxis])
    return _to_uint8(image)


def carpet(rng: np.random.Generator, colour: Colour, size: int = TEXTURE_SIZE) -> np.ndarray:
    """Carpet or rug: strong fine fibre noise over soft blotches."""
    variation = 0.12 * periodic_noise(rng, size, 0.3) + 0.08 * periodic_noise(rng, size, 2.5)
    return _to_uint8(_shade(colour, variation))


def stripes(rng: np.random.Generator, colour: Colour, second: Colour, count: int = 8,
            size: int = TEXTURE_SIZE) -> np.ndarray:
    """Wallpaper: vertical stripes of two colours along v with paper grain."""
    column = (np.arange(size) * count * 2 // size) % 2  # (size,) 0/1
    base = np.where(column[np.newaxis, :, np.newaxis] == 0, np.asarray(colour, np.float32),
                    np.asarray(second, np.float32))  # (1, size, 3)
    base = np.broadcast_to(base, (size, size, 3))
    return _to_uint8(base * (1.0 + 0.03 * periodic_noise(rng, size, 1.0)[..., np.newaxis]))


def brick(rng: np.random.Generator, colour: Colour, mortar: Colour, rows: int = 8,
          size: int = TEXTURE_SIZE) -> np.ndarray:
    """Running-bond brick: `rows` (even) rows of bricks twice as long as high, every other row
    offset by half a brick, mortar joints, per-brick tone."""
    if rows < 2 or rows % 2:
        raise ValueError(f'brick rows must be even and >= 2, got {rows}')
    pixels = np.arange(size)
    row = pixels * rows // size  # (size,) brick row of each texel row
    per_row = size / rows  # texels per brick row
    brick_width = 2.0 * per_row
    columns_per_row = rows // 2
    shifted = pixels[np.newaxis, :] + (row[:, np.newaxis] % 2) * per_row  # (size, size)
    column = (shifted // brick_width).astype(np.int64) % columns_per_row  # (size, size)
    tone = rng.uniform(-0.15, 0.15, (rows, columns_per_row))[row[:, np.newaxis], column]
    image = _shade(colour, tone + 0.06 * periodic_noise(rng, size, 1.5))
    joint = ((pixels % per_row) < 3)[:, np.newaxis] | ((shifted % brick_width) < 3)
    image[joint] = np.asarray(mortar, np.float32)
    return _to_uint8(image)


def fabric(rng: np.random.Generator, colour: Colour, size: int = TEXTURE_SIZE) -> np.ndarray:
    """Woven upholstery: a fine weave pattern plus soft folds."""
    grid = np.arange(size)
    weave = 0.06 * np.sin(grid * 2.0 * np.pi * 32 / size)  # (size,)
    variation = weave[:, np.newaxis] * weave[np.newaxis, :] / 0.06 \
        + 0.08 * periodic_noise(rng, size, 3.0) + 0.03 * periodic_noise(rng, size, 0.2)
    return _to_uint8(_shade(colour, variation))


def checker(rng: np.random.Generator, colour: Colour, second: Colour, count: int = 4,
            size: int = TEXTURE_SIZE) -> np.ndarray:
    """Checkerboard (vinyl floors, rugs, posters) with slight grain."""
    index = np.arange(size) * count // size  # (size,)
    parity = (index[:, np.newaxis] + index[np.newaxis, :]) % 2  # (size, size)
    image = np.where(parity[..., np.newaxis] == 0, np.asarray(colour, np.float32),
                     np.asarray(second, np.float32))
    return _to_uint8(image * (1.0 + 0.03 * periodic_noise(rng, size, 1.0)[..., np.newaxis]))


def picture(rng: np.random.Generator, size: int = TEXTURE_SIZE) -> np.ndarray:
    """A framed 'painting': smooth colourful blobs, for posters and pictures on walls."""
    channels = [periodic_noise(rng, size, 3.5) for _ in range(3)]
    image = 0.5 + 0.18 * np.stack(channels, axis=-1)
    return _to_uint8(image)


# Material families used by the room generator: name -> function(rng, colour, second colour).
# ('plain', a flat colour without texture, is drawn by the renderer itself.)
MATERIALS: dict[str, Callable[[np.random.Generator, Colour, Colour], np.ndarray]] = {
    'paint': lambda rng, a, b: paint(rng, a),
    'wood': lambda rng, a, b: wood(rng, a, planks=int(rng.integers(3, 7))),
    'tiles': lambda rng, a, b: tiles(rng, a, b, count=int(rng.integers(2, 6))),
    'carpet': lambda rng, a, b: carpet(rng, a),
    'stripes': lambda rng, a, b: stripes(rng, a, b, count=int(rng.integers(4, 12))),
    'brick': lambda rng, a, b: brick(rng, a, b, rows=2 * int(rng.integers(3, 7))),
    'fabric': lambda rng, a, b: fabric(rng, a),
    'checker': lambda rng, a, b: checker(rng, a, b, count=int(rng.integers(2, 6))),
    'picture': lambda rng, a, b: picture(rng),
}


def make_texture(material: str, seed: int, colour: Colour,
                 second: Colour = (0.5, 0.5, 0.5)) -> np.ndarray:
    """The texture of a material family, seeded: (TEXTURE_SIZE, TEXTURE_SIZE, 3) RGB uint8."""
    if material not in MATERIALS:
        raise ValueError(f'unknown material {material!r}; expected one of {sorted(MATERIALS)}')
    return MATERIALS[material](np.random.default_rng(seed), colour, second)
